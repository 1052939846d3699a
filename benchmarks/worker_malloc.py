"""What a Dask nanny's malloc setting costs a training, and what ``lthkit.runs.sweep.prepare_worker`` gives back.

A Dask nanny starts each worker process with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
``distributed.nanny.pre-spawn-environ``), which turns off glibc's dynamic mmap threshold.
``prepare_worker`` (called by every sweep task) sets glibc's thresholds back to where that dynamic
rule ends in a plain process. This script trains the same fast-preset rounds (LeNet-300-100, 1,500
iterations at batch 60, one thread), each as one sweep task (:func:`lthkit.runs.sweep.train_round`), in
three ways, each in fresh processes, interleaved:

1. ``in-process``: in the script's own child process, on its main thread (as ``--workers 1``);
2. ``worker, nanny's setting``: on a one-worker local cluster (``lthkit.runs.sweep.sweep_client``), with
   ``prepare_worker``'s malloc thresholds left out (how workers trained before it set them);
3. ``worker, prepare_worker``: the same cluster, with the tasks as they are.

Each way trains ``--trainings`` rounds one after another (the first is a warm-up, not counted:
imports and MNIST) and reports the mean seconds per training, wall and CPU time of the training
thread. Prints the fastest repetition of each way and ``ratio_nanny_setting=X ratio_prepared=Y``
(each way's wall time over in-process). Run it on a quiet machine.

``--smoke``: one repetition of 2 trainings per way (one counted), each 20 iterations on 500 images
(what ``make test`` runs, to check that the script works; its numbers mean nothing).

Usage: ``python benchmarks/worker_malloc.py [--repeats 3] [--trainings 4] [--data data] [--smoke]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, tempfile, time


def task(cache, data, seed, prepare, smoke):
    import time
    import torch
    import lthkit.runs.sweep as sweep
    from lthkit.runs.cache import cache_key
    from lthkit.runs.presets import preset

    if not prepare:  # the worker as it was: one thread, glibc's thresholds as the nanny left them
        sweep.prepare_worker = lambda: torch.set_num_threads(1)
    config = preset("fast", seed=seed, control="ticket", rounds=1)
    if smoke:
        config = config.replace(train={"iterations": 20, "eval_every": 10},
                                data={"train_size": 500, "validation_size": 200, "test_size": 200})
    wall, cpu = time.perf_counter(), time.thread_time()
    sweep.train_round(config.to_dict(), 0, cache_key(config), cache, "cpu", data)
    return time.perf_counter() - wall, time.thread_time() - cpu


def main():
    way, data, trainings, smoke = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["smoke"]
    times = []
    with tempfile.TemporaryDirectory() as cache:  # empty: every round is trained
        if way == "in-process":
            import torch
            torch.set_num_threads(1)
            times = [task(cache, data, seed, True, smoke) for seed in range(trainings)]
        else:
            from lthkit.runs.sweep import sweep_client
            with sweep_client(1) as client:
                times = [client.submit(task, cache, data, seed, way == "prepared", smoke, pure=False).result()
                         for seed in range(trainings)]
    print(json.dumps(times[1:]))


if __name__ == "__main__":
    main()
"""

WAYS = {"in-process": "in-process", "worker, nanny's setting": "nanny", "worker, prepare_worker": "prepared"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trainings", type=int, default=4, help="per way and repeat, the first one a warm-up")
    parser.add_argument("--data", default=str(REPO / "data"))
    parser.add_argument("--smoke", action="store_true",
                        help="one repetition of 2 tiny trainings per way: checks that the script works "
                             "(tests/test_benchmarks.py); its numbers mean nothing")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.trainings = 1, 2
        print("--smoke: tiny sizes, every section once; the numbers below mean nothing")
    if args.trainings < 2 or args.repeats < 1:
        sys.exit("--trainings must be at least 2 (the first is a warm-up) and --repeats at least 1")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    env.update({"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    best: dict[str, tuple[float, float]] = {}
    for repeat in range(args.repeats):
        for name, way in WAYS.items():
            done = subprocess.run([sys.executable, "-c", CHILD, way, args.data, str(args.trainings),
                                   *(["smoke"] if args.smoke else [])], env=env, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name} failed: {done.stderr.strip()[-600:]}")
            times = json.loads(done.stdout.strip().splitlines()[-1])
            wall, cpu = (sum(column) / len(times) for column in zip(*times))
            print(f"repeat {repeat} {name:<24} {wall:.2f} s per training (CPU {cpu:.2f} s)", flush=True)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    for name, (wall, cpu) in best.items():
        print(f"fastest {name:<24} {wall:.2f} s per training (CPU {cpu:.2f} s)")
    plain, nanny = best["in-process"][0], best["worker, nanny's setting"][0]
    print(f"ratio_nanny_setting={nanny / plain:.2f} "
          f"ratio_prepared={best['worker, prepare_worker'][0] / plain:.2f}")


if __name__ == "__main__":
    main()
