"""Command line: ``python -m lthkit COMMAND ...`` (``python -m lthkit --help`` lists the commands).

``run`` trains IMP from a preset and writes ``results.json``, ``summary.csv`` and
``accuracy_vs_density.png`` into ``--out``::

    python -m lthkit run --preset fast --rounds 5 --rewind init --control ticket --out runs/fast

``stability`` measures instability against k and compares the three retraining methods
(notebook 6)::

    python -m lthkit stability --fast --out runs/stability

Every field of :class:`~lthkit.imp.config.LotteryConfig`, :class:`~lthkit.core.train.TrainConfig` and
:class:`~lthkit.core.data.DataConfig` is also a flag (``--rounds``, ``--lr``, ``--train-size`` ...),
generated from the fields' metadata (:mod:`lthkit.core.fields`) by one path, dataclass → argparse →
dataclass (:func:`add_dataclass_flags`, :func:`dataclass_changes`), so the flags, the configs and
the cache keys cannot drift apart. Bad arguments give a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from pathlib import Path

from .. import __version__
from ..core.data import DataConfig
from ..core.fields import field_help
from ..core.train import TrainConfig
from ..errors import LthkitError
from ..imp.branches import BRANCHES, PAPER_CONTROLS
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
        if "choices" in meta:
            options["choices"] = meta["choices"]
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
        text = os.environ.get("LTHKIT_WORKERS")
        try:
            workers = _workers(text) if text else min(os.cpu_count() or 1, runs or os.cpu_count() or 1) \
                if device == "cpu" else 1
        except argparse.ArgumentTypeError as error:
            raise LthkitError(f"$LTHKIT_WORKERS: {error}") from None
    scheduler = scheduler_address(args.scheduler or os.environ.get("LTHKIT_SCHEDULER") or None)
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
    parser.add_argument("--data", type=Path, help="MNIST root (default: $LTHKIT_DATA or data/ in the repo)")
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


#: The files ``run`` writes into ``--out``, as one set.
RUN_OUTPUTS = ("results.json", "summary.csv", "accuracy_vs_density.png")


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


def command_run(args: argparse.Namespace) -> int:
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
    figure = accuracy_vs_density(results, title=f"IMP on {config.model} ({args.preset} preset)")
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
    return comma_separated(text, BRANCHES.controls(), "control")


def command_reproduce(args: argparse.Namespace) -> int:
    from ..studies.paper import REPRODUCE_OUTPUTS, reproduce

    check_paths(args, REPRODUCE_OUTPUTS)
    config = config_from_args(args)
    device = resolve_device(args.device)
    reproduce(args.out, base=config, trials=args.trials, controls=args.control, first_seed=args.seed,
              device=device, cache_dir=args.cache, data_root=args.data,
              progress=not args.no_progress, argv=["python", "-m", "lthkit", *(args.argv or [])],
              **sweep_options(args, device, runs=args.trials * len(args.control)))
    print(f"wrote {args.out / 'summary.csv'}, the figures and run_info.json")
    return 0


def command_paper_report(args: argparse.Namespace) -> int:
    from ..studies.paper import update_report

    readme = update_report(args.directory)
    print(f"updated the claims and per-round tables in {readme}")
    return 0


def command_merge_runs(args: argparse.Namespace) -> int:
    from ..studies.paper import merge_runs

    out = merge_runs(args.folders, args.out, argv=["python", "-m", "lthkit", *(args.argv or [])])
    print(f"merged {len(args.folders)} runs into {out}: summary.csv, the figures, run_info.json, README.md")
    return 0


def report_kind(directory: Path) -> str:
    """What a results folder holds: ``"stability"``, ``"anatomy"`` or ``"paper"`` (a ``reproduce`` folder).

    Raises:
        LthkitError: it is not a folder, or holds none of them.
    """
    if not directory.is_dir():
        raise LthkitError(f"{directory} {'is a file' if directory.exists() else 'does not exist'}; expected a results "
                          "folder of reproduce, stability or anatomy")
    if (directory / "stability.csv").is_file():
        return "stability"
    summary = directory / "summary.csv"
    if summary.is_file():
        with open(summary, encoding="utf-8", errors="replace") as file:
            header = file.readline()
        return "anatomy" if header.split(",")[0].strip() == "experiment" else "paper"
    raise LthkitError(f"{directory} holds neither stability.csv nor summary.csv; expected a results folder of "
                      "reproduce, stability or anatomy")


def command_report(args: argparse.Namespace) -> int:
    kind = report_kind(args.directory)
    if kind == "stability":
        from ..studies.stability import write_report
    elif kind == "anatomy":
        from ..studies.anatomy import write_report
    else:
        from ..studies.paper import update_report as write_report
    readme = write_report(args.directory)
    print(f"rewrote the {kind} report {readme} from the folder's files")
    return 0


def command_data(args: argparse.Namespace) -> int:
    from ..core.data import data_root, read_mnist_raw

    train_images, _, test_images, _ = read_mnist_raw(args.data, download=not args.no_download)
    print(f"MNIST ready in {data_root(args.data) / 'MNIST' / 'raw'}: "
          f"{len(train_images)} training and {len(test_images)} test images")
    return 0


#: The app notebook that ``lthkit dashboard`` serves: one cell that makes notebook 3's Dashboard.
DASHBOARD_APP = Path(__file__).resolve().parents[1] / "course" / "app" / "dashboard.ipynb"


def dashboard_command_line(port: int, token: str, *, open_browser: bool = True) -> list[str]:
    """The Voilà command line that serves :data:`DASHBOARD_APP` on loopback with ``token``.

    Voilà shows the cells' outputs only (no code), on 127.0.0.1 alone, and refuses a request
    without the token; ``port_retries=0``: the port printed is the port served.
    """
    return [sys.executable, "-m", "voila", str(DASHBOARD_APP), "--Voila.ip=127.0.0.1", f"--port={port}",
            "--Voila.port_retries=0", f"--token={token}", "--VoilaConfiguration.strip_sources=True",
            *([] if open_browser else ["--no-browser"])]


def command_dashboard(args: argparse.Namespace) -> int:
    import importlib.util
    import secrets
    import socket

    if importlib.util.find_spec("voila") is None:
        raise LthkitError("voila is not installed: pip install -r requirements.txt (it pins voila)")
    if not 0 <= args.port <= 65535:
        raise LthkitError(f"--port must be in 0..65535, got {args.port}")
    port = args.port
    if port == 0:  # a free loopback port, chosen here so that the URL below is the one served
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    token = args.token or secrets.token_hex(24)
    print(f"lthkit dashboard: serving the Explore dashboard at http://127.0.0.1:{port}/?token={token}", flush=True)
    print("(Ctrl-C stops it; runs are cached like the notebooks')", flush=True)
    # This process becomes Voilà (no parent left to orphan it): Ctrl-C or a signal stops the server itself.
    command = dashboard_command_line(port, token, open_browser=not args.no_browser)
    os.execv(command[0], command)
    return 0  # not reached


#: The files ``stability`` writes into ``--out``, as one set.
STABILITY_OUTPUTS = ("stability.csv", "retraining.csv", "error_along_path.png", "instability_vs_k.png",
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
    from ..studies.stability import STUDY, at_rewind

    mode = "fast" if args.fast else "full"
    changes = {"train": dataclass_changes(args, TrainConfig), "data": dataclass_changes(args, DataConfig)}
    if args.rounds is not None:
        changes["rounds"] = args.rounds
    if args.rate is not None:
        changes["prune_rate"] = args.rate
    base = preset_config("stability", fast=args.fast, **changes)
    study = STUDY[mode]
    ks = args.k if args.k is not None else list(study["ks"])
    retrain_k = study["retrain_k"] if args.retrain_k == "default" else args.retrain_k
    for k in [*ks, *([] if retrain_k is None else [retrain_k])]:
        at_rewind(base, k)  # a k past the budget fails here
    for seed in {args.seed, args.seed + (args.trials or study["trials"]) - 1}:
        base.replace(seed=seed)
    return {"base": base, "ks": ks, "trials": args.trials or study["trials"],
            "controls": args.controls or list(study["controls"]), "retrain_k": retrain_k,
            "alphas": alpha_grid(args.points), "threshold": args.threshold / 100, "mode": mode}


def command_stability(args: argparse.Namespace) -> int:
    import platform
    import time

    from ..core.files import atomic_write_files, figure_png, json_bytes, with_kept_notes
    from ..runs.cache import load_cached
    from ..studies.stability import (
        RETRAINING_COLUMNS,
        STABILITY_COLUMNS,
        barrier_table,
        csv_text,
        report_text,
        retraining_configs,
        run_retraining,
        run_stability,
        stability_pairs,
    )

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
    from ..reporting.provenance import git_commit, hardware_description

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
    info = {
        "command": " ".join(["python", "-m", "lthkit", *(args.argv or [])]), "lthkit_version": __version__,
        "git_commit": git_commit(), "mode": plan["mode"], "config": base.to_dict(), "ks": plan["ks"],
        "trials": plan["trials"], "controls": plan["controls"], "retrain_k": plan["retrain_k"],
        "alphas": plan["alphas"], "threshold": plan["threshold"], "hardware": hardware_description(device),
        "machine": platform.node(), "trainings": len(seconds), "training_seconds": round(sum(seconds), 1),
        "seconds_per_training": round(sum(seconds) / len(seconds), 2) if seconds else None,
        "wall_seconds_this_invocation": round(time.time() - began, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    files[args.out / "run_info.json"] = json_bytes(info)
    files[args.out / "README.md"] = with_kept_notes(args.out / "README.md", report_text(rows, retraining, info)).encode()
    atomic_write_files(files)
    print(f"{'kind':<13} {'k':>6} {'density':>8} {'trials':>6} {'barrier (points), mean [min, max]':>34}")
    for entry in barrier_table(rows):
        print(f"{entry['control']:<13} {entry['k']:>6} {entry['density']:>8.3f} {entry['trials']:>6} "
              f"{100 * entry['barrier_mean']:>14.2f} [{100 * entry['barrier_min']:.2f}, "
              f"{100 * entry['barrier_max']:.2f}]")
    print(f"wrote {', '.join(str(args.out / name) for name in STABILITY_OUTPUTS if args.out / name in files)}")
    return 0


def add_stability_command(commands) -> None:
    """The ``stability`` subcommand: instability against k, and the three retraining methods."""
    from ..core.paths import DEFAULT_POINTS
    from ..studies.stability import RETRAINING, STUDY, TWINS

    command = commands.add_parser(
        "stability", help="instability analysis (error barrier against k) and fine-tuning vs weight vs LR rewinding",
        description="Train two copies of each network from θ_k with different batch orders, walk the linear path "
                    "between them and measure its error barrier, for the dense network, IMP subnetworks and the "
                    "controls at each k; then compare fine-tuning, weight rewinding and learning-rate rewinding at "
                    "equal retraining budgets. Cached and resumable; writes stability.csv (one row per k, "
                    "sparsity, control, trial and α), retraining.csv, three figures, run_info.json and a README.md "
                    "report into --out.")
    command.add_argument("--fast", action="store_true",
                         help="the small fast mode of the stability preset (seconds), instead of the full one")
    command.add_argument("--k", type=_iterations_list, default=None, metavar="K,K,...",
                         help=f"iterations to split the copies at (default: {','.join(map(str, STUDY['full']['ks']))}; "
                              f"fast: {','.join(map(str, STUDY['fast']['ks']))})")
    command.add_argument("--controls", type=lambda text: comma_separated(text, list(TWINS), "control"), default=None,
                         help="comma-separated subnetworks to measure: ticket (also gives the dense network), "
                              "random_prune, reinit, or all (default: all; fast: ticket,random_prune)")
    command.add_argument("--trials", type=_trials, default=None,
                         help=f"trials per point (default: {STUDY['full']['trials']}; fast: {STUDY['fast']['trials']})")
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
                              f"(default: {STUDY['full']['retrain_k']}; fast: {STUDY['fast']['retrain_k']})")
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
    command.set_defaults(handler=command_stability)


def _rate(text: str) -> float:
    from ..core.fields import parse_fraction

    return parse_fraction(text)


def build_parser() -> Parser:
    parser = Parser(prog="lthkit", description="lthkit: the Lottery Ticket Hypothesis, hands on.")
    parser.add_argument("--version", action="version", version=f"lthkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    for name, summary, description, default_preset, control, handler in (
            ("run", "run iterative magnitude pruning and write results.json, summary.csv and a plot",
             "Run iterative magnitude pruning (cached and resumable) and write results.json, summary.csv and "
             "accuracy_vs_density.png into --out.", "fast",
             dict(choices=(*BRANCHES.controls(), "all"), default="ticket",
                  help="what to train each round: the winning ticket, random re-init with its mask, random "
                       "pruning with its per-layer counts, or all three (default: ticket)"), command_run),
            ("reproduce", "run Frankle & Carbin's LeNet-300-100 protocol: summary.csv and the paper's figures",
             "Run the paper preset for several trials and all three controls (resumable through the cache) and "
             "write summary.csv, accuracy_vs_density.png, early_stop_vs_density.png and run_info.json into --out, "
             "updated after every finished run.", "paper",
             dict(type=_controls, default=list(PAPER_CONTROLS),
                  help="comma-separated controls to run, or all (default: all)"),
             command_reproduce)):
        command = commands.add_parser(name, help=summary, description=description)
        add_lottery_flags(command, default_preset=default_preset)
        command.add_argument("--control", **control)
        command.add_argument("--out", type=Path, required=True, help="folder for the results")
        command.set_defaults(handler=handler)

    report = commands.add_parser(
        "paper-report", help="recompute the claims and per-round tables of a reproduce folder's README.md",
        description="Recompute, from DIRECTORY/summary.csv, the table that sets each of Frankle & Carbin's "
                    "LeNet-300-100 claims beside our measurement, and the table of every round "
                    "(mean [min, max] over trials per control), inside DIRECTORY/README.md.")
    report.add_argument("directory", type=Path, help="a folder written by `reproduce` (holds summary.csv)")
    report.set_defaults(handler=command_paper_report)
    merge = commands.add_parser(
        "merge-runs", help="merge reproduce folders of one protocol that ran different trials (other machines, "
                           "other sessions)",
        description="Merge the summary.csv, run records and figures of two or more `reproduce` folders that ran the "
                    "same protocol (same config but the seed, same controls, same lthkit code version) on different "
                    "trials, and write the report's tables. Run each part from the same lthkit commit.")
    merge.add_argument("folders", type=Path, nargs="+", help="the folders written by `reproduce`")
    merge.add_argument("--out", type=Path, required=True, help="the merged folder (may be one of the folders)")
    merge.set_defaults(handler=command_merge_runs)
    report = commands.add_parser(
        "report", help="rewrite the README.md report of a results folder (reproduce, stability or anatomy)",
        description="Rewrite DIRECTORY/README.md from the folder's CSVs and run_info.json, whichever command wrote "
                    "them: reproduce (the claims and per-round tables, as paper-report), stability or anatomy "
                    "(the whole report). Nothing is trained.")
    report.add_argument("directory", type=Path, help="a folder written by reproduce, stability or anatomy")
    report.set_defaults(handler=command_report)

    data = commands.add_parser(
        "data", help="check that MNIST is in place (extracting or downloading it if needed)",
        description="Check that MNIST is in place: torchvision verifies the four original files' MD5 sums and "
                    "extracts them, downloading them first if they are missing and --no-download is not given.")
    data.add_argument("--data", type=Path, help="MNIST root (default: $LTHKIT_DATA or data/ in the repo)")
    data.add_argument("--no-download", action="store_true", help="never try the network")
    data.set_defaults(handler=command_data)

    dashboard = commands.add_parser(
        "dashboard", help="serve notebook 3's Explore dashboard as a web app (Voilà, no code cells)",
        description="Serve the Explore dashboard of notebook 3 as a standalone web page with Voilà: the same "
                    "controls, Run, progress and plot, no code cells. It listens on 127.0.0.1 only and needs the "
                    "token in the printed URL.")
    dashboard.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    dashboard.add_argument("--token", default=None, help="the access token (default: a random one)")
    dashboard.add_argument("--no-browser", action="store_true", help="only print the URL, open no browser")
    dashboard.set_defaults(handler=command_dashboard)

    add_stability_command(commands)
    add_anatomy_commands(commands)  # ticket anatomy (issue 16): the block below

    from .grade import add_grade_command  # kata grading: lthkit/grading/command.py

    add_grade_command(commands)
    return parser


# --- Ticket anatomy (issue 16): `anatomy` and `prune-at-init` ---------------------------------------

def _experiments(text: str) -> list[str]:
    from ..studies.anatomy import EXPERIMENTS

    return comma_separated(text, list(EXPERIMENTS), "experiment")


def command_anatomy(args: argparse.Namespace) -> int:
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


def add_anatomy_commands(commands) -> None:
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
        command.set_defaults(handler=command_anatomy)


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
    except OSError as error:  # a file the checks could not foresee (a full disk, a folder gone read-only)
        reason = error.strerror or (str(error).splitlines() or [type(error).__name__])[0]
        where = f": {error.filename}" if error.filename else ""
        print(f"lthkit {args.command}: error: {reason}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lthkit {args.command}: interrupted; finished rounds are cached, run the same command to resume",
              file=sys.stderr)
        return 130
