"""``python -m lthkit stability``: instability against k, and the three retraining methods."""

from __future__ import annotations

import argparse
import types
from pathlib import Path

from ..core.data import DataConfig
from ..core.train import TrainConfig
from .common import (_parse_typed, _rate, _trials, _whole_number_in, _workers, add_dataclass_flags, check_paths,
                     comma_separated, dataclass_changes, resolve_device, sweep_options)

#: The files ``stability`` writes into ``--out``, as one set.
STABILITY_OUTPUTS = ("stability.csv", "claims.csv", "retraining.csv", "error_along_path.png", "instability_vs_k.png",
                     "retraining_vs_density.png", "run_info.json", "README.md")


def _iterations_list(text: str) -> list[int]:
    """``"0,100,500"`` → ``[0, 100, 500]`` (distinct whole numbers ≥ 0; an argparse type)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated iterations such as 0,100,500, got {text!r}") from None
    if not values or any(value < 0 for value in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct iterations of at least 0, got {text!r}")
    return sorted(values)


def _retrain_k(text: str) -> int | str | None:
    if text.lower() in ("none", "default"):  # "default": the mode's (argparse passes a string default through here)
        return text.lower() if text.lower() == "default" else None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an iteration or none, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of percentage points, got {text!r}") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100 points, got {text}")
    return value


def stability_plan(args: argparse.Namespace) -> dict:
    """The study the ``stability`` flags describe, checked before any data or cache is touched.

    Raises:
        LthkitError: a bad config, or a k (or the retraining k) outside the training budget.
    """
    from ..core.paths import alpha_grid
    from ..runs.presets import preset_config
    from ..studies.stability import PROTOCOLS, at_rewind

    mode = "fast" if args.fast else "full"
    protocol = PROTOCOLS[args.protocol]
    changes = {"train": dataclass_changes(args, TrainConfig), "data": dataclass_changes(args, DataConfig)}
    if args.rounds is not None:
        changes["rounds"] = args.rounds
    if args.rate is not None:
        changes["prune_rate"] = args.rate
    base = preset_config(protocol["preset"], fast=args.fast, **changes)
    study = protocol[mode]
    ks = args.k if args.k is not None else list(study["ks"])
    retrain_k = study["retrain_k"] if args.retrain_k == "default" else args.retrain_k
    for k in [*ks, *([] if retrain_k is None else [retrain_k])]:
        at_rewind(base, k)  # a k past the budget fails here
    for seed in {args.seed, args.seed + (args.trials or study["trials"]) - 1}:
        base.replace(seed=seed)
    return {"base": base, "ks": ks, "trials": args.trials or study["trials"],
            "controls": args.controls or list(study["controls"]), "retrain_k": retrain_k,
            "alphas": alpha_grid(args.points), "threshold": args.threshold / 100, "mode": mode,
            "protocol": args.protocol}


def run(args: argparse.Namespace) -> int:
    import time

    from ..core.files import atomic_write_files, csv_text, figure_png, json_bytes, with_kept_notes
    from ..runs.cache import load_cached
    from ..reporting.claims import claims_csv_text
    from ..studies.stability import (RETRAINING_COLUMNS, STABILITY_COLUMNS, barrier_table, report_text,
                                     retraining_configs, run_retraining, run_stability, stability_claims,
                                     stability_pairs)

    check_paths(args, STABILITY_OUTPUTS)
    plan = stability_plan(args)
    device = resolve_device(args.device)
    base, began = plan["base"], time.time()
    runs = 2 * len(plan["ks"]) * plan["trials"] * len(plan["controls"])
    options = dict(cache_dir=args.cache, device=device, data_root=args.data, progress=not args.no_progress,
                   **sweep_options(args, device, runs=runs))
    rows = run_stability(base, plan["ks"], trials=plan["trials"], controls=plan["controls"], first_seed=args.seed,
                         alphas=plan["alphas"], threshold=plan["threshold"], **options)
    retraining = [] if plan["retrain_k"] is None else run_retraining(
        base, plan["retrain_k"], trials=plan["trials"], first_seed=args.seed, **options)
    # Training time, from the cache's records of every run the study read.
    configs = list(dict.fromkeys(c for pair in stability_pairs(base, plan["ks"], plan["trials"], plan["controls"],
                                                                args.seed) for c in (pair.source, pair.twin)))
    if plan["retrain_k"] is not None:
        configs += retraining_configs(base, plan["retrain_k"], trials=plan["trials"], first_seed=args.seed)
    seconds = [r.train.seconds for c in configs for r in (load_cached(c, args.cache) or types.SimpleNamespace(
        rounds=[])).rounds]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..reporting.plots import error_along_path, instability_vs_k, retraining_vs_density
    from ..reporting.provenance import run_info

    files = {args.out / "stability.csv": csv_text(rows, STABILITY_COLUMNS).encode(),
             args.out / "retraining.csv": csv_text(retraining, RETRAINING_COLUMNS).encode()}
    first_k, last_k = min(plan["ks"]), max(plan["ks"])
    sparsest = max(r["round"] for r in rows)
    figures = {"error_along_path.png": error_along_path(
                   rows, select=lambda r: r["k"] in (first_k, last_k) and r["round"] in (0, sparsest)
                   and r["trial"] == args.seed, title="test error along the linear path (first trial)"),
               "instability_vs_k.png": instability_vs_k(rows, threshold=plan["threshold"],
                                                        title=f"instability of {base.model}")}
    if retraining:
        figures["retraining_vs_density.png"] = retraining_vs_density(
            retraining, title=f"retraining after pruning, T − k = {base.train.iterations - plan['retrain_k']:,}"
            if base.train.iterations else "retraining after pruning")
    for name, figure in figures.items():
        files[args.out / name] = figure_png(figure, dpi=120)
        plt.close(figure)
    info = run_info("stability", argv=["python", "-m", "lthkit", *(args.argv or [])], device=device,
                    config=base.to_dict(), trials=plan["trials"], trainings=len(seconds),
                    training_seconds=round(sum(seconds), 1), wall_seconds=round(time.time() - began, 1),
                    mode=plan["mode"], protocol=plan["protocol"], ks=plan["ks"], controls=plan["controls"], retrain_k=plan["retrain_k"],
                    alphas=plan["alphas"], threshold=plan["threshold"],
                    seconds_per_training=round(sum(seconds) / len(seconds), 2) if seconds else None)
    files[args.out / "run_info.json"] = json_bytes(info)
    files[args.out / "README.md"] = with_kept_notes(args.out / "README.md", report_text(rows, retraining, info)).encode()
    files[args.out / "claims.csv"] = claims_csv_text(stability_claims(rows, retraining, plan["protocol"])).encode()
    atomic_write_files(files)
    print(f"{'kind':<13} {'k':>6} {'density':>8} {'trials':>6} {'barrier (points), mean [min, max]':>34}")
    for entry in barrier_table(rows):
        print(f"{entry['control']:<13} {entry['k']:>6} {entry['density']:>8.3f} {entry['trials']:>6} "
              f"{100 * entry['barrier_mean']:>14.2f} [{100 * entry['barrier_min']:.2f}, "
              f"{100 * entry['barrier_max']:.2f}]")
    print(f"wrote {', '.join(str(args.out / name) for name in STABILITY_OUTPUTS if args.out / name in files)}")
    return 0


def add_parser(commands) -> None:
    """The ``stability`` subcommand: instability against k, and the three retraining methods."""
    from ..core.paths import DEFAULT_POINTS
    from ..studies.stability import DEFAULTS, PROTOCOLS, RETRAINING, TWINS

    command = commands.add_parser(
        "stability", help="instability analysis (error barrier against k) and fine-tuning vs weight vs LR rewinding",
        description="Train two copies of each network from θ_k with different batch orders, walk the linear path "
                    "between them and measure its error barrier, for the dense network, IMP subnetworks and the "
                    "controls at each k; then compare fine-tuning, weight rewinding and learning-rate rewinding at "
                    "equal retraining budgets. Cached and resumable; writes stability.csv (one row per k, "
                    "sparsity, control, trial and α), retraining.csv, three figures, run_info.json and a README.md "
                    "report into --out.")
    command.add_argument("--protocol", choices=tuple(PROTOCOLS), default="adam",
                         help="adam: notebook 6's classroom protocol (Adam, 2,000 iterations, rate drops); sgd: "
                              "Frankle et al. 2020's LeNet protocol (Table 1: SGD at 0.1, batch 60, 24,000 "
                              "iterations) with IMP to 3.5%% of the weights (default: adam)")
    command.add_argument("--fast", action="store_true",
                         help="the small fast mode of the stability preset (seconds), instead of the full one")
    command.add_argument("--k", type=_iterations_list, default=None, metavar="K,K,...",
                         help="iterations to split the copies at (default: the protocol's: " + "; ".join(
                             f"{name} {','.join(map(str, protocol['full']['ks']))}" for name, protocol in PROTOCOLS.items())
                         + f"; fast: {','.join(map(str, DEFAULTS['fast']['ks']))})")
    command.add_argument("--controls", type=lambda text: comma_separated(text, list(TWINS), "control"), default=None,
                         help="comma-separated subnetworks to measure: ticket (also gives the dense network), "
                              "random_prune, reinit, or all (default: the protocol's: adam all, sgd ticket,random_prune; "
                              "fast: ticket,random_prune)")
    command.add_argument("--trials", type=_trials, default=None,
                         help=f"trials per point (default: {DEFAULTS['full']['trials']}; fast: {DEFAULTS['fast']['trials']})")
    command.add_argument("--seed", type=_parse_typed(int, False), default=0, help="seed of the first trial (default: 0)")
    command.add_argument("--rounds", type=_whole_number_in(1, 100, noun="a whole number of rounds",
                                                           out_of_range="must be from 1 to 100, got {value}"),
                         default=None, help="IMP rounds (default: the preset's)")
    command.add_argument("--rate", type=lambda text: _rate(text), default=None,
                         help="fraction of the surviving weights pruned per round (default: the preset's)")
    command.add_argument("--points", type=_whole_number_in(2, 1001, noun="a whole number of points",
                                                           out_of_range="must be from 2 to 1001, got {value}"),
                         default=DEFAULT_POINTS, help=f"points on the path, endpoints included (default: {DEFAULT_POINTS})")
    command.add_argument("--threshold", type=_threshold, default=2.0,
                         help="stable below this error barrier, in percentage points (default: 2, the paper's)")
    command.add_argument("--retrain-k", type=_retrain_k, default="default",
                         help=f"k of the retraining comparison ({', '.join(RETRAINING)}), or none to skip it "
                              f"(default: adam {DEFAULTS['full']['retrain_k']}, fast {DEFAULTS['fast']['retrain_k']}; sgd: none)")
    command.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                         help="where to train (default: the GPU when there is one)")
    command.add_argument("--cache", type=Path, help="cache folder (default: $LTHKIT_CACHE or cache/ in the repo)")
    command.add_argument("--data", type=Path, help="MNIST root (default: $LTHKIT_DATA or data/ in the repo)")
    command.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    command.add_argument("--workers", type=_workers, default=None,
                         help="single-threaded worker processes of a local Dask cluster (default: as for run)")
    command.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                         help="run the trainings on an existing Dask cluster (default: $LTHKIT_SCHEDULER)")
    add_dataclass_flags(command, TrainConfig, title="training (TrainConfig)", default_note=" (default: the preset's)")
    add_dataclass_flags(command, DataConfig, title="data (DataConfig)", default_note=" (default: the preset's)")
    command.add_argument("--out", type=Path, required=True, help="folder for the results")
    command.set_defaults(handler=run)
