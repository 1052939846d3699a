"""Why notebook 3's first run was slow: torch's threads against a busy neighbour (issue 27, item 6).

A notebook kernel trains with torch's default thread pool, one thread per core. When something else
keeps the cores busy (a browser rendering JupyterLab's widgets, JupyterLab itself, another kernel),
the pool's threads wait for each other at every operation's barrier while the scheduler runs the
neighbour: a training of about a second can take tens. This script trains notebook 3's config
(``notebook_preset("explore")``, one training = one IMP round's training) with the default threads
and with one thread, on a quiet machine and beside a controlled load (``--busy`` processes spinning
at normal priority, started and stopped here, standing in for the browser), interleaved, and prints
per arm the median wall time, CPU time and involuntary context switches per training, and the ratios.

    python benchmarks/kernel_threads.py                    # 5 repeats of each arm, 2 spinning processes
    python benchmarks/kernel_threads.py --out benchmarks/kernel_threads.txt
    python benchmarks/kernel_threads.py --smoke            # seconds: checks that the script works

Run it on a machine with nothing else running: the load is the script's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from common import SMOKE_HELP, describe_machine  # noqa: E402

from lthkit.core.data import get_data  # noqa: E402
from lthkit.core.models import build_model  # noqa: E402
from lthkit.core.train import train  # noqa: E402
from lthkit.runs.presets import preset_config  # noqa: E402
from lthkit.runs.threads import training_threads  # noqa: E402

SPIN = "while True: pass"


def start_load(count: int) -> list[subprocess.Popen]:
    """``count`` processes that keep a core busy each, at the kernel's own priority (a browser is not niced)."""
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]


def stop_load(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def one_training(config, data, threads: int, seed: int) -> dict:
    """Train once with ``threads`` torch threads: wall and CPU seconds, involuntary switches, OS threads seen."""
    model = build_model(config.model, seed=seed)
    before_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        wall, cpu = time.perf_counter(), time.process_time()
        train(model, data, config.train, seed=seed, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else -1
    finally:
        torch.set_num_threads(before_threads)
    return {"wall": wall, "cpu": cpu, "switches": after.ru_nivcsw - usage.ru_nivcsw, "os_threads": tasks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="trainings per arm (default 5)")
    parser.add_argument("--busy", type=int, default=2, help="spinning processes beside the kernel (default 2)")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    config = preset_config("explore", fast=args.smoke)
    if args.smoke:
        print(f"--smoke: {SMOKE_HELP}")
        config = config.replace(train={"iterations": 20}, data={"train_size": 500})
        args.repeats = 1
    data = get_data(config.data)
    default = max(2, os.cpu_count() or 1)  # torch's default in a kernel: one thread per core (2 on one core)
    with training_threads(kernel=True) as in_a_kernel:
        pass
    lines = [f"kernel_threads: {describe_machine('cpu')}",
             f"config: notebook 3 ({config.model}, {config.train.iterations:,} iterations, "
             f"{len(data.train_y):,} training images); load: {args.busy} processes spinning at nice 0 "
             f"(`python -c '{SPIN}'`); {args.repeats} trainings per arm, arms interleaved",
             f"torch's default: {default} threads (one per core); lthkit in a notebook kernel now trains on "
             f"{in_a_kernel} (lthkit.runs.threads.training_threads)"]
    arms = {(load, threads): [] for load in ("quiet", "busy") for threads in (default, 1)}
    one_training(config, data, 1, seed=99)  # warm-up: data, allocator, kernels
    for repeat in range(args.repeats):
        for load in ("quiet", "busy"):
            processes = start_load(args.busy) if load == "busy" else []
            try:
                if processes:
                    time.sleep(0.5)  # the load is running before the training starts
                order = (default, 1) if repeat % 2 == 0 else (1, default)
                for threads in order:
                    found = one_training(config, data, threads, seed=repeat)
                    arms[(load, threads)].append(found)
                    print(f"repeat {repeat} {load} {threads} thread(s): {found['wall']:.2f} s wall, "
                          f"{found['cpu']:.2f} s CPU", flush=True)
            finally:
                stop_load(processes)
    lines.append(f"{'load':<6} {'threads':>7} {'wall s (median)':>16} {'min-max':>14} {'CPU s':>7} "
                 f"{'invol. switches':>16} {'OS threads':>10}")
    medians = {}
    for (load, threads), runs in arms.items():
        walls = [run["wall"] for run in runs]
        medians[(load, threads)] = statistics.median(walls)
        lines.append(f"{load:<6} {threads:>7} {statistics.median(walls):>16.2f} "
                     f"{min(walls):>6.2f}-{max(walls):<7.2f} {statistics.median(run['cpu'] for run in runs):>7.2f} "
                     f"{statistics.median(run['switches'] for run in runs):>16.0f} "
                     f"{max(run['os_threads'] for run in runs):>10}")
    ratio = lambda a, b: medians[a] / medians[b]  # noqa: E731
    lines += [f"busy / quiet, {default} threads: {ratio(('busy', default), ('quiet', default)):.1f}x",
              f"busy / quiet, 1 thread: {ratio(('busy', 1), ('quiet', 1)):.1f}x",
              f"busy: {default} threads / 1 thread: {ratio(('busy', default), ('busy', 1)):.1f}x",
              f"quiet: {default} threads / 1 thread: {ratio(('quiet', default), ('quiet', 1)):.2f}x"]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.out:
        args.out.write_text(report + f"\ncommand: python benchmarks/kernel_threads.py --repeats {args.repeats} "
                            f"--busy {args.busy} --out {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
