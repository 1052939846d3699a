"""Sweeps on Dask (lthkit.runs.sweep): the graph's edges, results bit-identical to one process, faults.

Every cluster here is local, on the loopback interface, with two single-threaded workers; the
data are the tiny synthetic MNIST files of tests/conftest.py and the budgets are a few dozen
iterations, so each training takes a fraction of a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from lthkit.errors import LthkitError
from lthkit.imp.branches import PAPER_CONTROLS as CONTROLS
from lthkit.runs.cache import cache_entry
from lthkit.runs.experiments import run_experiments
from lthkit.runs.presets import preset
from lthkit.runs.sweep import batched_graph, families, run_sweep, sweep_graph, task_name

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]


def tiny_configs(trials=2, controls=CONTROLS, rounds=2, iterations=30):
    return [preset("fast", seed=seed, control=control, rounds=rounds,
                   data={"validation_size": 200, "train_size": None},
                   train={"iterations": iterations, "eval_every": 10, "batch_size": 32})
            for seed in range(trials) for control in controls]


def same_results(first, second) -> bool:
    """Every round's metrics (curves included) and masks identical, bit for bit."""
    for a, b in zip(first, second, strict=True):
        if a.config != b.config or [r.to_dict() | {"train": _no_seconds(r)} for r in a.rounds] != \
                [r.to_dict() | {"train": _no_seconds(r)} for r in b.rounds]:
            return False
        if not all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                   for x, y in zip(a.masks, b.masks, strict=True)):
            return False
    return True


def _no_seconds(round_result) -> dict:
    train = round_result.train.to_dict()
    train.pop("seconds")  # wall time, the only thing that may differ
    return train


