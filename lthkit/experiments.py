"""Presets and cached, resumable IMP runs.

:func:`run_experiment` is :func:`lthkit.lottery.run_lottery` with a disk cache: every finished
round is written to ``<cache>/<key>/`` as soon as it ends, where the key hashes the full config
*and* the code version (lthkit's version plus a hash of the source of every module the core
imports, see :func:`core_modules`), so a bug fix never leaves stale results in place. Running a
finished config again returns at once without loading MNIST; an interrupted run (Ctrl-C, a killed
kernel) resumes after its last finished round. Every write is atomic (a temporary file renamed
into place); every read is checked (types, ranges, the model's layer names and shapes), and an
entry that fails a check is reported in one line, removed and recomputed. Two processes on one
entry take turns through a per-entry file lock: the second waits, then reads the first's rounds.

The cache lives in the ``cache_dir`` argument, else ``$LTHKIT_CACHE``, else ``cache/`` at the
repository root (git-ignored).

Presets (:data:`PRESETS`, the command line's two from the one registry, :mod:`lthkit.presets`):

* ``paper``: Frankle & Carbin's LeNet-300-100 protocol: Adam 1.2e-3, batch 60, 50,000
  iterations, validation every 100 iterations, layer-wise pruning at 20% per round with the
  output layer at 10%, survivors rewound to θ₀, 5,000 validation images.
* ``fast``: the same network and rates on a 10,000-image subset with a 1,500-iteration budget,
  so that a 5-round curve takes well under a minute on two CPU cores.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import math
import os
import shutil
import sys
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from . import LthkitError, __version__
from .files import atomic_save_tensors, atomic_write_bytes, atomic_write_json
from .branches import get_branch
from .data import REPO_ROOT, DataConfig, MNISTData, load_mnist
from .lottery import (CONTROLS, LotteryConfig, LotteryResult, RoundRecord, RoundResult, model_layout, run_lotteries,
                      with_dependencies)
from .fields import check_int
from .masks import density
from .presets import CLI_PRESETS, preset_config
from .presets import PRESETS as _PRESETS

#: The module whose imports make up the core: the source of every lthkit module it imports, directly
#: or through others (function-local imports included), is part of every cache key.
CORE_ENTRY = "experiments"

#: The command line's presets, by name (their full mode; the one registry is :data:`lthkit.presets.PRESETS`).
PRESETS: dict[str, LotteryConfig] = {name: _PRESETS[name]["full"] for name in CLI_PRESETS}


def preset(name: str, **changes) -> LotteryConfig:
    """A preset config, optionally changed (``preset("fast", rounds=3, train={"iterations": 500})``).

    Raises:
        LthkitError: unknown preset name or bad changes.
    """
    return preset_config(name, names=PRESETS, **changes)


def _module_file(package: Path, dotted: str) -> Path | None:
    """The source file of lthkit module ``dotted`` (``"lottery"``, ``"grading.command"``), if it exists."""
    base = package.joinpath(*dotted.split(".")) if dotted else package
    candidates = (base.with_suffix(".py"), base / "__init__.py") if dotted else (package / "__init__.py",)
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _imported_modules(package: Path, dotted: str) -> set[str]:
    """The lthkit modules that module ``dotted`` imports anywhere in its source (read, not run)."""
    path = _module_file(package, dotted)
    is_package = path.name == "__init__.py"
    parts = dotted.split(".") if dotted else []
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # ``from . import x`` inside module a.b means package a; inside package a/__init__ it means a.
                anchor = parts if is_package else parts[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
                prefix = "lthkit." + base if base else "lthkit"
            elif node.module and (node.module == "lthkit" or node.module.startswith("lthkit.")):
                prefix = node.module
            else:
                continue
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]  # a name may be a submodule
        else:
            continue
        for name in names:
            if name == "lthkit" or name.startswith("lthkit."):
                relative = name[len("lthkit."):] if name != "lthkit" else ""
                # Importing a.b runs a/__init__.py first.
                chain = relative.split(".") if relative else []
                for depth in range(len(chain) + 1):
                    candidate = ".".join(chain[:depth])
                    if _module_file(package, candidate) is not None:
                        found.add(candidate)
    return found


def core_modules(package: Path | None = None) -> list[Path]:
    """The source files of the lthkit modules the core imports, starting from :data:`CORE_ENTRY`.

    The imports are read from the source (:mod:`ast`), so a module imported inside a function
    counts too, and nothing is run. ``plots.py``, ``widgets.py``, the CLI and the grader are not
    imported by the core, so editing them leaves every cache key as it was.

    Args:
        package: the ``lthkit`` package folder (default: this one).

    Returns:
        The files, sorted by path.
    """
    package = Path(__file__).resolve().parent if package is None else Path(package)
    seen, todo = set(), [CORE_ENTRY]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_imported_modules(package, module) - seen)
    return sorted(_module_file(package, module) for module in seen)


@lru_cache(maxsize=1)
def code_version() -> str:
    """lthkit's version plus a short hash of the source of every module in :func:`core_modules`.

    Example:
        >>> code_version().startswith(__version__ + "+")
        True
    """
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in core_modules(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def cache_root(cache_dir=None) -> Path:
    """The cache folder: ``cache_dir``, else ``$LTHKIT_CACHE``, else ``cache/`` at the repo root."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("LTHKIT_CACHE")
    return Path(env).expanduser() if env else REPO_ROOT / "cache"


