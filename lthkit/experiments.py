"""Presets and cached, resumable IMP runs.

:func:`run_experiment` is :func:`lthkit.lottery.run_lottery` with a disk cache: every finished
round is written to ``<cache>/<key>/`` as soon as it ends, where the key hashes the full config
*and* the code version (lthkit's version plus a hash of the core modules' source), so a bug fix
never leaves stale results in place. Running a finished config again returns at once without
loading MNIST; an interrupted run (Ctrl-C, a killed kernel) resumes after its last finished round.
Every write is atomic (a temporary file renamed into place), and a corrupt cache entry is
reported, removed and recomputed.

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

import csv
import hashlib
import io
import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

import torch

from . import LthkitError, __version__
from .files import atomic_save_tensors, atomic_write_bytes, atomic_write_json
from .data import REPO_ROOT, DataConfig, MNISTData, load_mnist
from .lottery import LotteryConfig, LotteryResult, RoundRecord, RoundResult, run_lotteries, with_dependencies
from .presets import CLI_PRESETS, preset_config
from .presets import PRESETS as _PRESETS

#: The modules whose code determines a result; their source is part of every cache key.
CORE_MODULES = ("data.py", "models.py", "masks.py", "train.py", "lottery.py", "batched.py", "branches.py",
                "fastpath.py")

#: The command line's presets, by name (their full mode; the one registry is :data:`lthkit.presets.PRESETS`).
PRESETS: dict[str, LotteryConfig] = {name: _PRESETS[name]["full"] for name in CLI_PRESETS}


def preset(name: str, **changes) -> LotteryConfig:
    """A preset config, optionally changed (``preset("fast", rounds=3, train={"iterations": 500})``).

    Raises:
        LthkitError: unknown preset name or bad changes.
    """
    return preset_config(name, names=PRESETS, **changes)


@lru_cache(maxsize=1)
def code_version() -> str:
    """lthkit's version plus a short hash of the core modules' source code."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for module in CORE_MODULES:
        digest.update((package / module).read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def cache_root(cache_dir=None) -> Path:
    """The cache folder: ``cache_dir``, else ``$LTHKIT_CACHE``, else ``cache/`` at the repo root."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("LTHKIT_CACHE")
    return Path(env).expanduser() if env else REPO_ROOT / "cache"


def cache_key(config: LotteryConfig) -> str:
    """The cache key of a config: its hash together with :func:`code_version`."""
    payload = json.dumps({"config": config.to_dict(), "code": code_version()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def default_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


# --- the disk store -------------------------------------------------------------------------------

class DiskStore:
    """A :class:`lthkit.lottery.RoundStore` in a cache folder, one set of files per round.

    ``round_NNN.json`` holds the metrics and is written last, so it marks a finished round;
    ``round_NNN.masks.pt`` the mask; ``round_NNN.state.pt`` the tensors needed to continue.
    """

    def __init__(self, directory, config: LotteryConfig, *, log=None):
        self.directory = Path(directory)
        self.config = config
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.exists():
            atomic_write_json(config_file, {"config": config.to_dict(), "code_version": code_version()})

    def _paths(self, round_index: int) -> tuple[Path, Path, Path]:
        stem = self.directory / f"round_{round_index:03d}"
        return stem.with_suffix(".json"), Path(f"{stem}.masks.pt"), Path(f"{stem}.state.pt")

    def finished_rounds(self) -> int:
        """How many consecutive rounds, from round 0, have their metrics on disk."""
        count = 0
        while self._paths(count)[0].exists():
            count += 1
        return count

    def load_result(self, round_index: int) -> tuple[RoundResult, dict] | None:
        """The metrics and mask of a finished round, without its state tensors (``None`` if absent)."""
        metrics_path, masks_path, _ = self._paths(round_index)
        if not metrics_path.exists():
            return None
        try:
            result = RoundResult.from_dict(json.loads(metrics_path.read_text()))
            mask = torch.load(masks_path, weights_only=True)
            if result.round != round_index or not isinstance(mask, dict):
                raise ValueError("round number or mask layout does not match")
            return result, mask
        except Exception as error:  # any decoding problem: report, drop, recompute
            self._discard_from(round_index, error)
            return None

    def load(self, round_index: int) -> RoundRecord | None:
        loaded = self.load_result(round_index)
        if loaded is None:
            return None
        result, mask = loaded
        try:
            state = torch.load(self._paths(round_index)[2], weights_only=True)
            return RoundRecord(result=result, mask=mask, trained_state=state["trained_state"],
                               rewind_state=state.get("rewind_state"))
        except Exception as error:
            self._discard_from(round_index, error)
            return None

    def save(self, round_index: int, record: RoundRecord) -> None:
        metrics_path, masks_path, state_path = self._paths(round_index)
        atomic_save_tensors(masks_path, record.mask)
        atomic_save_tensors(state_path, {"trained_state": record.trained_state, "rewind_state": record.rewind_state})
        atomic_write_json(metrics_path, record.result.to_dict())  # last: marks the round finished

    def _discard_from(self, round_index: int, error: BaseException) -> None:
        """Remove a corrupt round and every later one (they were computed from it)."""
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        self.log(f"lthkit: cache entry {self.directory.name} round {round_index} is corrupt "
                 f"({type(error).__name__}: {reason}); recomputing it")
        later = round_index
        while any(path.exists() for path in self._paths(later)):
            for path in self._paths(later):
                path.unlink(missing_ok=True)
            later += 1


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
                    data_root=None, progress: bool = True, batch="auto", on_round=None) -> list[LotteryResult]:
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

    Returns:
        One :class:`~lthkit.lottery.LotteryResult` per config, in order.

    Example:
        >>> configs = [preset("paper", seed=s, control=c) for s in range(5) for c in CONTROLS]  # doctest: +SKIP
        >>> results = run_experiments(configs, device="cuda")  # doctest: +SKIP
    """
    configs = list(configs)
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
    if len({config.data for config in pending}) > 1:
        raise LthkitError("run_experiments runs configs side by side only when they share one data config")
    if data is None:
        data = get_data(pending[0].data, device, data_root)
    stores = [DiskStore(cache_entry(config, cache_dir), config) for config in pending]
    requested = set(configs)

    def report(config, round_result):  # a run trained only because another needs it is not reported
        if on_round is not None and config in requested:
            on_round(config, round_result)

    done = run_lotteries(pending, data, stores=stores, tickets=finished.values(), batch=batch, progress=progress,
                         on_round=report)
    results.update(zip(pending, done))
    return [results[config] for config in configs]


def clear_cache(config: LotteryConfig | None = None, cache_dir=None) -> None:
    """Delete one config's cache entry, or (``config=None``) the whole cache folder."""
    target = cache_root(cache_dir) if config is None else cache_entry(config, cache_dir)
    shutil.rmtree(target, ignore_errors=True)


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


def write_summary_csv(path, results) -> Path:
    """Write :func:`summary_rows` of ``results`` to ``path`` (atomically)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_rows(results))
    atomic_write_bytes(path, buffer.getvalue().encode())
    return Path(path)


def read_summary_csv(path) -> list[dict]:
    """Read a ``summary.csv`` back, with numbers as numbers.

    Raises:
        LthkitError: the file is missing or lacks a column.
    """
    path = Path(path)
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            missing = [c for c in SUMMARY_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise LthkitError(f"{path} lacks the column(s) {', '.join(missing)}")
            rows = list(reader)
    except FileNotFoundError:
        raise LthkitError(f"no summary file at {path}") from None
    converters = {"trial": int, "round": int, "early_stop_iter": int, "density": float,
                  "test_acc_early_stop": float, "test_acc_final": float}
    try:
        return [{key: converters.get(key, str)(value) for key, value in row.items() if key in SUMMARY_COLUMNS}
                for row in rows]
    except (TypeError, ValueError) as error:
        raise LthkitError(f"{path} has a bad value: {error}") from None