def trained_weights(config, cache_dir) -> list[dict]:
    entry = cache_entry(config, cache_dir)
    return [torch.load(entry / f"round_{r:03d}.state.pt", weights_only=True)["trained_state"]
            for r in range(config.rounds + 1)]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The reference: every config of :func:`tiny_configs` trained in this process at one thread."""
    from conftest import synthetic_images, write_idx

    root = tmp_path_factory.mktemp("mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", *synthetic_images(1200, seed=1), compress=False)
    write_idx(raw, "t10k", *synthetic_images(300, seed=2), compress=False)
    cache = tmp_path_factory.mktemp("sequential-cache")
    assert torch.get_num_threads() == 1
    results = run_experiments(tiny_configs(), cache_dir=cache, data_root=root, device="cpu", progress=False,
                              batch=False)
    return root, cache, results


def test_graph_edges_two_trials_three_controls_three_rounds(tmp_path):
    configs = tiny_configs(trials=2, rounds=3)
    graph = sweep_graph(configs, cache_dir=tmp_path)
    assert len(graph) == 2 * 3 * 4  # rounds 0..3 of 6 chains
    for config in configs:
        ticket = config.replace(control="ticket")
        for round_index in range(4):
            training = graph[task_name(config, round_index)]
            expected = set()
            if round_index:
                expected.add(task_name(config, round_index - 1))  # the chain
            if config.control != "ticket":
                expected.add(task_name(ticket, round_index))  # the ticket's mask of this round
            assert set(training.needs) == expected, (config.control, config.seed, round_index)
    names = list(graph)
    for index, training in enumerate(graph.values()):  # submitted in an order that has every need first
        assert all(names.index(need) < index for need in training.needs)


def test_graph_skips_finished_rounds(tmp_path):
    configs = tiny_configs(trials=1, controls=("reinit",), rounds=2)
    ticket = configs[0].replace(control="ticket")
    graph = sweep_graph(configs, finished=lambda config: 2 if config == ticket else 1)
    assert [(t.config.control, t.round) for t in graph.values()] == [("reinit", 1), ("ticket", 2), ("reinit", 2)]
    assert graph[task_name(configs[0], 1)].needs == ()  # reinit round 0 and ticket round 1 are cached
    assert set(graph[task_name(configs[0], 2)].needs) == {task_name(configs[0], 1), task_name(ticket, 2)}


def test_batched_graph_deals_whole_families_to_one_chain_per_worker(tmp_path):
    configs = tiny_configs(trials=3, rounds=3)
    assert [[(c.seed, c.control) for c in family] for family in families(configs)] == \
        [[(seed, control) for control in CONTROLS] for seed in range(3)]
    graph = batched_graph(configs, 2, cache_dir=tmp_path)
    chains = {}
    for task in graph.values():
        chains.setdefault(task.configs, []).append(task)
    assert sorted(sorted(c.seed for c in members) for members in chains) == [[0, 0, 0, 2, 2, 2], [1, 1, 1]]
    for members, tasks in chains.items():
        assert [t.round for t in tasks] == [0, 1, 2, 3]
        assert [t.needs for t in tasks] == [()] + [(tasks[i].name,) for i in range(3)]  # its own previous round
        assert all(t.trainings == len(members) for t in tasks)
        assert all(members.index(c.replace(control="ticket")) <= members.index(c) for c in members)  # ticket first
    assert sum(t.trainings for t in graph.values()) == len(sweep_graph(configs, cache_dir=tmp_path))
    assert len(batched_graph(configs, 8, cache_dir=tmp_path)) == 3 * 4  # never more chains than families
    # Finished rounds are not counted; a group whose runs all have a round has no task for it.
    ticket = configs[0]
    partly = batched_graph(configs[:3], 1, finished=lambda config: 3 if config == ticket else 1)
    assert [(t.round, t.trainings) for t in partly.values()] == [(1, 2), (2, 2), (3, 3)]
    with pytest.raises(LthkitError, match="groups"):
        batched_graph(configs, 0, cache_dir=tmp_path)


def in_process_batched(configs, root, cache):
    return run_experiments(configs, cache_dir=cache, data_root=root, device="cpu", progress=False, batch=True)


def test_batched_sweep_on_two_workers_equals_each_trial_batched_in_one_process(sequential, tmp_path):
    root, _, expected = sequential
    configs = tiny_configs()
    counts = run_sweep(configs, cache_dir=tmp_path / "sweep", data_root=root, workers=2, progress=False, batch=True)
    assert counts == {"trainings": len(configs) * 3, "trained": len(configs) * 3, "cached": 0}
    results = run_experiments(configs, cache_dir=tmp_path / "sweep", progress=False)  # all cached now
    for seed in range(2):  # a worker trained each trial's family batched, round by round
        family = [config for config in configs if config.seed == seed]
        reference = in_process_batched(family, root, tmp_path / f"reference-{seed}")
        assert same_results([r for r in results if r.config.seed == seed], reference)
    batched_differs = not same_results(results, expected)  # batched sums in another order than one by one
    assert all(abs(a.test_acc_early_stop - b.test_acc_early_stop) <= 0.05
               for ours, theirs in zip(results, expected) for a, b in zip(ours.rounds, theirs.rounds)), batched_differs
    assert run_sweep(configs, cache_dir=tmp_path / "sweep", data_root=root, workers=2, progress=False,
                     batch=True)["trainings"] == 0


def test_batched_sweep_through_a_scheduler_makes_one_group_per_worker(sequential, tmp_path):
    from distributed import LocalCluster

    root, _, _ = sequential
    configs = tiny_configs(rounds=1)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        counts = run_sweep(configs, cache_dir=tmp_path / "sweep", data_root=root, scheduler=cluster.scheduler_address,
                           progress=False, batch=True)
    assert counts["trained"] == len(configs) * 2
    results = run_experiments(configs, cache_dir=tmp_path / "sweep", progress=False)
    assert same_results(results, in_process_batched(configs, root, tmp_path / "reference"))  # one group: all six


def test_two_worker_sweep_equals_the_sequential_run(sequential, tmp_path):
    root, sequential_cache, expected = sequential
    configs = tiny_configs()
    results = run_experiments(configs, cache_dir=tmp_path, data_root=root, device="cpu", progress=False, workers=2)
    assert same_results(results, expected)
    for config in configs:
        for ours, theirs in zip(trained_weights(config, tmp_path), trained_weights(config, sequential_cache)):
            assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    # A second sweep finds everything cached and trains nothing.
    assert run_sweep(configs, cache_dir=tmp_path, data_root=root, workers=2, progress=False)["trainings"] == 0


def test_worker_killed_mid_task_is_replaced_and_the_sweep_finishes_identically(sequential, tmp_path):
    from distributed import Client, LocalCluster

    root, _, expected = sequential
    # Longer trainings than the others, so that the test catches a worker in the middle of one.
    configs = tiny_configs(trials=1, controls=("ticket", "reinit"), iterations=200)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", env={"OMP_NUM_THREADS": "1"}) as cluster, \
            Client(cluster) as client:
        outcome = {}

        def sweep():
            try:
                outcome["results"] = run_experiments(configs, cache_dir=tmp_path, data_root=root, device="cpu",
                                                     progress=False, scheduler=cluster.scheduler_address)
            except BaseException as error:  # reported by the assertion below
                outcome["error"] = error

        thread = threading.Thread(target=sweep)
        thread.start()
        killed = None
        deadline = time.time() + 60
        while killed is None and time.time() < deadline and thread.is_alive():
            busy = [address for address, tasks in client.processing().items() if tasks]
            if busy and any(tmp_path.glob("*/round_000.json")):  # data loaded, a training under way
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed = pid
            time.sleep(0.02)
        thread.join(timeout=300)
        assert killed is not None, ("no worker was caught training", outcome)
        assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
        assert killed not in client.run(os.getpid).values()  # the nanny started a new worker
    reference = run_experiments(configs, cache_dir=tmp_path / "reference", data_root=root, device="cpu",
                                progress=False)
    assert same_results(outcome["results"], reference)
    assert expected  # the module's reference ran (same data)


SWEEP_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    from test_sweep import tiny_configs
    from lthkit.runs.sweep import run_sweep

    if __name__ == "__main__":
        configs = tiny_configs(trials={trials}, controls={controls!r}, iterations={iterations})
        counts = run_sweep(configs, cache_dir={cache!r}, data_root={root!r}, workers=2, progress=False)
        print(json.dumps(counts))
""")


