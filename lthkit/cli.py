"""Command line: ``python -m lthkit COMMAND ...`` (``python -m lthkit --help`` lists the commands).

``run`` trains IMP from a preset and writes ``results.json``, ``summary.csv`` and
``accuracy_vs_density.png`` into ``--out``::

    python -m lthkit run --preset fast --rounds 5 --rewind init --control ticket --out runs/fast

Every field of :class:`~lthkit.train.TrainConfig` and :class:`~lthkit.data.DataConfig` is also a
flag (``--lr``, ``--iterations``, ``--train-size`` ...), generated from the dataclasses, so the
flags, the configs and the cache keys cannot drift apart. Bad arguments give a one-line error and
exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from pathlib import Path

from . import LthkitError, __version__
from .data import INPUT_SCALINGS, DataConfig
from .lottery import CONTROLS, REWINDS
from .masks import SCOPES
from .models import MODELS
from .train import OPTIMIZERS, TrainConfig


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``) with exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse_optional(kind):
    def parse(text: str):
        if text.lower() in ("none", "null", ""):
            return None
        return kind(text)
    parse.__name__ = kind.__name__
    return parse


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, *, title: str, choices: dict | None = None) -> None:
    """Add one ``--flag`` per field of dataclass ``cls``; a flag not given leaves the preset's value."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        hint = hints[field.name]
        kinds = [k for k in typing.get_args(hint) if k is not type(None)] if _is_union(hint) else [hint]
        kind = kinds[0]
        help_text = docs.get(field.name, field.name).replace("``", "") + " (default: the preset's)"
        if kind is bool:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
            continue
        optional = _is_union(hint) and type(None) in typing.get_args(hint)
        parse = _parse_optional(kind) if optional else kind
        field_choices = (choices or {}).get(field.name)
        group.add_argument(flag, dest=field.name, type=parse, default=argparse.SUPPRESS, choices=field_choices,
                           metavar=None if field_choices else field.name.upper(), help=help_text)


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _field_docs(cls) -> dict[str, str]:
    """First sentence of each field's entry in the class docstring's Attributes section."""
    docs, current = {}, None
    for line in (cls.__doc__ or "").splitlines():
        stripped = line.strip()
        if ":" in stripped and stripped.split(":")[0].isidentifier() and line.startswith(" " * 8) \
                and not line.startswith(" " * 12):
            current, text = stripped.split(":", 1)
            docs[current] = text.strip()
        elif current and stripped and line.startswith(" " * 12):
            docs[current] += " " + stripped
        elif not stripped:
            current = None
    return {name: text.split(". ")[0].rstrip(".") for name, text in docs.items()}


def dataclass_changes(args: argparse.Namespace, cls) -> dict:
    """The fields of ``cls`` that were given on the command line (``none`` included, as None)."""
    given = vars(args)
    return {f.name: given[f.name] for f in dataclasses.fields(cls) if f.name in given}


