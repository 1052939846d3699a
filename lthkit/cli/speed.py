"""``python -m lthkit speed``: when is a ticket really smaller or faster? Every export, checked and timed."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import check_paths, comma_separated, resolve_device

#: Most seconds of repeated blocks one timing may take.
MAX_RUN_TIME = 60.0
#: The largest batch size timed (a typo guard: a batch is timed many times).
MAX_BATCH = 65_536


def _batch_sizes(text: str) -> list[int]:
    """``"1,64"`` → ``[1, 64]`` (distinct whole numbers from 1 to 65,536; an argparse type)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated batch sizes such as 1,64, got {text!r}") from None
    if not values or any(not 1 <= value <= MAX_BATCH for value in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct batch sizes from 1 to {MAX_BATCH:,}, got {text!r}")
    return values


def _threads(text: str) -> list:
    """``"1,all"`` → ``[1, "all"]`` (thread counts of at least 1, or all: every usable core)."""
    values = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        if part == "all":
            values.append("all")
            continue
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected thread counts such as 1,all, got {text!r}") from None
        if not 1 <= value <= 4096:
            raise argparse.ArgumentTypeError(f"thread counts must be from 1 to 4096 (or all), got {value}")
        values.append(value)
    if not values or len(set(map(str, values))) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct thread counts such as 1,all, got {text!r}")
    return values


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= MAX_RUN_TIME:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_RUN_TIME:g} seconds, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from ..errors import LthkitError
    from ..export.forms import forms_for
    from ..studies.sparsity_speed import OUTPUTS, gpu_forms_note, run_speed_study, write_study

    if args.out is None and not args.prepare:
        raise LthkitError("--out is required (a folder for the results, e.g. results/sparsity-speed), unless --prepare")
    check_paths(args, OUTPUTS)
    device = resolve_device(args.device)
    runs, skipped = forms_for(device, args.forms)
    if args.forms is not None and skipped:
        raise LthkitError("; ".join(skipped.values()))
    note = gpu_forms_note(device, forms_for(device)[1])
    if note is not None and not args.prepare:
        print(f"GPU forms not measured: {note}")
    study = run_speed_study(args.models, fast=args.fast, batch_sizes=args.batch_sizes, threads=args.threads,
                            forms=runs, min_run_time=args.min_run_time, device=device, cache_dir=args.cache,
                            data_root=args.data, progress=not args.no_progress, prepare_only=args.prepare,
                            argv=["python", "-m", "lthkit", *(args.argv or [])])
    if args.prepare:
        print(f"the IMP runs of {', '.join(args.models)} are in the cache; run the same command without --prepare, on a "
              "quiet machine, to time them")
        return 0
    write_study(args.out, study)
    from ..studies.sparsity_speed import crossovers

    print(f"{'network':<13} {'form':<12} {'batch':>5} {'threads':>7}  faster than dense below")
    for entry in crossovers(study.speed):
        print(f"{entry['model']:<13} {entry['form']:<12} {entry['batch']:>5} {entry['threads']:>7}  {entry['text']}")
    disagree = [row for row in study.exports if not row["agrees"]]
    print(f"every export agrees with the masked network within tolerance: {'yes' if not disagree else 'NO'} "
          f"({len(study.exports)} exports checked)")
    print(f"wrote {', '.join(str(Path(args.out) / name) for name in OUTPUTS)}")
    return 0 if not disagree else 1


def add_parser(commands) -> None:
    """The ``speed`` subcommand: export every ticket of an IMP run, check each form, time it, find the crossovers."""
    from ..export.forms import FORMS
    from ..studies.sparsity_speed import DEFAULTS, NETWORKS

    command = commands.add_parser(
        "speed", help="sparsity is not speed: export each ticket (compact, CSR, 2:4), check it, time it against dense",
        description="Train (or read from the cache) an IMP run of each network down to about 1% of its weights, and "
                    "at every round's density export the ticket as a compact dense network, CSR sparse layers and "
                    "(on a GPU of compute capability 8.0 or later) 2:4 semi-structured layers; check each against "
                    "the masked network on the test set; measure the structure left, the cost of 2:4 re-pruning "
                    "and the file sizes; and time a forward pass of each with torch.utils.benchmark at each batch "
                    "size and thread count. Writes speed.csv, exports.csv, sizes.csv, structure.csv, two_four.csv, "
                    "three figures, run_info.json and a README.md that names the crossover densities into --out. "
                    "Time it on a quiet machine.")
    command.add_argument("--models", type=lambda text: comma_separated(text, list(NETWORKS), "network"),
                         default=list(NETWORKS), help=f"comma-separated networks, or all (default: all: "
                                                      f"{','.join(NETWORKS)})")
    command.add_argument("--fast", action="store_true",
                         help="the presets' fast modes and tiny timings: checks that it works in a minute, measures "
                              "nothing")
    command.add_argument("--batch-sizes", type=_batch_sizes, default=None, metavar="N,N",
                         help=f"batch sizes to time (default: {','.join(map(str, DEFAULTS['full']['batch_sizes']))}; "
                              f"fast: {','.join(map(str, DEFAULTS['fast']['batch_sizes']))})")
    command.add_argument("--threads", type=_threads, default=None, metavar="N,all",
                         help="thread counts to time on a CPU, 'all' for every usable core (default: "
                              f"{','.join(map(str, DEFAULTS['full']['threads']))}; fast: "
                              f"{','.join(map(str, DEFAULTS['fast']['threads']))})")
    command.add_argument("--forms", type=lambda text: comma_separated(text, list(FORMS), "form"), default=None,
                         help="comma-separated forms (default: every form that runs on the device: "
                              f"{', '.join(FORMS)})")
    command.add_argument("--min-run-time", type=_seconds, default=None, metavar="SECONDS",
                         help=f"seconds of repeated blocks per timing (default: {DEFAULTS['full']['min_run_time']:g}; "
                              f"fast: {DEFAULTS['fast']['min_run_time']:g})")
    command.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                         help="where the forms run and are timed (default: the GPU when there is one)")
    command.add_argument("--prepare", action="store_true",
                         help="only train (or read from the cache) the IMP runs, then stop: do it while the machine is "
                              "busy, time on a quiet one")
    command.add_argument("--cache", type=Path, help="cache folder (default: $LTHKIT_CACHE or cache/ in the repo)")
    command.add_argument("--data", type=Path, help="MNIST root (default: $LTHKIT_DATA or data/ in the repo)")
    command.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    command.add_argument("--out", type=Path, default=None,
                         help="folder for the results (required unless --prepare), e.g. results/sparsity-speed")
    command.set_defaults(handler=run)