def cache_key(config: LotteryConfig, code: str | None = None) -> str:
    """The cache key of a config: its hash together with ``code`` (default: :func:`code_version`)."""
    payload = json.dumps({"config": config.to_dict(), "code": code_version() if code is None else code},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def default_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


# --- the disk store -------------------------------------------------------------------------------

def provenance(device) -> dict:
    """Where and with what a round was computed: lthkit's code version, torch's version, the device, threads."""
    device = torch.device(device)
    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return {"code_version": code_version(), "torch": torch.__version__, "device": name,
            "threads": torch.get_num_threads()}


def _short(error: BaseException) -> str:
    """An exception as one short line of plain text (no tensor dumps, no escape codes)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = "".join(character for character in text if character.isprintable())
    text = f"{type(error).__name__}: {text}" if not isinstance(error, LthkitError) else text
    return text if len(text) <= 160 else text[:157] + "..."


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _report(message: str) -> None:
    """One line on stderr, above any progress bar (never glued to one)."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


class DiskStore:
    """A :class:`lthkit.lottery.RoundStore` in a cache folder, one set of files per round.

    ``round_NNN.json`` holds the metrics (and the round's :func:`provenance`) and is written last,
    so it marks a finished round; ``round_NNN.masks.pt`` the mask; ``round_NNN.state.pt`` the
    tensors needed to continue. The folder is made when the first round is saved, so a run that
    fails before that leaves nothing behind.

    A round is trusted only after it is checked: metrics of the right types and ranges
    (:meth:`lthkit.lottery.RoundResult.from_dict`), masks and weights with the layer names and
    shapes of the config's model. Anything else is reported in one line, removed with every later
    round (they were computed from it) and recomputed.

    Args:
        directory: the cache entry (see :func:`cache_entry`).
        config: the run whose rounds it holds.
        device: where the rounds are trained (recorded in their provenance).
        log: called with each one-line report (default: a line on stderr, above the progress bars).
    """

    def __init__(self, directory, config: LotteryConfig, *, device=None, log=None):
        self.directory = Path(directory)
        self.config = config
        self.device = default_device() if device is None else device
        self.log = log or _report

    def _paths(self, round_index: int) -> tuple[Path, Path, Path]:
        stem = self.directory / f"round_{round_index:03d}"
        return stem.with_suffix(".json"), Path(f"{stem}.masks.pt"), Path(f"{stem}.state.pt")

    def finished_rounds(self) -> int:
        """How many consecutive rounds, from round 0, have their metrics on disk."""
        count = 0
        while self._paths(count)[0].is_file():
            count += 1
        return count

    @contextmanager
    def locked(self):
        """A context that holds this entry's lock: one process at a time trains (or reads) its rounds.

        The lock is a file beside the entry (``<key>.lock``), held through :mod:`filelock`; a
        second process waits for the first to finish, then reads its rounds from the cache
        instead of training them again. The operating system releases the lock of a killed process.
        """
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{self.directory}.lock", is_singleton=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.log(f"lthkit: cache entry {self.directory.name} is being computed by another process; waiting for it")
            lock.acquire()
        try:
            yield self
        finally:
            lock.release()

    def load_result(self, round_index: int) -> tuple[RoundResult, dict] | None:
        """The metrics and mask of a finished round, without its state tensors (``None`` if absent)."""
        metrics_path, masks_path, _ = self._paths(round_index)
        if not self.directory.is_dir() and self.directory.exists():
            self._discard_from(round_index, LthkitError("the entry is a file, not a folder"))
            return None
        if not metrics_path.exists():
            return None
        try:
            data = json.loads(metrics_path.read_text())
            round_provenance = data.pop("provenance", {}) if isinstance(data, dict) else {}
            if not isinstance(round_provenance, dict):
                raise LthkitError(f"provenance must be a dict, got {round_provenance!r}"[:200])
            result = RoundResult.from_dict(data)
            result.provenance = round_provenance
            if result.round != round_index:
                raise LthkitError(f"the metrics are of round {result.round}")
            mask = torch.load(masks_path, weights_only=True)
            self._check_masks(mask, result)
            return result, mask
        except Exception as error:  # any decoding or checking problem: report, drop, recompute
            self._discard_from(round_index, error)
            return None

    def load(self, round_index: int) -> RoundRecord | None:
        loaded = self.load_result(round_index)
        if loaded is None:
            return None
        result, mask = loaded
        try:
            state = torch.load(self._paths(round_index)[2], weights_only=True)
            if not isinstance(state, dict) or set(state) != {"trained_state", "rewind_state"}:
                raise LthkitError("the state file does not hold trained_state and rewind_state")
            self._check_state(state["trained_state"], "trained_state")
            if state["rewind_state"] is not None:
                self._check_state(state["rewind_state"], "rewind_state")
            elif round_index == 0 and self._needs_rewind_state():
                raise LthkitError("round 0 lacks the rewind weights θ_k")
            return RoundRecord(result=result, mask=mask, trained_state=state["trained_state"],
                               rewind_state=state["rewind_state"])
        except Exception as error:
            self._discard_from(round_index, error)
            return None

    def save(self, round_index: int, record: RoundRecord) -> None:
        if not record.result.provenance:
            record.result.provenance = provenance(self.device)
        self._make_folder()
        metrics_path, masks_path, state_path = self._paths(round_index)
        atomic_save_tensors(masks_path, record.mask)
        atomic_save_tensors(state_path, {"trained_state": record.trained_state, "rewind_state": record.rewind_state})
        # Last: marks the round finished.
        atomic_write_json(metrics_path, {**record.result.to_dict(), "provenance": record.result.provenance})

    def _make_folder(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            self._discard_from(0, LthkitError("the entry is a file, not a folder"))
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.is_file():
            atomic_write_json(config_file, {"config": self.config.to_dict(), "code_version": code_version()})

    def _check_masks(self, mask, result: RoundResult) -> None:
        """The mask must name the model's prunable weights with their shapes, as bools, and give the metrics'
        densities."""
        shapes = model_layout(self.config.model)[0]
        _check_tensors(mask, shapes, "mask", dtype=torch.bool)
        if abs(density(mask) - result.density) > 1e-9 or set(result.layer_density) != set(shapes):
            raise LthkitError("the mask does not match the metrics' densities")

    def _check_state(self, state, name: str) -> None:
        _check_tensors(state, model_layout(self.config.model)[1], name)

    def _needs_rewind_state(self) -> bool:
        """Whether round 0 must hold θ_k (known without the data only for an iteration budget)."""
        config = self.config
        if not get_branch(config.control).uses_rewind_point or config.rewind in ("init", "none"):
            return False
        if config.rewind == "iteration":
            return config.rewind_iteration > 0
        return config.train.iterations is not None and config.rewind_point(config.train.iterations) > 0

    def _discard_from(self, round_index: int, error: BaseException) -> None:
        """Remove a corrupt round and every later one (they were computed from it)."""
        self.log(f"lthkit: cache entry {self.directory.name} round {round_index} is corrupt ({_short(error)}); "
                 "recomputing it")
        if self.directory.exists() and not self.directory.is_dir():
            self.directory.unlink()
            return
        later = round_index
        while any(path.exists() or path.is_symlink() for path in self._paths(later)):
            for path in self._paths(later):
                _remove(path)
            later += 1


def _check_tensors(tensors, shapes: dict, name: str, dtype=None) -> None:
    """``tensors`` must be a dict of exactly the names of ``shapes``, each a tensor of that shape (and ``dtype``)."""
    if not isinstance(tensors, dict) or list(tensors) != list(shapes):
        names = list(tensors)[:6] if isinstance(tensors, dict) else type(tensors).__name__
        raise LthkitError(f"{name} names {names}, not the model's {list(shapes)}"[:200])
    for key, shape in shapes.items():
        tensor = tensors[key]
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape or \
                (dtype is not None and tensor.dtype != dtype):
            what = f"shape {tuple(tensor.shape)}, {tensor.dtype}" if isinstance(tensor, torch.Tensor) else \
                type(tensor).__name__
            raise LthkitError(f"{name}[{key!r}] is {what}; the model needs shape {shape}"
                              + (f", {dtype}" if dtype is not None else ""))


# --- running ------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _load_data_cached(data_config: DataConfig, device: str, root) -> MNISTData:
    return load_mnist(data_config, root=root, device=device)


def get_data(data_config: DataConfig, device: str | None = None, root=None) -> MNISTData:
    """MNIST for a config, loaded once per process (repeated runs in a notebook reuse it)."""
    return _load_data_cached(data_config, device or default_device(), None if root is None else str(root))


def cache_entry(config: LotteryConfig, cache_dir=None) -> Path:
    """The cache folder of a config."""
    return cache_root(cache_dir) / cache_key(config)


def load_cached(config: LotteryConfig, cache_dir=None) -> LotteryResult | None:
    """The finished result of ``config`` from the cache, or ``None`` if any round is missing."""
    directory = cache_entry(config, cache_dir)
    if not (directory / "round_000.json").exists():
        return None
    store = DiskStore(directory, config)
    rounds, masks = [], []
    for round_index in range(config.rounds + 1):
        loaded = store.load_result(round_index)
        if loaded is None:
            return None
        rounds.append(loaded[0])
        masks.append(loaded[1])
    return LotteryResult(config=config, rounds=rounds, masks=masks)


def run_experiment(config: LotteryConfig, *, cache_dir=None, data: MNISTData | None = None,
                   device: str | None = None, data_root=None, progress: bool = True,
                   on_round=None) -> LotteryResult:
    """Run ``config`` through the cache: :func:`run_experiments` of one config, never batched.

    Finished configs return at once; interrupted ones resume. A control (``reinit``,
    ``random_prune``) runs, or reads from the cache, the winning ticket whose masks it uses.

    Args:
        config: the run (see :func:`preset`).
        cache_dir: the cache folder (see :func:`cache_root`).
        data: MNIST already in memory; loaded (once per process) from ``config.data`` otherwise.
        device: ``"cpu"`` or ``"cuda"``; default: the GPU when there is one.
        data_root: where MNIST lives (see :func:`lthkit.data.data_root`).
        progress: show progress bars.
        on_round: called with each round's :class:`~lthkit.lottery.RoundResult` as it finishes.

    Returns:
        A :class:`~lthkit.lottery.LotteryResult`.

    Example:
        >>> result = run_experiment(preset("fast", rounds=3))  # doctest: +SKIP
        >>> run_experiment(preset("fast", rounds=3)) is not None  # the second call: from the cache  # doctest: +SKIP
        True
    """
    return run_experiments([config], cache_dir=cache_dir, data=data, device=device, data_root=data_root,
                           progress=progress, batch=False,
                           on_round=None if on_round is None else lambda _config, result: on_round(result))[0]


def runs_to_train(configs, *, cache_dir=None, lookup=None) -> list[LotteryConfig]:
    """The runs that :func:`run_experiments` of ``configs`` trains: those not cached, and what they need.

    A run that a requested one needs (a control's ticket) is trained only when it is not cached.

    Args:
        configs: the requested runs.
        cache_dir: the cache folder.
        lookup: ``config -> LotteryResult | None`` to find finished runs (default: :func:`load_cached`).

    Example:
        >>> [c.control for c in runs_to_train([preset("fast", control="reinit")], cache_dir="/nonexistent")]
        ['ticket', 'reinit']
    """
    lookup = lookup or (lambda config: load_cached(config, cache_dir))
    return with_dependencies([config for config in configs if lookup(config) is None],
                             have=lambda config: lookup(config) is not None)


def run_experiments(configs, *, cache_dir=None, data: MNISTData | None = None, device: str | None = None,
                    data_root=None, progress: bool = True, batch="auto", on_round=None, workers: int = 1,
                    scheduler: str | None = None) -> list[LotteryResult]:
    """Run several configs through the cache side by side: trials and controls, round by round.

    Finished configs come from the cache; the others go through
    :func:`lthkit.lottery.run_lotteries`, which trains the runs of one round together (batched
    where ``batch`` says so), and every round is written to its config's cache entry as soon as it
    is trained, so an interrupted call resumes where it stopped. A run that a pending one needs (a
    control's ticket) is taken from the cache, or run (and cached) alongside (:func:`runs_to_train`).

    Args:
        configs: the runs; those not yet cached must share one data config.
        cache_dir, data, device, data_root, progress: as for :func:`run_experiment`.
        batch: ``True``, ``False`` or ``"auto"`` (see :func:`lthkit.lottery.run_lotteries`).
        on_round: called with ``(config, round_result)`` for each round of each config (cached or new).
        workers: ``1`` trains in this process (as above); more: a sweep on a local Dask cluster of
            that many single-threaded worker processes (:func:`lthkit.sweep.run_sweep`), each
            training one round of one run at a time, with the same results (on a GPU, with ``batch``
            ``"auto"`` or ``True``: one round of a group of runs at a time, batched).
        scheduler: ``tcp://HOST:PORT`` of an existing Dask cluster whose workers share the cache
            folder: the sweep runs there (``workers`` is then ignored).

    Returns:
        One :class:`~lthkit.lottery.LotteryResult` per config, in order.

    Raises:
        LthkitError: bad configs, a scheduler that cannot be reached (nothing is written then),
            or ``data`` given to a sweep (its workers load MNIST themselves).

    Example:
        >>> configs = [preset("paper", seed=s, control=c) for s in range(5) for c in CONTROLS]  # doctest: +SKIP
        >>> results = run_experiments(configs, device="cuda")  # doctest: +SKIP
    """
    configs = list(configs)
    check_int(workers, "workers", minimum=1)
    results = {config: load_cached(config, cache_dir) for config in configs}
    for config in configs:
        if results[config] is not None and on_round is not None:
            for round_result in results[config].rounds:
                on_round(config, round_result)
    if all(result is not None for result in results.values()):
        return [results[config] for config in configs]
    finished = {}  # cached runs that the pending ones need, by config

    def lookup(config):
        found = results[config] if config in results else finished.get(config) or load_cached(config, cache_dir)
        if found is not None:
            finished[config] = found
        return found

    pending = runs_to_train(configs, lookup=lookup)
    if workers != 1 or scheduler:
        if data is not None:
            raise LthkitError("a sweep's workers load MNIST themselves: give data only with workers=1")
        from .sweep import run_sweep

        run_sweep(pending, cache_dir=cache_dir, device=device or default_device(), data_root=data_root,
                  workers=workers, scheduler=scheduler, progress=progress, batch=batch)
        for config in configs:
            if results[config] is None:
                results[config] = load_cached(config, cache_dir)
                if results[config] is None:
                    raise LthkitError(f"the sweep left {config.control} trial {config.seed} unfinished in the cache")
                if on_round is not None:
                    for round_result in results[config].rounds:
                        on_round(config, round_result)
        return [results[config] for config in configs]
    if len({config.data for config in pending}) > 1:
        raise LthkitError("run_experiments runs configs side by side only when they share one data config")
    if data is None:
        data = get_data(pending[0].data, device, data_root)
    stores = [DiskStore(cache_entry(config, cache_dir), config, device=data.device) for config in pending]
    requested = set(configs)

    def report(config, round_result):  # a run trained only because another needs it is not reported
        if on_round is not None and config in requested:
            on_round(config, round_result)

    with ExitStack() as held:
        # Every process takes the locks in one order (by path), so two sweeps never wait for each other in a circle.
        for store in sorted({store.directory: store for store in stores}.values(), key=lambda s: str(s.directory)):
            held.enter_context(store.locked())
        done = run_lotteries(pending, data, stores=stores, tickets=finished.values(), batch=batch,
                             progress=progress, on_round=report)
    results.update(zip(pending, done))
    return [results[config] for config in configs]


def clear_cache(config: LotteryConfig | None = None, cache_dir=None) -> None:
    """Delete one config's cache entry (and its lock file), or (``config=None``) the whole cache folder."""
    target = cache_root(cache_dir) if config is None else cache_entry(config, cache_dir)
    _remove(target)
    if config is not None:
        Path(f"{target}.lock").unlink(missing_ok=True)


# --- summaries ------------------------------------------------------------------------------------

#: Columns of ``summary.csv``: one row per (control, trial, round); accuracies as fractions.
SUMMARY_COLUMNS = ("control", "trial", "round", "density", "early_stop_iter", "test_acc_early_stop",
                   "test_acc_final")


def summary_rows(results) -> list[dict]:
    """One row per (control, trial, round) of the given results, with :data:`SUMMARY_COLUMNS`.

    The trial is the config's seed.
    """
    rows = []
    for result in results:
        for round_result in result.rounds:
            rows.append({"control": result.config.control, "trial": result.config.seed, "round": round_result.round,
                         "density": round_result.density, "early_stop_iter": round_result.early_stop_iteration,
                         "test_acc_early_stop": round_result.test_acc_early_stop,
                         "test_acc_final": round_result.test_acc_final})
    return rows


def summary_csv_text(results) -> str:
    """:func:`summary_rows` of ``results`` as CSV text (header first)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_rows(results))
    return buffer.getvalue()


def write_summary_csv(path, results) -> Path:
    """Write :func:`summary_rows` of ``results`` to ``path`` (atomically)."""
    atomic_write_bytes(path, summary_csv_text(results).encode())
    return Path(path)


def _summary_integer(text: str, low: int | None = 0) -> int:
    value = int(text)  # "3", not "3.0": the writer never writes a float here
    if low is not None and value < low:
        raise ValueError(f"must be at least {low}")
    return value


def _summary_fraction(text: str, *, zero_allowed: bool = True) -> float:
    value = float(text)
    if not math.isfinite(value) or value > 1 or value < 0 or (value == 0 and not zero_allowed):
        raise ValueError("must be in (0, 1]" if not zero_allowed else "must be in [0, 1]")
    return value


_SUMMARY_CONVERTERS = {
    "control": None, "trial": lambda text: _summary_integer(text, low=None), "round": _summary_integer,
    "density": lambda text: _summary_fraction(text, zero_allowed=False), "early_stop_iter": _summary_integer,
    "test_acc_early_stop": _summary_fraction, "test_acc_final": _summary_fraction}


def read_summary_csv(path) -> list[dict]:
    """Read a ``summary.csv`` back, with numbers as numbers, checking every cell.

    Args:
        path: a file written by :func:`write_summary_csv`.

    Returns:
        One dict per row with the :data:`SUMMARY_COLUMNS` (extra columns are dropped): ``control``
        a str, ``trial``, ``round`` and ``early_stop_iter`` ints, the others floats.

    Raises:
        LthkitError: the file is missing, a folder, not UTF-8 text, lacks a column or has no rows,
            or a row is malformed (wrong number of cells, an unknown control, a non-number, a
            density outside (0, 1], an accuracy outside [0, 1], a negative round or iteration, a
            repeated (control, trial, round)); the message names the file and the line.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "summary.csv").write_text(",".join(SUMMARY_COLUMNS) + "\\nticket,0,0,1.0,300,0.97,0.96\\n")
        >>> read_summary_csv(folder / "summary.csv")[0]["early_stop_iter"]
        300
    """
    path = Path(path)
    if path.is_dir():
        raise LthkitError(f"{path} is a folder, not a summary CSV file")
    if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
        raise LthkitError(f"{path} is not a regular file")
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise LthkitError(f"no summary file at {path}") from None
    except OSError as error:
        raise LthkitError(f"cannot read {path} ({error.strerror or error})") from None
    try:
        if b"\0" in payload:
            raise UnicodeError
        text = payload.decode("utf-8-sig")
    except UnicodeError:
        raise LthkitError(f"{path} is not a text CSV file (it holds binary data)") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in SUMMARY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise LthkitError(f"{path} lacks the column(s) {', '.join(missing)}")
        rows, seen = [], {}
        for raw in reader:
            line = reader.line_num
            if None in raw or None in raw.values():
                cells = sum(v is not None for k, v in raw.items() if k is not None) + len(raw.get(None) or [])
                raise LthkitError(f"{path} line {line} has {cells} cells, the header has {len(reader.fieldnames)}")
            row = {}
            for column, convert in _SUMMARY_CONVERTERS.items():
                value = raw[column].strip()
                try:
                    row[column] = value if convert is None else convert(value)
                except ValueError as error:
                    reason = str(error) if str(error).startswith("must") else "is not a number"
                    raise LthkitError(f"{path} line {line}: {column} {value!r} {reason}") from None
            if row["control"] not in CONTROLS:
                raise LthkitError(f"{path} line {line}: unknown control {row['control']!r} "
                                  f"(expected one of {', '.join(CONTROLS)})")
            key = (row["control"], row["trial"], row["round"])
            if key in seen:
                raise LthkitError(f"{path} line {line} repeats control {key[0]}, trial {key[1]}, round {key[2]} "
                                  f"(first on line {seen[key]})")
            seen[key] = line
            rows.append(row)
    except csv.Error as error:
        raise LthkitError(f"{path} is not a readable CSV file (line {reader.line_num}: {error})") from None
    if not rows:
        raise LthkitError(f"{path} has a header but no rows (no finished round to report)")
    return rows