def _fraction(text: str) -> float:
    value = float(text)
    if math.isnan(value) or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _layer_rate(text: str) -> tuple[str, float]:
    name, sep, rate = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=RATE, got {text!r}")
    return name, _fraction(rate)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_lottery_flags(parser: argparse.ArgumentParser, default_preset: str = "fast") -> None:
    """The IMP flags shared by ``run`` and ``reproduce``."""
    from .experiments import PRESETS

    parser.add_argument("--preset", choices=sorted(PRESETS), default=default_preset,
                        help="starting configuration: 'fast' (a 10k-image subset, 1,500 iterations) or 'paper' "
                             f"(Frankle & Carbin's LeNet protocol); the flags below change it (default: {default_preset})")
    parser.add_argument("--rounds", type=_positive_int, help="pruning rounds after the dense round 0")
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=_fraction, dest="prune_rate",
                      help="fraction of the surviving weights pruned per round, in [0, 1)")
    rate.add_argument("--sparsity", type=_fraction, dest="target_sparsity",
                      help="target sparsity after all rounds, in [0, 1); the per-round rate becomes "
                           "1 - (1 - sparsity)^(1/rounds)")
    parser.add_argument("--scope", choices=SCOPES, help="one magnitude threshold across layers (global) or per layer")
    parser.add_argument("--layer-rate", type=_layer_rate, action="append", metavar="NAME=RATE",
                        help="per-layer rate override, e.g. output=0.1 or fc1=0.3 (repeatable; replaces the "
                             "preset's overrides)")
    parser.add_argument("--rewind", choices=REWINDS,
                        help="where survivors go after pruning: init (θ₀), iteration (θ_k), fraction (θ_k at a "
                             "fraction of training) or none (keep the trained weights)")
    parser.add_argument("--rewind-iteration", type=int, help="k for --rewind iteration")
    parser.add_argument("--rewind-fraction", type=_fraction, help="fraction of training for --rewind fraction")
    parser.add_argument("--model", choices=sorted(MODELS), help="the network")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first trial (default: 0)")
    parser.add_argument("--trials", type=_positive_int, default=1,
                        help="independent trials, seeds SEED, SEED+1, ... (default: 1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train (default: the GPU when there is one)")
    parser.add_argument("--cache", type=Path, help="cache folder (default: $LTHKIT_CACHE or cache/ in the repo)")
    parser.add_argument("--data", type=Path, help="MNIST root (default: $LTHKIT_DATA or data/ in the repo)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_dataclass_flags(parser, TrainConfig, title="training (TrainConfig)", choices={"optimizer": OPTIMIZERS})
    add_dataclass_flags(parser, DataConfig, title="data (DataConfig)", choices={"inputs": INPUT_SCALINGS})


def config_from_args(args: argparse.Namespace):
    """The :class:`~lthkit.lottery.LotteryConfig` the flags describe (before trials and control)."""
    from .experiments import preset

    changes = {name: getattr(args, name) for name in ("rounds", "prune_rate", "target_sparsity", "scope", "rewind",
                                                     "rewind_iteration", "rewind_fraction", "model")
               if getattr(args, name) is not None}
    if args.layer_rate is not None:
        changes["layer_rates"] = tuple(args.layer_rate)
    if args.target_sparsity is not None:
        changes["prune_rate"] = None
    changes["train"] = dataclass_changes(args, TrainConfig)
    # One budget replaces the other: --epochs 3 means "not the preset's iterations".
    if "epochs" in changes["train"] and "iterations" not in changes["train"]:
        changes["train"]["iterations"] = None
    if "iterations" in changes["train"] and "epochs" not in changes["train"]:
        changes["train"]["epochs"] = None
    changes["data"] = dataclass_changes(args, DataConfig)
    return preset(args.preset, **changes)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise LthkitError("--device cuda was asked for, but torch sees no CUDA device")
    return name


def command_run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .experiments import run_experiments, write_summary_csv
    from .files import atomic_write_json
    from .plots import accuracy_vs_density

    config = config_from_args(args)
    device = resolve_device(args.device)
    controls = list(CONTROLS) if args.control == "all" else [args.control]
    # Side by side, round by round: on a GPU the runs of each round train as one batched model.
    configs = [config.replace(control=control, seed=args.seed + trial)
               for trial in range(args.trials) for control in controls]
    results = run_experiments(configs, cache_dir=args.cache, device=device, data_root=args.data,
                              progress=not args.no_progress)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", {"lthkit_version": __version__, "runs": [r.to_dict() for r in results]})
    write_summary_csv(out / "summary.csv", results)
    figure = accuracy_vs_density(results, title=f"IMP on {config.model} ({args.preset} preset)")
    figure.savefig(out / "accuracy_vs_density.png", dpi=120)
    print(f"{'control':<13} {'trial':>5} {'round':>5} {'density':>8} {'early stop':>10} {'test acc':>8}")
    for result in results:
        for r in result.rounds:
            print(f"{result.config.control:<13} {result.config.seed:>5} {r.round:>5} {r.density:>8.3f} "
                  f"{r.early_stop_iteration:>10} {r.test_acc_early_stop:>8.4f}")
    print(f"wrote {out / 'results.json'}, {out / 'summary.csv'} and {out / 'accuracy_vs_density.png'}")
    return 0


def comma_separated(text: str, choices, what: str) -> list[str]:
    """``"a,b"`` → ``["a", "b"]``, each one of ``choices``; ``"all"`` → all of them (an argparse type)."""
    if text == "all":
        return list(choices)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in choices]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown) or text!r}; choose from "
                                         f"{', '.join(choices)} or all")
    return names


