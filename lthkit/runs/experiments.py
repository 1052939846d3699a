"""Presets and cached, resumable IMP runs.

:func:`run_experiment` is :func:`lthkit.imp.driver.run_lottery` with a disk cache: every finished
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

Presets (:data:`PRESETS`, the command line's two from the one registry, :mod:`lthkit.runs.presets`):

* ``paper``: Frankle & Carbin's LeNet-300-100 protocol: Adam 1.2e-3, batch 60, 50,000
  iterations, validation every 100 iterations, layer-wise pruning at 20% per round with the
  output layer at 10%, survivors rewound to θ₀, 5,000 validation images.
* ``fast``: the same network and rates on a 10,000-image subset with a 1,500-iteration budget,
  so that a 5-round curve takes well under a minute on two CPU cores.
"""

from __future__ import annotations

from contextlib import ExitStack

from ..core.data import MNISTData, get_data
from ..core.fields import check_int
from ..errors import LthkitError
from ..imp.config import LotteryConfig
from ..imp.driver import run_lotteries, with_dependencies
from ..imp.records import LotteryResult
from .cache import DiskStore, cache_entry, default_device, load_cached
from .threads import training_threads


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
        data_root: where MNIST lives (see :func:`lthkit.core.data.data_root`).
        progress: show progress bars.
        on_round: called with each round's :class:`~lthkit.imp.records.RoundResult` as it finishes.

    Returns:
        A :class:`~lthkit.imp.records.LotteryResult`.

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
        >>> from lthkit.runs.presets import preset
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
    :func:`lthkit.imp.driver.run_lotteries`, which trains the runs of one round together (batched
    where ``batch`` says so), and every round is written to its config's cache entry as soon as it
    is trained, so an interrupted call resumes where it stopped. A run that a pending one needs (a
    control's ticket) is taken from the cache, or run (and cached) alongside (:func:`runs_to_train`).

    Args:
        configs: the runs; those not yet cached must share one data config.
        cache_dir, data, device, data_root, progress: as for :func:`run_experiment`.
        batch: ``True``, ``False`` or ``"auto"`` (see :func:`lthkit.imp.driver.run_lotteries`).
        on_round: called with ``(config, round_result)`` for each round of each config (cached or new).
        workers: ``1`` trains in this process (as above); more: a sweep on a local Dask cluster of
            that many single-threaded worker processes (:func:`lthkit.runs.sweep.run_sweep`), each
            training one round of one run at a time, with the same results (on a GPU, with ``batch``
            ``"auto"`` or ``True``: one round of a group of runs at a time, batched).
        scheduler: ``tcp://HOST:PORT`` of an existing Dask cluster whose workers share the cache
            folder: the sweep runs there (``workers`` is then ignored).

    Returns:
        One :class:`~lthkit.imp.records.LotteryResult` per config, in order.

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
        held.enter_context(training_threads())  # one thread in a notebook kernel (lthkit.runs.threads)
        # Every process takes the locks in one order (by path), so two sweeps never wait for each other in a circle.
        for store in sorted({store.directory: store for store in stores}.values(), key=lambda s: str(s.directory)):
            held.enter_context(store.locked())
        done = run_lotteries(pending, data, stores=stores, tickets=finished.values(), batch=batch,
                             progress=progress, on_round=report)
    results.update(zip(pending, done))
    return [results[config] for config in configs]