def sweep_process(cache, root, trials=1, controls=CONTROLS, iterations=30, **popen) -> subprocess.Popen:
    script = SWEEP_SCRIPT.format(tests=str(Path(__file__).parent), cache=str(cache), root=str(root),
                                 trials=trials, controls=tuple(controls), iterations=iterations)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def round_files(cache) -> dict:
    return {path: path.stat().st_mtime_ns for path in Path(cache).glob("*/round_*.json")}


def test_resume_after_the_client_is_killed(sequential, tmp_path):
    root, _, _ = sequential
    configs = tiny_configs(trials=1, controls=("ticket", "reinit"), iterations=200)
    process = sweep_process(tmp_path, root, trials=1, controls=("ticket", "reinit"), iterations=200,
                            start_new_session=True)
    deadline = time.time() + 120
    while len(round_files(tmp_path)) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the client and its local cluster, as kill -9 of the command
    process.wait()
    before = round_files(tmp_path)
    assert 2 <= len(before) < len(configs) * 3, "the client was killed in the middle of the sweep"
    counts = run_sweep(configs, cache_dir=tmp_path, data_root=root, workers=2, progress=False)
    assert counts["trainings"] <= len(configs) * 3 - len(before)
    after = round_files(tmp_path)
    assert all(after[path] == stamp for path, stamp in before.items()), "a finished round was trained again"
    results = run_experiments(configs, cache_dir=tmp_path, progress=False)  # all cached now
    reference = run_experiments(configs, cache_dir=tmp_path / "reference", data_root=root, device="cpu",
                                progress=False)
    assert same_results(results, reference)