def _controls(text: str) -> list[str]:
    return comma_separated(text, CONTROLS, "control")


def command_reproduce(args: argparse.Namespace) -> int:
    from .paper import reproduce

    config = config_from_args(args)
    reproduce(args.out, base=config, trials=args.trials, controls=args.control, first_seed=args.seed,
              device=resolve_device(args.device), cache_dir=args.cache, data_root=args.data,
              progress=not args.no_progress, argv=["python", "-m", "lthkit", *(args.argv or [])])
    print(f"wrote {args.out / 'summary.csv'}, the figures and run_info.json")
    return 0


def command_paper_report(args: argparse.Namespace) -> int:
    from .paper import update_report

    readme = update_report(args.directory)
    print(f"updated the claims and per-round tables in {readme}")
    return 0


def command_data(args: argparse.Namespace) -> int:
    from .data import data_root, read_mnist_raw

    train_images, _, test_images, _ = read_mnist_raw(args.data, download=not args.no_download)
    print(f"MNIST ready in {data_root(args.data) / 'MNIST' / 'raw'}: "
          f"{len(train_images)} training and {len(test_images)} test images")
    return 0


def build_parser() -> Parser:
    parser = Parser(prog="lthkit", description="lthkit: the Lottery Ticket Hypothesis, hands on.")
    parser.add_argument("--version", action="version", version=f"lthkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    run = commands.add_parser(
        "run", help="run iterative magnitude pruning and write results.json, summary.csv and a plot",
        description="Run iterative magnitude pruning (cached and resumable) and write results.json, summary.csv "
                    "and accuracy_vs_density.png into --out.")
    add_lottery_flags(run)
    run.add_argument("--control", choices=(*CONTROLS, "all"), default="ticket",
                     help="what to train each round: the winning ticket, random re-init with its mask, random "
                          "pruning with its per-layer counts, or all three (default: ticket)")
    run.add_argument("--out", type=Path, required=True, help="folder for the results")
    run.set_defaults(handler=command_run)

    reproduce = commands.add_parser(
        "reproduce", help="run Frankle & Carbin's LeNet-300-100 protocol: summary.csv and the paper's figures",
        description="Run the paper preset for several trials and all three controls (resumable through the cache) "
                    "and write summary.csv, accuracy_vs_density.png, early_stop_vs_density.png and run_info.json "
                    "into --out, updated after every finished run.")
    add_lottery_flags(reproduce, default_preset="paper")
    reproduce.add_argument("--control", type=_controls, default=list(CONTROLS),
                           help="comma-separated controls to run, or all (default: all)")
    reproduce.add_argument("--out", type=Path, required=True, help="folder for the results")
    reproduce.set_defaults(handler=command_reproduce)

    report = commands.add_parser(
        "paper-report", help="recompute the claims and per-round tables of a reproduce folder's README.md",
        description="Recompute, from DIRECTORY/summary.csv, the table that sets each of Frankle & Carbin's "
                    "LeNet-300-100 claims beside our measurement, and the table of every round "
                    "(mean [min, max] over trials per control), inside DIRECTORY/README.md.")
    report.add_argument("directory", type=Path, help="a folder written by `reproduce` (holds summary.csv)")
    report.set_defaults(handler=command_paper_report)

    data = commands.add_parser(
        "data", help="check that MNIST is in place (extracting or downloading it if needed)",
        description="Check that MNIST is in place: torchvision verifies the four original files' MD5 sums and "
                    "extracts them, downloading them first if they are missing and --no-download is not given.")
    data.add_argument("--data", type=Path, help="MNIST root (default: $LTHKIT_DATA or data/ in the repo)")
    data.add_argument("--no-download", action="store_true", help="never try the network")
    data.set_defaults(handler=command_data)

    from .grading.command import add_grade_command  # kata grading: lthkit/grading/command.py

    add_grade_command(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except LthkitError as error:
        print(f"lthkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lthkit {args.command}: interrupted; finished rounds are cached, run the same command to resume",
              file=sys.stderr)
        return 130
