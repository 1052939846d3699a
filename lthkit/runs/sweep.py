"""Sweeps on Dask: every training of a set of IMP runs as one task graph, on local workers or a cluster.

A sweep's tasks are single trainings, one round of one run, and its edges are the real
dependencies: round r of a run needs its round r - 1 (the weights it prunes), and round r of a
control needs round r of the run its branch needs (the ticket's mask of that round,
:attr:`lthkit.imp.branches.base.Branch.needs`). Tasks pass configs and cache keys, never tensors: each
task reads what it needs from the cache folder and writes its round there (the cache is the
shared state), holding the run's per-entry lock (:meth:`lthkit.runs.cache.DiskStore.locked`) so
that two sweeps on one cache never train a round twice. A task trains exactly what a one-process
run trains for that round (:func:`lthkit.imp.driver.run_lotteries` with ``until_round``), so the
results are bit-identical to a one-worker run at one thread.

On a GPU the unit of work is larger: :func:`batched_graph` groups the runs into one chain of
tasks per worker, each task training one round of every run of its group batched on the worker's
device (:func:`train_rounds_batched`), as a one-process run on a GPU trains a round. A group holds
whole families (a trial's ticket and the controls that need it), so its only edge is its own
previous round.

:func:`run_sweep` runs a graph on a :class:`distributed.LocalCluster` of single-threaded worker
processes, or on an existing cluster through its scheduler's address; rounds already in the
cache are not tasks, so an interrupted sweep resumes where it stopped, and a task whose worker
dies is retried on another.

Example:
    >>> from lthkit.runs.presets import preset
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

from ..core.fields import check_int
from ..errors import LthkitError
from ..imp.branches import get_branch
from ..imp.config import LotteryConfig
from ..imp.driver import run_lotteries, with_dependencies
from ..imp.records import LotteryResult

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
    from .cache import cache_key

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
    from .cache import DiskStore, cache_entry

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


@dataclass(frozen=True)
class BatchedTraining:
    """One task of a batched sweep: train round ``round`` of every run in ``configs`` that lacks it, batched."""

    configs: tuple[LotteryConfig, ...]
    round: int
    needs: tuple[str, ...]
    trainings: int  # how many (run, round) trainings the task holds: what the progress bar counts

    @property
    def name(self) -> str:
        from .cache import cache_key

        first = self.configs[0]
        return (f"train-batch-{len(self.configs)}runs-trial{first.seed}-round{self.round}-"
                f"{cache_key(first)}")


def families(configs) -> list[list[LotteryConfig]]:
    """``configs`` and the runs they need, split into families that need nothing outside themselves.

    A family is a run and every run linked to it by a branch's needs (a trial's ticket with its
    controls), in dependency order; families come in the order of their first run.

    Example:
        >>> runs = [LotteryConfig(seed=s, control=c) for s in (0, 1) for c in ("reinit", "random_prune")]
        >>> [[(c.seed, c.control) for c in family] for family in families(runs)]
        [[(0, 'ticket'), (0, 'reinit'), (0, 'random_prune')], [(1, 'ticket'), (1, 'reinit'), (1, 'random_prune')]]
    """
    runs = with_dependencies(list(dict.fromkeys(configs)))
    parent = {config: config for config in runs}

    def root(config):
        while parent[config] != config:
            parent[config] = parent[parent[config]]
            config = parent[config]
        return config

    for config in runs:
        for need in get_branch(config.control).needs:
            parent[root(config.replace(control=need))] = root(config)
    grouped: dict[LotteryConfig, list[LotteryConfig]] = {}
    for config in runs:
        grouped.setdefault(root(config), []).append(config)
    return sorted(grouped.values(), key=lambda family: min(runs.index(config) for config in family))


def batched_graph(configs, groups: int, *, cache_dir=None, finished=None) -> dict[str, BatchedTraining]:
    """The batched tasks that ``configs`` still lack: ``groups`` chains, one round of a group per task.

    The families (:func:`families`) are dealt to ``groups`` groups in turn (fewer groups when there
    are fewer families); each group is a chain of tasks, round by round, and a task needs only its
    group's previous round.

    Args:
        configs: the runs.
        groups: how many chains (the workers, one per GPU).
        cache_dir, finished: as for :func:`sweep_graph`.

    Returns:
        The tasks by name, every task after the one it needs.

    Example:
        >>> runs = [LotteryConfig(seed=s, control="reinit", rounds=2) for s in range(3)]
        >>> graph = batched_graph(runs, 2, finished=lambda config: 0)
        >>> [(len(t.configs), t.round, len(t.needs), t.trainings) for t in graph.values()]
        [(4, 0, 0, 4), (4, 1, 1, 4), (4, 2, 1, 4), (2, 0, 0, 2), (2, 1, 1, 2), (2, 2, 1, 2)]
    """
    from .cache import DiskStore, cache_entry

    check_int(groups, "groups", minimum=1)
    if finished is None:
        def finished(config):
            return DiskStore(cache_entry(config, cache_dir), config).finished_rounds()
    dealt: list[list[LotteryConfig]] = [[] for _ in range(groups)]
    for index, family in enumerate(families(configs)):
        dealt[index % groups].extend(family)
    chains = []
    for group in filter(None, dealt):  # a task loads one data set: a group of mixed data splits by it
        by_data: dict = {}
        for config in group:
            by_data.setdefault(config.data, []).append(config)
        chains.extend(by_data.values())
    graph: dict[str, BatchedTraining] = {}
    for members in chains:
        members = tuple(with_dependencies(members))  # dependency order across the group's families
        done = {config: min(finished(config), config.rounds + 1) for config in members}
        previous = None
        for round_index in range(max(config.rounds for config in members) + 1):
            lacking = sum(done[config] <= round_index <= config.rounds for config in members)
            if lacking:
                task = BatchedTraining(members, round_index, (previous,) if previous else (), lacking)
                graph[task.name] = task
                previous = task.name
    return graph


#: glibc's ``mallopt`` parameters (``malloc.h``): ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD``.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap, not from a fresh ``mmap`` each (glibc's own upper
#: limit for its dynamic threshold on 64-bit), and the heap is trimmed only past twice that.
WORKER_MMAP_THRESHOLD = 32 * 1024 * 1024


def prepare_worker() -> bool:
    """Set up a sweep's worker process for training: one torch thread, and glibc's malloc as a plain process has it.

    A Dask nanny starts its worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
    ``distributed.nanny.pre-spawn-environ``, to hand dataframe memory back to the OS). Setting it
    turns off glibc's dynamic mmap threshold, so every tensor over 128 KiB that a training step
    frees (LeNet-300-100's 784 x 300 gradient is 941 KiB) is unmapped, and the next step's is
    mapped and page-faulted in again: a fast-preset training took 20-30% more CPU time in a worker
    than in a plain process. The thresholds are set here to where glibc's dynamic rule ends up in a
    plain process, for workers started any way (a local cluster, ``dask worker``, dask-jobqueue).
    Idempotent and cheap: every task calls it.

    Returns:
        Whether glibc's thresholds were set (``False`` where the C library is not glibc).
    """
    import ctypes

    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process runs on
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to undo there
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, 2 * WORKER_MMAP_THRESHOLD))


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
    from ..core.data import get_data
    from .cache import DiskStore, cache_entry, cache_key

    prepare_worker()
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
    from .cache import DiskStore, cache_entry

    store = DiskStore(cache_entry(config, cache_dir), config)
    loaded = [store.load_result(index) for index in range(last_round + 1)]
    if any(item is None for item in loaded):
        return None
    return LotteryResult(config=config, rounds=[item[0] for item in loaded], masks=[item[1] for item in loaded])


def train_rounds_batched(config_dicts: list, round_index: int, expected_keys: list, cache_dir: str, device: str,
                         data_root: str | None, batch, *_needed) -> int:
    """Train round ``round_index`` of every run given that lacks it, batched (a batched sweep's task).

    The runs' earlier rounds are read from the cache; :func:`lthkit.imp.driver.run_lotteries` trains
    this round of all of them as one process would, batched where ``batch`` says so (the runs of a
    group need nothing outside it). Every run's entry lock is held, taken in one order so that two
    sweeps never wait on each other, so a round another process trained meanwhile is read.

    Args:
        config_dicts: the group's runs (:meth:`LotteryConfig.to_dict`), in dependency order.
        round_index: the round to train.
        expected_keys: the runs' cache keys on the client (a worker with other lthkit code refuses).
        cache_dir, device, data_root: as for :func:`train_round`.
        batch: ``True``, ``False`` or ``"auto"`` (see :func:`lthkit.imp.driver.run_lotteries`).
        _needed: the result of the group's previous round (only orders the graph).

    Returns:
        How many runs were trained now (the others were found trained already).
    """
    from contextlib import ExitStack

    from ..core.data import get_data
    from .cache import DiskStore, cache_entry, cache_key

    prepare_worker()
    configs = [LotteryConfig.from_dict(item) for item in config_dicts]
    if [cache_key(config) for config in configs] != list(expected_keys):
        raise LthkitError("a Dask worker runs other lthkit code than the client (its cache key differs); "
                          "install the same lthkit on every worker")
    stores = [DiskStore(cache_entry(config, cache_dir), config, device=device) for config in configs]
    with ExitStack() as held:
        for store in sorted(stores, key=lambda store: str(store.directory)):
            held.enter_context(store.locked())
        lacking = [config for config, store in zip(configs, stores)
                   if round_index <= config.rounds and store.load_result(round_index) is None]
        if lacking:
            data = get_data(configs[0].data, device, data_root)
            run_lotteries(configs, data, stores=stores, batch=batch, progress=False, until_round=round_index)
    return len(lacking)


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
              scheduler: str | None = None, progress: bool = True, retries: int = RETRIES,
              batch=False) -> dict:
    """Train every round that ``configs`` (and the runs they need) lack, as one Dask task graph.

    Each task is one training (:func:`sweep_graph`), or, when ``batch`` says so, one round of a
    group of runs trained batched (:func:`batched_graph`, one group per worker: on a GPU cluster,
    one worker per GPU trains the runs of a round batched, as one process on a GPU does).

    Args:
        configs: the runs.
        cache_dir: the cache folder (shared with the workers; see :func:`lthkit.runs.cache.cache_root`).
        device: where the workers train.
        data_root: MNIST's root on the workers (default: theirs, ``$LTHKIT_DATA`` or the repo's).
        workers: the local cluster's single-threaded workers (ignored with ``scheduler``).
        scheduler: an existing cluster's scheduler (``tcp://HOST:PORT``); ``None``: a local cluster.
        progress: one bar for the whole sweep (trainings done / total, with the ETA).
        retries: how often a failed task is tried again.
        batch: ``False`` (one training per task), ``True`` (batched tasks, always batched) or
            ``"auto"`` (batched tasks on a GPU, trained batched by
            :func:`lthkit.core.batched.use_batched`; one training per task on a CPU).

    Returns:
        ``{"trainings": tasks, "trained": trained now, "cached": found trained by another sweep}``.

    Raises:
        LthkitError: the scheduler cannot be reached (nothing is written then), or a task failed.
    """
    from tqdm.auto import tqdm

    from .cache import cache_key, cache_root

    if batch not in (True, False, "auto"):
        raise LthkitError(f"batch must be True, False or 'auto', got {batch!r}")
    import torch

    batched = batch is True or (batch == "auto" and torch.device(device).type == "cuda")
    scheduler_address(scheduler)  # a malformed address fails before a cluster starts
    folder = str(cache_root(cache_dir).expanduser().resolve())
    root = None if data_root is None else str(Path(data_root).expanduser().resolve())
    if not batched:
        graph = sweep_graph(configs, cache_dir=cache_dir)
    elif scheduler is None:
        graph = batched_graph(configs, workers, cache_dir=cache_dir)
    else:
        graph = None  # one group per worker of the cluster: counted once connected
    if graph is not None and not graph:
        return {"trainings": 0, "trained": 0, "cached": 0}
    with sweep_client(workers, scheduler) as client:
        if graph is None:
            graph = batched_graph(configs, max(1, len(client.scheduler_info().get("workers", {}))),
                                  cache_dir=cache_dir)
        sizes = {name: getattr(task, "trainings", 1) for name, task in graph.items()}
        counts = {"trainings": sum(sizes.values()), "trained": 0, "cached": 0}
        if not graph:
            return counts
        if progress and _has_bokeh() and client.dashboard_link:
            tqdm.write(f"lthkit: Dask dashboard at {client.dashboard_link}", file=sys.stderr)
        futures = {}
        for name, task in graph.items():  # dependency order: every needed future exists already
            needed = [futures[need] for need in task.needs if need in futures]
            if batched:
                futures[name] = client.submit(train_rounds_batched, [config.to_dict() for config in task.configs],
                                              task.round, [cache_key(config) for config in task.configs], folder,
                                              device, root, batch, *needed, key=name, pure=False, retries=retries)
            else:
                futures[name] = client.submit(train_round, task.config.to_dict(), task.round,
                                              cache_key(task.config), folder, device, root, *needed,
                                              key=name, pure=False, retries=retries)
        from distributed import as_completed

        with tqdm(total=counts["trainings"], desc="sweep", unit="training", disable=not progress) as bar:
            try:
                for future in as_completed(list(futures.values())):
                    outcome = future.result()
                    trained = (outcome == "trained") if not batched else outcome
                    counts["trained"] += trained
                    counts["cached"] += sizes[future.key] - trained
                    bar.update(sizes[future.key])
            except BaseException:
                client.cancel(list(futures.values()))
                raise
    return counts