def test_two_clients_on_one_cache_train_each_round_once(sequential, tmp_path):
    root, _, expected = sequential
    processes = [sweep_process(tmp_path, root) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    rounds = len(tiny_configs(trials=1)) * 3
    assert sum(count["trained"] for count in counts) == rounds  # each round trained by exactly one sweep
    assert all(count["trained"] + count["cached"] == count["trainings"] for count in counts)
    results = run_experiments(tiny_configs(trials=1), cache_dir=tmp_path, progress=False)
    assert same_results(results, expected[:len(results)])  # trial 0 of the reference


def test_unreachable_scheduler_is_one_line_exit_2_and_changes_nothing(mnist_root, tmp_path):
    import socket

    with socket.socket() as probe:  # a loopback port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out, cache = tmp_path / "out", tmp_path / "cache"
    before = sorted(tmp_path.rglob("*"))
    started = time.time()
    completed = subprocess.run(
        [sys.executable, "-m", "lthkit", "run", "--scheduler", f"tcp://127.0.0.1:{port}", "--data", str(mnist_root),
         "--cache", str(cache), "--out", str(out), "--validation-size", "200", "--iterations", "30",
         "--eval-every", "10", "--batch-size", "32", "--train-size", "none", "--rounds", "1", "--no-progress"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in lines[0], lines
    assert sorted(tmp_path.rglob("*")) == before and not out.exists() and not cache.exists()
    assert time.time() - started < 60  # a short connect timeout, not Dask's default


def test_bad_workers_and_scheduler_arguments(tmp_path):
    from lthkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--workers", "0", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert main(["run", "--scheduler", "nonsense", "--out", str(tmp_path / "out"), "--cache", str(tmp_path)]) == 2
    with pytest.raises(LthkitError, match="workers"):
        run_experiments(tiny_configs(trials=1, controls=("ticket",)), cache_dir=tmp_path, workers=0)
    with pytest.raises(LthkitError, match="data only with workers=1"):
        run_experiments(tiny_configs(trials=1, controls=("ticket",)), cache_dir=tmp_path, workers=2,
                        data=object())


def test_run_and_reproduce_with_two_workers_write_what_one_worker_writes(sequential, tmp_path, capsys):
    from lthkit.cli import main
    from lthkit.studies.paper import reproduce

    root, _, _ = sequential
    flags = ["--data", str(root), "--validation-size", "200", "--iterations", "30", "--eval-every", "10",
             "--batch-size", "32", "--train-size", "none", "--rounds", "2", "--no-progress", "--control", "all"]
    for workers in ("1", "2"):
        assert main(["run", *flags, "--workers", workers, "--cache", str(tmp_path / f"cache{workers}"),
                     "--out", str(tmp_path / f"run{workers}")]) == 0
    assert (tmp_path / "run1" / "summary.csv").read_text() == (tmp_path / "run2" / "summary.csv").read_text()
    base = tiny_configs(trials=1, controls=("ticket",))[0]
    capsys.readouterr()
    for workers in (1, 2):
        reproduce(tmp_path / f"reproduce{workers}", base=base, trials=2, controls=("ticket", "reinit"),
                  cache_dir=tmp_path / f"paper-cache{workers}", data_root=root, progress=False, workers=workers)
        # Two workers, two chains per trial: the outputs are rewritten after each trial, as with one.
        finished = [line for line in capsys.readouterr().err.splitlines() if " done in " in line]
        assert [line.split("trial(s) ")[1].split(" done")[0] for line in finished] == ["0", "1"]
    assert (tmp_path / "reproduce1" / "summary.csv").read_text() == \
        (tmp_path / "reproduce2" / "summary.csv").read_text()
    info = json.loads((tmp_path / "reproduce2" / "run_info.json").read_text())
    assert info["workers"] == 2 and info["scheduler"] is None and len(info["runs"]) == 4


def test_a_task_trains_one_round_from_the_cache_and_loads_mnist_once_per_process(sequential, tmp_path, monkeypatch):
    from lthkit.core import data as data_module
    from lthkit.runs import cache as experiments
    from lthkit.runs.sweep import train_round

    root, sequential_cache, expected = sequential
    loads = []
    real_load = data_module.load_mnist
    monkeypatch.setattr(data_module, "load_mnist",
                        lambda *args, **kwargs: loads.append(1) or real_load(*args, **kwargs))
    data_module._load_data_cached.cache_clear()
    ticket, reinit = tiny_configs(trials=1, controls=("ticket", "reinit"))
    arguments = (str(tmp_path), "cpu", str(root))
    with pytest.raises(LthkitError, match="not in the cache"):  # reinit round 0 needs the ticket's round 0
        train_round(reinit.to_dict(), 0, experiments.cache_key(reinit), *arguments)
    for round_index in range(3):
        for config in (ticket, reinit):
            assert train_round(config.to_dict(), round_index, experiments.cache_key(config), *arguments) == "trained"
            assert experiments.DiskStore(cache_entry(config, tmp_path), config).finished_rounds() == round_index + 1
    assert train_round(ticket.to_dict(), 1, experiments.cache_key(ticket), *arguments) == "cached"
    assert len(loads) == 1  # MNIST once for the six trainings of this process
    with pytest.raises(LthkitError, match="other lthkit code"):
        train_round(ticket.to_dict(), 0, "0" * 24, *arguments)
    results = run_experiments([ticket, reinit], cache_dir=tmp_path, progress=False)
    assert same_results(results, expected[:2])
    data_module._load_data_cached.cache_clear()


def test_default_workers_are_the_cores_on_a_cpu_and_one_on_a_gpu(monkeypatch):
    import argparse

    from lthkit.cli.common import sweep_options

    args = argparse.Namespace(workers=None, scheduler=None)
    monkeypatch.delenv("LTHKIT_WORKERS")
    assert sweep_options(args, "cpu") == {"workers": os.cpu_count(), "scheduler": None}
    assert sweep_options(args, "cuda")["workers"] == 1
    # A lone run cannot be split: it trains in this process, with no cluster to start.
    assert sweep_options(args, "cpu", runs=1)["workers"] == 1
    assert sweep_options(args, "cpu", runs=64)["workers"] == os.cpu_count()
    monkeypatch.setenv("LTHKIT_WORKERS", "3")
    assert sweep_options(args, "cuda")["workers"] == 3
    monkeypatch.setenv("LTHKIT_SCHEDULER", "127.0.0.1:8786")
    assert sweep_options(args)["scheduler"] == "tcp://127.0.0.1:8786"
    monkeypatch.setenv("LTHKIT_WORKERS", "many")
    with pytest.raises(LthkitError, match=r"\$LTHKIT_WORKERS"):
        sweep_options(args)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_prepare_worker_undoes_the_nannys_malloc_trim_setting():
    """A Dask nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc unmap every freed
    block over 128 KiB: a training step's gradients are then page-faulted in afresh each step. After
    prepare_worker, allocating and freeing LeNet's 784 x 300 gradient costs (almost) no page faults."""
    code = textwrap.dedent("""
        import resource, torch
        from lthkit.runs.sweep import prepare_worker

        def faults():  # minor page faults of 200 allocations of one fc1 gradient (941 KiB)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(200):
                gradient = torch.empty(300 * 784)
                gradient.fill_(1.0)
                del gradient
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        before = faults()
        prepared = prepare_worker()
        print(before, prepared, faults(), torch.get_num_threads())
    """)
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-600:]
    before, prepared, after, threads = done.stdout.split()
    assert prepared == "True" and threads == "1"
    assert int(before) > 200 * 100, "the nanny's setting makes each allocation fault its pages in"
    assert int(after) < int(before) / 20
