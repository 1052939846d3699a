"""Sweeps on Dask: every training of a set of IMP runs as one task graph, on local workers or a cluster.

A sweep's tasks are single trainings, one round of one run, and its edges are the real
dependencies: round r of a run needs its round r - 1 (the weights it prunes), and round r of a
control needs round r of the run its branch needs (the ticket's mask of that round,
:attr:`lthkit.branches.Branch.needs`). Tasks pass configs and cache keys, never tensors: each
task reads what it needs from the cache folder and writes its round there (the cache is the
shared state), holding the run's per-entry lock (:meth:`lthkit.experiments.DiskStore.locked`) so
that two sweeps on one cache never train a round twice. A task trains exactly what a one-process
run trains for that round (:func:`lthkit.lottery.run_lotteries` with ``until_round``), so the
results are bit-identical to a one-worker run at one thread.

:func:`run_sweep` runs a graph on a :class:`distributed.LocalCluster` of single-threaded worker
processes, or on an existing cluster through its scheduler's address; rounds already in the
cache are not tasks, so an interrupted sweep resumes where it stopped, and a task whose worker
dies is retried on another.

Example:
    >>> from lthkit.experiments import preset
    >>> configs = [preset("fast", seed=s, control=c, rounds=3) for s in range(4) for c in ("ticket", "reinit")]
    >>> len(sweep_graph(configs, finished=lambda config: 0))  # 8 chains of rounds 0..3
    32
    >>> run_sweep(configs, workers=2)  # doctest: +SKIP
    {'trainings': 32, 'trained': 32, 'cached': 0}
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import LthkitError
from .branches import get_branch
from .lottery import LotteryConfig, LotteryResult, run_lotteries, with_dependencies

#: How long a client waits for an existing scheduler before giving up (a wrong address fails fast).
CONNECT_TIMEOUT = "3s"
#: How often a task whose code raised is tried again (a killed worker's task is rescheduled anyway).
RETRIES = 2
#: Environment of the local workers: one thread each (separate processes use the cores better).
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Training:
    """One task of a sweep: train round ``round`` of ``config``, after the trainings named in ``needs``."""

    config: LotteryConfig
    round: int
    needs: tuple[str, ...]

    @property
    def name(self) -> str:
        return task_name(self.config, self.round)


def task_name(config: LotteryConfig, round_index: int) -> str:
    """The Dask key of a training: readable (control, trial, round) and unique (the cache key)."""
    from .experiments import cache_key

    return f"train-{config.control}-trial{config.seed}-round{round_index}-{cache_key(config)}"


def sweep_graph(configs, *, cache_dir=None, finished=None) -> dict[str, Training]:
    """The trainings that ``configs`` (and the runs they need) still lack, with their dependencies.

    Args:
        configs: the runs.
        cache_dir: the cache folder; rounds already there are not trainings, nor edges.
        finished: ``config -> number of consecutive finished rounds`` (default: read from the cache).

    Returns:
        The trainings by name, in an order in which every training comes after those it needs.

    Example:
        >>> graph = sweep_graph([LotteryConfig(control="reinit", rounds=1)], finished=lambda config: 0)
        >>> [(t.config.control, t.round, len(t.needs)) for t in graph.values()]
        [('ticket', 0, 0), ('reinit', 0, 1), ('ticket', 1, 1), ('reinit', 1, 2)]
    """
    from .experiments import DiskStore, cache_entry

    if finished is None:
        def finished(config):
            return DiskStore(cache_entry(config, cache_dir), config).finished_rounds()
    runs = with_dependencies(list(dict.fromkeys(configs)))
    done = {config: min(finished(config), config.rounds + 1) for config in runs}
    graph: dict[str, Training] = {}
    for round_index in range(max(config.rounds for config in runs) + 1):
        for config in runs:  # dependency order: a needed run's round r comes before its dependents'
            if done[config] <= round_index <= config.rounds:
                needs = [task_name(config, round_index - 1)] if round_index > done[config] else []
                for need in get_branch(config.control).needs:
                    needed = config.replace(control=need)
                    if round_index >= done[needed]:
                        needs.append(task_name(needed, round_index))
                graph[task_name(config, round_index)] = Training(config, round_index, tuple(needs))
    return graph


def _one_thread() -> None:
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def train_round(config_dict: dict, round_index: int, expected_key: str, cache_dir: str, device: str,
                data_root: str | None, *_needed) -> str:
    """Train round ``round_index`` of a run into its cache entry (a sweep's task; runs on a worker).

    Rounds ``0 .. round_index - 1`` of the run, and rounds ``0 .. round_index`` of the runs its
    branch needs, are read from the cache. The entry's lock is held, so a round another process
    trained meanwhile is read, not trained again. MNIST is loaded once per worker process.

    Args:
        config_dict: the run (:meth:`LotteryConfig.to_dict`).
        round_index: the round to train.
        expected_key: the run's cache key on the client (a worker with other lthkit code refuses).
        cache_dir, device, data_root: the absolute cache folder, ``"cpu"``/``"cuda"``, MNIST's root.
        _needed: the results of the trainings this one needs (only orders the graph).

    Returns:
        ``"trained"``, or ``"cached"`` when the round was in the cache already.
    """
    from .experiments import DiskStore, cache_entry, cache_key, get_data

    _one_thread()
    config = LotteryConfig.from_dict(config_dict)
    if cache_key(config) != expected_key:
        raise LthkitError("a Dask worker runs other lthkit code than the client (its cache key differs); "
                          "install the same lthkit on every worker")
    tickets = []
    for need in get_branch(config.control).needs:
        needed = config.replace(control=need)
        tickets.append(_rounds_so_far(needed, round_index, cache_dir))
        if tickets[-1] is None:
            raise LthkitError(f"round {round_index} of {need} trial {config.seed} is not in the cache "
                              f"for {config.control}; run the sweep again")
    store = DiskStore(cache_entry(config, cache_dir), config, device=device)
    with store.locked():
        if store.load_result(round_index) is not None:
            return "cached"
        data = get_data(config.data, device, data_root)
        run_lotteries([config], data, stores=[store], tickets=tickets, batch=False, progress=False,
                      until_round=round_index)
    return "trained"


def _rounds_so_far(config: LotteryConfig, last_round: int, cache_dir) -> LotteryResult | None:
    """Rounds ``0 .. last_round`` of a run from the cache, as a partial result (``None`` if one is missing)."""
    from .experiments import DiskStore, cache_entry

    store = DiskStore(cache_entry(config, cache_dir), config)
    loaded = [store.load_result(index) for index in range(last_round + 1)]
    if any(item is None for item in loaded):
        return None
    return LotteryResult(config=config, rounds=[item[0] for item in loaded], masks=[item[1] for item in loaded])


def scheduler_address(scheduler: str | None) -> str | None:
    """``scheduler`` checked, with ``tcp://`` as the default scheme (``None``: a local cluster).

    Raises:
        LthkitError: not of the form ``[SCHEME://]HOST:PORT``.
    """
    if not scheduler:
        return None
    address = scheduler.strip()
    if "://" not in address:
        address = "tcp://" + address
    if address.count(":") < 2 or not address.rsplit(":", 1)[1].isdigit():
        raise LthkitError(f"scheduler address {address!r} is not of the form tcp://HOST:PORT")
    return address


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


@contextmanager
def sweep_client(workers: int = 2, scheduler: str | None = None):
    """A :class:`distributed.Client` of an existing cluster (``scheduler``) or of a new local one.

    The local cluster has ``workers`` single-threaded worker processes on the loopback interface
    and is shut down when the context ends.

    Raises:
        LthkitError: the scheduler cannot be reached within :data:`CONNECT_TIMEOUT`.
    """
    import logging

    from distributed import Client, LocalCluster

    address = scheduler_address(scheduler)
    if address is not None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
            raise LthkitError(f"cannot reach the Dask scheduler at {address} ({reason})") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise LthkitError(f"workers must be at least 1, got {workers}")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0",
                           silence_logs=logging.ERROR, env=ONE_THREAD_ENV)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def run_sweep(configs, *, cache_dir=None, device: str = "cpu", data_root=None, workers: int = 2,
              scheduler: str | None = None, progress: bool = True, retries: int = RETRIES) -> dict:
    """Train every round that ``configs`` (and the runs they need) lack, as one Dask task graph.

    Args:
        configs: the runs.
        cache_dir: the cache folder (shared with the workers; see :func:`lthkit.experiments.cache_root`).
        device: where the workers train.
        data_root: MNIST's root on the workers (default: theirs, ``$LTHKIT_DATA`` or the repo's).
        workers: the local cluster's single-threaded workers (ignored with ``scheduler``).
        scheduler: an existing cluster's scheduler (``tcp://HOST:PORT``); ``None``: a local cluster.
        progress: one bar for the whole sweep (trainings done / total, with the ETA).
        retries: how often a failed task is tried again.

    Returns:
        ``{"trainings": tasks, "trained": trained now, "cached": found trained by another sweep}``.

    Raises:
        LthkitError: the scheduler cannot be reached (nothing is written then), or a task failed.
    """
    from tqdm.auto import tqdm

    from .experiments import cache_key, cache_root

    graph = sweep_graph(configs, cache_dir=cache_dir)
    counts = {"trainings": len(graph), "trained": 0, "cached": 0}
    if not graph:
        return counts
    scheduler_address(scheduler)  # a malformed address fails before a cluster starts
    folder = str(cache_root(cache_dir).expanduser().resolve())
    root = None if data_root is None else str(Path(data_root).expanduser().resolve())
    with sweep_client(workers, scheduler) as client:
        if progress and _has_bokeh() and client.dashboard_link:
            tqdm.write(f"lthkit: Dask dashboard at {client.dashboard_link}", file=sys.stderr)
        futures = {}
        for name, training in graph.items():  # dependency order: every needed future exists already
            futures[name] = client.submit(train_round, training.config.to_dict(), training.round,
                                          cache_key(training.config), folder, device, root,
                                          *[futures[need] for need in training.needs if need in futures],
                                          key=name, pure=False, retries=retries)
        from distributed import as_completed

        with tqdm(total=len(graph), desc="sweep", unit="training", disable=not progress) as bar:
            try:
                for future in as_completed(list(futures.values())):
                    counts[future.result()] += 1
                    bar.update(1)
            except BaseException:
                client.cancel(list(futures.values()))
                raise
    return counts
