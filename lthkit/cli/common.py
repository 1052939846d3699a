"""What every command shares: the one-line-error parser, flags made from the configs' fields, the IMP
flags of run/reproduce/anatomy, sweep options, paths checked before any work."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path

from .. import settings
from ..core.data import DataConfig
from ..core.fields import field_help
from ..core.train import TrainConfig
from ..errors import LthkitError
from ..imp.config import LotteryConfig


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``) with exit status 2, and that refuses
    a flag given twice with different values (``--lr 0.1 --lr 0.2``; the same value twice is fine)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        self._refuse_conflicting_repeats(args)
        return super().parse_known_args(args, namespace)

    def _action_of(self, token: str):
        """The optional action ``token`` names (argparse's unique-prefix rule included), or None."""
        name = token.split("=", 1)[0]
        if name in self._option_string_actions:
            return self._option_string_actions[name], name
        if self.allow_abbrev and name.startswith("--"):
            matches = [option for option in self._option_string_actions if option.startswith(name)]
            if len(matches) == 1:
                return self._option_string_actions[matches[0]], matches[0]
        return None, name

    def _refuse_conflicting_repeats(self, args: list[str]) -> None:
        """Error when one single-valued flag of this parser is given twice with different values."""
        seen: dict[str, tuple[str, object]] = {}
        index = 0
        while index < len(args):
            token = args[index]
            index += 1
            if token == "--":
                break
            if not token.startswith("-") or token == "-":
                if self._subparsers is not None:
                    break  # a subcommand: its own parser checks its flags
                continue
            action, option = self._action_of(token)
            if action is None or isinstance(action, (argparse._AppendAction, argparse._HelpAction,
                                                     argparse._VersionAction, argparse._CountAction)):
                continue
            if isinstance(action, argparse.BooleanOptionalAction):
                text, value = option, not option.startswith("--no-")
            elif isinstance(action, argparse._StoreConstAction):  # store_true / store_false / store_const
                text, value = option, action.const
            elif action.nargs in (None, "?"):
                if "=" in token:
                    text = token.split("=", 1)[1]
                elif index < len(args):
                    text = args[index]
                    index += 1
                else:
                    continue  # argparse reports the missing value
                try:
                    value = action.type(text) if callable(action.type) else text
                except (argparse.ArgumentTypeError, TypeError, ValueError):
                    continue  # argparse reports the bad value
            else:
                continue
            key = action.dest
            if key in seen and seen[key][1] != value:
                self.error(f"argument {'/'.join(action.option_strings)}: given twice with different values "
                           f"({seen[key][0]} and {text})")
            seen.setdefault(key, (text, value))


def _parse_typed(kind, optional: bool):
    """A flag parser for a field of type ``kind`` (``none`` reads as None where the field is optional)."""
    def parse(text: str):
        if optional and text.lower() in ("none", "null", ""):
            return None
        try:
            return kind(text)
        except ValueError:
            what = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
            raise argparse.ArgumentTypeError(f"expected {what}{' or none' if optional else ''}, got {text!r}") from None
    return parse


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, *, title: str | None = None,
                        default_note: str = "") -> None:
    """Add one ``--flag`` per field of dataclass ``cls``, described by the field's metadata.

    The metadata keys are described in :mod:`lthkit.core.fields`. A flag that is not given leaves the
    preset's value (it is absent from the parsed namespace); :func:`dataclass_changes` reads the
    given ones back.

    Args:
        parser: where the flags go.
        cls: a config dataclass (:class:`~lthkit.core.train.TrainConfig`, ...).
        title: put the flags in an argument group with this title (``None``: in ``parser`` itself).
        default_note: appended to every flag's help, e.g. ``" (default: the preset's)"``.
    """
    target = parser if title is None else parser.add_argument_group(title)
    exclusive = {}  # mutually exclusive groups by their metadata name
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if not meta.get("cli", True):
            continue
        group = target
        if "exclusive" in meta:
            if meta["exclusive"] not in exclusive:
                exclusive[meta["exclusive"]] = target.add_mutually_exclusive_group()
            group = exclusive[meta["exclusive"]]
        flag = meta.get("flag", "--" + field.name.replace("_", "-"))
        options = {"dest": field.name, "default": argparse.SUPPRESS, "help": field_help(field) + default_note}
        hint = hints[field.name]
        kinds = [k for k in typing.get_args(hint) if k is not type(None)] if _is_union(hint) else [hint]
        if kinds[0] is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
            continue
        optional = _is_union(hint) and type(None) in typing.get_args(hint)
        options["type"] = meta.get("parse") or _parse_typed(kinds[0], optional)
        if "choices" in meta:  # a registry's names are read now, so an entry added in a test is offered too
            options["choices"] = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
        else:
            options["metavar"] = meta.get("metavar", field.name.upper())
        if meta.get("repeat"):
            options["action"] = "append"
        group.add_argument(flag, **options)


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def dataclass_changes(args: argparse.Namespace, cls) -> dict:
    """The fields of ``cls`` that were given on the command line (``none`` included, as None).

    A given field whose metadata ``replaces`` another field that was not given sets that one to
    None (``--epochs 3`` means "not the preset's iterations").
    """
    given = vars(args)
    # Fields without a flag (``cli: False``) may share a name with a command's own flag (--seed, --data).
    changes = {f.name: given[f.name] for f in dataclasses.fields(cls)
               if f.name in given and f.metadata.get("cli", True)}
    for f in dataclasses.fields(cls):
        replaced = f.metadata.get("replaces")
        if f.name in changes and replaced and replaced not in changes:
            changes[replaced] = None
    return changes


