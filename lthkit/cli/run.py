"""``python -m lthkit run``: IMP from a preset; results.json, summary.csv and accuracy_vs_density.png."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..imp.branches import BRANCHES
from .common import add_lottery_flags, check_paths, config_from_args, resolve_device, sweep_options

#: The files ``run`` writes into ``--out``, as one set.
RUN_OUTPUTS = ("results.json", "summary.csv", "accuracy_vs_density.png")


def run(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write_files, figure_png, json_bytes
    from ..reporting.summaries import summary_csv_text
    from ..runs.experiments import run_experiments

    check_paths(args, RUN_OUTPUTS)
    config = config_from_args(args)
    device = resolve_device(args.device)
    controls = list(BRANCHES.controls()) if args.control == "all" else [args.control]
    # Side by side, round by round: on a GPU the runs of each round train as one batched model.
    configs = [config.replace(control=control, seed=args.seed + trial)
               for trial in range(args.trials) for control in controls]
    results = run_experiments(configs, cache_dir=args.cache, device=device, data_root=args.data,
                              progress=not args.no_progress, **sweep_options(args, device, runs=len(configs)))
    # matplotlib only once the runs are done: its import is not part of the start-up to the first training step.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..reporting.plots import accuracy_vs_density

    out = args.out
    from ..core.data import get_dataset

    on = config.model if config.data.dataset == "mnist" else f"{config.model}, {get_dataset(config.data.dataset).label}"
    figure = accuracy_vs_density(results, title=f"IMP on {on} ({args.preset} preset)")
    png = figure_png(figure, dpi=120)
    plt.close(figure)
    # One set: results, CSV and plot are all new, or (on any failure) all as they were.
    atomic_write_files({out / "results.json": json_bytes({"lthkit_version": __version__,
                                                          "runs": [r.to_dict() for r in results]}),
                        out / "summary.csv": summary_csv_text(results).encode(),
                        out / "accuracy_vs_density.png": png})
    print(f"{'control':<13} {'trial':>5} {'round':>5} {'density':>8} {'early stop':>10} {'test acc':>8}")
    for result in results:
        for r in result.rounds:
            print(f"{result.config.control:<13} {result.config.seed:>5} {r.round:>5} {r.density:>8.3f} "
                  f"{r.early_stop_iteration:>10} {r.test_acc_early_stop:>8.4f}")
    print(f"wrote {out / 'results.json'}, {out / 'summary.csv'} and {out / 'accuracy_vs_density.png'}")
    return 0


def add_parser(commands) -> None:
    """``run``: IMP from a preset, writing results.json, summary.csv and a plot into --out."""
    command = commands.add_parser(
        "run", help="run iterative magnitude pruning and write results.json, summary.csv and a plot",
        description="Run iterative magnitude pruning (cached and resumable) and write results.json, summary.csv and "
                    "accuracy_vs_density.png into --out.")
    add_lottery_flags(command, default_preset="fast")
    controls = BRANCHES.controls()
    command.add_argument("--control", choices=(*controls, "all"), default="ticket",
                         help=f"what to train each round: {', '.join(controls)} (the registered controls: "
                              "lthkit.imp.branches), or all of them (default: ticket)")
    command.add_argument("--out", type=Path, required=True, help="folder for the results")
    command.set_defaults(handler=run)
