"""A sweep of 8 chains (4 trials x ticket and reinit, fast preset, 3 rounds): wall time on Dask.

Three ways in one run, each on its own empty cache (so each trains all 32 trainings):

1. ``--workers 1``: in-process, one thread (today's path);
2. ``--workers 2``: a local cluster of 2 single-threaded worker processes started by the command;
3. ``--scheduler``: a cluster of 2 single-threaded workers started beforehand (``dask scheduler``
   and ``dask worker --nthreads 1`` on loopback), reached through ``--scheduler tcp://127.0.0.1:PORT``.

Each is the whole ``python -m lthkit run`` command (start-up, MNIST, training, outputs), timed
from outside. Then the machine's own ceiling without Dask: the trials split in two halves, each a
``--workers 1`` command, both started at once (``ratio_two_processes``): what two single-threaded
processes on this machine's cores give at best, so the Dask ratios can be read against it. Prints each wall time and ``ratio_workers2=X ratio_scheduler=Y`` (the one-worker time
over each). The ratios mean something only on a quiet machine: run it with the load average below
1.5 (the script prints it before and after).

``--smoke``: 2 trials, 1 round, 20 iterations on 500 training images, every way (what ``make test``
runs, to check that the script works; its numbers mean nothing).

Usage: ``python benchmarks/sweep.py [--data data] [--trials 4] [--rounds 3] [--modes workers2,scheduler,halves]
[--smoke]``
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The ways of running the sweep that the benchmark can time (``--modes``).
MODES = ("workers1", "workers2", "scheduler", "halves")
#: ``--smoke``'s sizes on every ``run`` command line (``--trials`` and ``--rounds`` are set apart).
SMOKE_RUN = ["--iterations", "20", "--eval-every", "10", "--train-size", "500", "--validation-size", "200",
             "--test-size", "200"]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed_run(arguments, env, scratch: Path, name: str) -> float:
    command = [sys.executable, "-m", "lthkit", "run", *arguments, "--cache", str(scratch / f"cache-{name}"),
               "--out", str(scratch / f"out-{name}"), "--no-progress"]
    began = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{name} failed: {done.stderr.strip()[-600:]}")
    return time.time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO / "data"))
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"which of {', '.join(MODES)} to time (default: all; workers1 is always timed)")
    parser.add_argument("--smoke", action="store_true",
                        help="2 trials, 1 round, tiny sizes, every way: checks that the script works "
                             "(tests/test_benchmarks.py); its numbers mean nothing")
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.rounds = 2, 1  # 2: the halves need a trial each
        print("--smoke: tiny sizes, every section once; the numbers below mean nothing")
    if args.trials < 2 and "halves" in args.modes.split(","):
        sys.exit("--trials must be at least 2 for the halves mode (one trial or more each)")
    modes = set(args.modes.split(",")) | {"workers1"}
    if modes - set(MODES):
        sys.exit(f"unknown mode(s): {', '.join(sorted(modes - set(MODES)))}; choose from {', '.join(MODES)}")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("LTHKIT_SCHEDULER", None)
    # 8 chains: the reinit run of every trial and the ticket it needs (which the sweep trains too).
    # `shared` is all but the trials, which the halves choose for themselves (the CLI refuses a flag given
    # twice with different values).
    shared = ["--preset", "fast", "--rounds", str(args.rounds), "--control", "reinit", "--device", "cpu",
              "--data", args.data, *(SMOKE_RUN if args.smoke else [])]
    chains = [*shared, "--trials", str(args.trials)]
    print(f"cores {os.cpu_count()}, load average {load_average()}; {args.trials} trials x ticket and reinit, "
          f"{args.rounds} rounds")
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        seconds = {"workers1": timed_run([*chains, "--workers", "1"], env, scratch, "workers1")}
        print(f"--workers 1: {seconds['workers1']:.1f} s")
        if "workers2" in modes:
            seconds["workers2"] = timed_run([*chains, "--workers", "2"], env, scratch, "workers2")
            print(f"--workers 2: {seconds['workers2']:.1f} s")
        if "scheduler" in modes:
            seconds["scheduler"] = time_prestarted_cluster(chains, env, scratch, settle=2 if args.smoke else 5)
            print(f"--scheduler (2 workers started beforehand): {seconds['scheduler']:.1f} s")
        if "halves" in modes:
            seconds["halves"] = time_two_processes(shared, env, scratch, args.trials)
            print(f"two --workers 1 commands at once, half the trials each (no Dask): {seconds['halves']:.1f} s")
    names = {"workers2": "ratio_workers2", "scheduler": "ratio_scheduler", "halves": "ratio_two_processes"}
    print(" ".join(f"{names[mode]}={seconds['workers1'] / seconds[mode]:.2f}" for mode in MODES[1:] if mode in seconds)
          + f" load_average={load_average()}")


def time_prestarted_cluster(chains, env, scratch: Path, settle: float = 5) -> float:
    """The sweep through ``--scheduler`` to 2 single-threaded workers started beforehand on loopback
    (``settle`` seconds before the clock starts, for them to register)."""
    port = free_port()
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
                                  "127.0.0.1:0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
                                 "--nthreads", "1", "--host", "127.0.0.1"], env=env, cwd=str(REPO),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        time.sleep(settle)  # let the workers register before the clock starts: the cluster exists already
        return timed_run([*chains, "--scheduler", f"tcp://127.0.0.1:{port}"], env, scratch, "scheduler")
    finally:
        for process in [*workers, scheduler]:
            process.terminate()
        for process in [*workers, scheduler]:
            process.wait(timeout=30)


def time_two_processes(shared, env, scratch: Path, trials: int) -> float:
    """The machine's own ceiling, without Dask: the chains split in two halves by seed, each a one-worker
    command, both started at once (two single-threaded processes, one per core). ``shared`` is the
    chains' arguments without ``--trials`` and ``--seed``: each half gives its own."""
    half = trials // 2
    halves = [["--seed", "0", "--trials", str(half)], ["--seed", str(half), "--trials", str(trials - half)]]
    began = time.time()
    processes = []
    for index, part in enumerate(halves):
        arguments = [*shared, *part, "--workers", "1"]
        command = [sys.executable, "-m", "lthkit", "run", *arguments, "--cache", str(scratch / f"cache-half{index}"),
                   "--out", str(scratch / f"out-half{index}"), "--no-progress"]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))
    for process in processes:
        _, error = process.communicate()
        if process.returncode:
            sys.exit(f"a half failed: {error.strip()[-600:]}")
    return time.time() - began

if __name__ == "__main__":
    main()