#: More trials than this is a typo, not an experiment: each is a full IMP run per control.
MAX_TRIALS = 1000


def _whole_number_in(low: int, high: int, *, noun: str, out_of_range: str):
    """A flag parser for a whole number in [low, high]; ``out_of_range`` is formatted with ``value``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(out_of_range.format(value=value))
        return value
    return parse


_trials = _whole_number_in(1, MAX_TRIALS, noun="a whole number",
                           out_of_range=f"must be from 1 to {MAX_TRIALS} (each trial is a full IMP run), got {{value}}")
_workers = _whole_number_in(1, 1024, noun="a whole number of workers",
                            out_of_range="workers must be between 1 and 1024, got {value}")


def sweep_options(args: argparse.Namespace, device: str = "cpu", runs: int | None = None) -> dict:
    """``workers`` and ``scheduler`` for :func:`lthkit.runs.experiments.run_experiments` from the flags and environment.

    Without ``--workers`` nor ``$LTHKIT_WORKERS``: one worker per core on a CPU, but no more than the
    ``runs`` the command trains side by side (a lone run cannot be split, so it trains in this
    process, with no cluster to start); on a GPU one (this process, which trains the runs of each
    round batched).

    Raises:
        LthkitError: ``$LTHKIT_WORKERS`` is not a number of workers, or the scheduler address is malformed.
    """
    import os

    from ..runs.sweep import scheduler_address

    workers = args.workers
    if workers is None:
        text = settings.text("LTHKIT_WORKERS")
        try:
            workers = _workers(text) if text else min(os.cpu_count() or 1, runs or os.cpu_count() or 1) \
                if device == "cpu" else 1
        except argparse.ArgumentTypeError as error:
            raise LthkitError(f"$LTHKIT_WORKERS: {error}") from None
    scheduler = scheduler_address(args.scheduler or settings.text("LTHKIT_SCHEDULER"))
    return {"workers": workers, "scheduler": scheduler}


def add_lottery_flags(parser: argparse.ArgumentParser, default_preset: str = "fast", presets=None,
                      preset_help: str | None = None) -> None:
    """The IMP flags shared by ``run`` and ``reproduce``: the preset, the configs' fields and the run's options.

    ``presets`` (names of :data:`lthkit.runs.presets.PRESETS`) replaces the command line's two presets
    (:data:`~lthkit.runs.presets.CLI_PRESETS`); :func:`config_from_args` then reads those.
    """
    from ..runs.presets import CLI_PRESETS

    parser.add_argument("--preset", choices=sorted(presets or CLI_PRESETS), default=default_preset,
                        help=(preset_help or "starting configuration: 'fast' (a 10k-image subset, 1,500 iterations) "
                              "or 'paper' (Frankle & Carbin's LeNet protocol)") +
                        f"; the flags below change it (default: {default_preset})")
    parser.set_defaults(preset_names=tuple(presets) if presets else None)
    add_dataclass_flags(parser, LotteryConfig)
    parser.add_argument("--seed", type=_parse_typed(int, False), default=0,
                        help="seed of the first trial (default: 0)")
    parser.add_argument("--trials", type=_trials, default=1,
                        help="independent trials, seeds SEED, SEED+1, ... (default: 1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train (default: the GPU when there is one)")
    parser.add_argument("--cache", type=Path, help="cache folder (default: $LTHKIT_CACHE or cache/ in the repo)")
    parser.add_argument("--data", type=Path, help="data root, holding MNIST/ (and FashionMNIST/) (default: "
                                                  "$LTHKIT_DATA or data/ in the repo)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--workers", type=_workers, default=None,
                        help="single-threaded worker processes of a local Dask cluster, each training one round "
                             "of one run at a time; 1 trains in this process (default: $LTHKIT_WORKERS, else "
                             "the number of cores on a CPU, at most one per run, and 1 on a GPU)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="run the sweep on an existing Dask cluster whose workers share the cache folder "
                             "(default: $LTHKIT_SCHEDULER; none: a local cluster of --workers)")
    add_dataclass_flags(parser, TrainConfig, title="training (TrainConfig)", default_note=" (default: the preset's)")
    add_dataclass_flags(parser, DataConfig, title="data (DataConfig)", default_note=" (default: the preset's)")


def config_from_args(args: argparse.Namespace) -> LotteryConfig:
    """The :class:`~lthkit.imp.config.LotteryConfig` the flags describe (before trials and control).

    Raises:
        LthkitError: the flags describe no valid config (checked here, before any data or cache is touched),
            including any trial's seed past 64 bits.
    """
    from ..runs.presets import preset

    changes = dataclass_changes(args, LotteryConfig)
    changes["train"] = dataclass_changes(args, TrainConfig)
    changes["data"] = dataclass_changes(args, DataConfig)
    names = getattr(args, "preset_names", None)
    if names is None:
        config = preset(args.preset, **changes)
    else:
        from ..runs.presets import preset_config

        config = preset_config(args.preset, names=names, **changes)
    last_seed = args.seed + getattr(args, "trials", 1) - 1
    for seed in {args.seed, last_seed}:
        config.replace(seed=seed)  # a seed out of range fails here, before any work
    return config


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise LthkitError("--device cuda was asked for, but torch sees no CUDA device")
    return name


def check_paths(args: argparse.Namespace, outputs=()) -> None:
    """Check ``--out``, ``--cache`` and ``--data`` before any work starts (nothing is created here).

    Args:
        args: the parsed command line of ``run`` or ``reproduce``.
        outputs: the file names the command will write into ``--out`` (none may be a folder).

    Raises:
        LthkitError: a folder that cannot be used, named with its flag.
    """
    from ..core.files import check_writable_folder
    from ..runs.cache import cache_root

    if getattr(args, "out", None) is not None:
        check_writable_folder(args.out, f"--out {args.out}", outputs)
    cache = cache_root(args.cache)
    check_writable_folder(cache, f"--cache {args.cache}" if args.cache is not None else f"the cache folder {cache}")
    if getattr(args, "data", None) is not None and args.data.exists() and not args.data.is_dir():
        raise LthkitError(f"--data {args.data} is a file, not a folder")


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


def _rate(text: str) -> float:
    from ..core.fields import parse_fraction

    return parse_fraction(text)
