"""``python -m lthkit reproduce``: Frankle & Carbin's LeNet-300-100 protocol, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import LthkitError
from ..imp.branches import BRANCHES, MAX_REINIT_DRAWS, PAPER_CONTROLS
from .common import (_whole_number_in, add_lottery_flags, check_paths, comma_separated, config_from_args,
                     resolve_device, sweep_options)


def _controls(text: str) -> list[str]:
    return comma_separated(text, BRANCHES.controls(), "control")


def run(args: argparse.Namespace) -> int:
    from ..studies.paper import REPRODUCE_OUTPUTS, reproduce

    check_paths(args, REPRODUCE_OUTPUTS)
    config = config_from_args(args)
    if config.data.dataset != "mnist":  # its report sets every number beside the paper's MNIST numbers
        raise LthkitError(f"reproduce compares with the paper's MNIST results; train on {config.data.dataset} with "
                          "run (python -m lthkit run --dataset ...)")
    device = resolve_device(args.device)
    reproduce(args.out, base=config, trials=args.trials, controls=args.control, reinits=args.reinits,
              first_seed=args.seed,
              device=device, cache_dir=args.cache, data_root=args.data,
              progress=not args.no_progress, argv=["python", "-m", "lthkit", *(args.argv or [])],
              **sweep_options(args, device, runs=args.trials * (len(args.control) + args.reinits - 1)))
    print(f"wrote {args.out / 'summary.csv'}, the figures and run_info.json")
    return 0


def add_parser(commands) -> None:
    """``reproduce``: the paper's LeNet-300-100 protocol, several trials, the controls."""
    command = commands.add_parser(
        "reproduce", help="run Frankle & Carbin's LeNet-300-100 protocol: summary.csv and the paper's figures",
        description="Run the paper preset for several trials and the paper's controls (resumable through the cache) "
                    "and write summary.csv, accuracy_vs_density.png, early_stop_vs_density.png and run_info.json "
                    "into --out, updated after every finished run.")
    add_lottery_flags(command, default_preset="paper")
    command.add_argument("--control", type=_controls, default=list(PAPER_CONTROLS),
                         help=f"comma-separated controls to run, or all (default: {','.join(PAPER_CONTROLS)})")
    command.add_argument("--reinits", type=_whole_number_in(1, MAX_REINIT_DRAWS, noun="a whole number of re-initializations",
                                                            out_of_range=f"must be from 1 to {MAX_REINIT_DRAWS}, got {{value}}"),
                         default=1, help="fresh initializations of each ticket the reinit control trains (the paper "
                                         "re-initializes each ticket 3 times, §2; default: 1)")
    command.add_argument("--out", type=Path, required=True, help="folder for the results")
    command.set_defaults(handler=run)
