"""``python -m lthkit anatomy`` and ``prune-at-init``: what a ticket is made of."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_lottery_flags, check_paths, comma_separated, config_from_args, resolve_device, sweep_options

# --- Ticket anatomy (issue 16): `anatomy` and `prune-at-init` ---------------------------------------

def _experiments(text: str) -> list[str]:
    from ..studies.anatomy import EXPERIMENTS

    return comma_separated(text, list(EXPERIMENTS), "experiment")


def run(args: argparse.Namespace) -> int:
    from ..studies.anatomy import STUDY_OUTPUTS, run_study, study_configs

    check_paths(args, STUDY_OUTPUTS)
    base = config_from_args(args)
    device = resolve_device(args.device)
    runs = len(study_configs(base, trials=args.trials, first_seed=args.seed, experiments=args.experiments))
    study = run_study(args.out, base=base, trials=args.trials, first_seed=args.seed, experiments=args.experiments,
                      device=device, cache_dir=args.cache, data_root=args.data, progress=not args.no_progress,
                      argv=["python", "-m", "lthkit", *(args.argv or [])], **sweep_options(args, device, runs=runs))
    means: dict = {}
    for row in study.rows:
        key = (row["experiment"], row["series"], row["round"])
        means.setdefault(key, []).append((row["density"], row["test_acc_early_stop"]))
    print(f"{'experiment':<13} {'series':<30} {'round':>5} {'density':>8} {'test acc':>8}  (mean over trials)")
    for (experiment, series, round_index), values in means.items():
        print(f"{experiment:<13} {series:<30} {round_index:>5} {sum(d for d, _ in values) / len(values):>8.3f} "
              f"{sum(a for _, a in values) / len(values):>8.4f}")
    print(f"wrote {', '.join(name for name in STUDY_OUTPUTS if (args.out / name).exists())} into {args.out}")
    return 0


def add_parser(commands) -> None:
    """``anatomy`` (every experiment of :mod:`lthkit.studies.anatomy`) and ``prune-at-init`` (its three PaI experiments)."""
    from ..runs.presets import ANATOMY_PRESETS
    from ..studies.anatomy import EXPERIMENTS, PAI_EXPERIMENTS

    for name, summary, default in (
            ("anatomy", "what a ticket is made of: mask criteria, resets, zeros, supermasks and pruning at init",
             list(EXPERIMENTS)),
            ("prune-at-init", "SNIP, GraSP, SynFlow, magnitude and random at init beside IMP, and their sanity "
                              "checks (the anatomy study's pai experiments)", list(PAI_EXPERIMENTS))):
        command = commands.add_parser(
            name, help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. Every run is cached and resumable; writes summary.csv "
                        "(one row per experiment, series, trial and round), supermask.csv, tables.md, one figure per question, "
                        "run_info.json and a README.md report (each paper finding beside ours) into --out.")
        add_lottery_flags(command, default_preset="anatomy", presets=ANATOMY_PRESETS,
                          preset_help="starting configuration: 'anatomy' (LeNet-300-100, 6 rounds of 45%%, 1,500 "
                                      "iterations on 10,000 images) or 'fast'")
        command.add_argument("--experiments", type=_experiments, default=default,
                             help=f"comma-separated experiments, or all: {', '.join(EXPERIMENTS)} "
                                  f"(default: {','.join(default)})")
        command.add_argument("--out", type=Path, required=True, help="folder for the results")
        command.set_defaults(handler=run)
