"""Start-up of ``python -m lthkit run``: seconds from launching the command to its first training step.

The command runs in a fresh process (``LTHKIT_WORKERS=1``: in-process, as a one-run ``run`` is
timed) on the real MNIST, with an empty cache; a small wrapper around
``lthkit.core.train.make_optimizer`` prints the time when the first training's optimizer exists (its
first step comes next), and the parent reads it. The phases are timed apart in one more process:
importing the CLI (torch), loading MNIST (tensor cache and torchvision's parser), and the first
optimizer (torch.optim imports torch._dynamo there).

Usage: ``python benchmarks/startup.py [--repeat 3] [--data data] [--code CHECKOUT] [--smoke]``; prints one
line per repetition and ``median_startup_s=X``. The machine's load is printed too: on a busy
machine every figure grows. ``--smoke``: one repetition of a ``run`` with tiny sizes (what
``make test`` runs, to check that the script works; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: ``--smoke``'s sizes on the ``run`` command line (the command is stopped at its first optimizer anyway).
SMOKE_RUN = ["--iterations", "20", "--eval-every", "10", "--train-size", "500", "--validation-size", "200",
             "--test-size", "200"]

CHILD = """
import sys, time
import lthkit.core.train as train_module
make_optimizer = train_module.make_optimizer
def first_step(*args, **kwargs):
    make_optimizer(*args, **kwargs)  # the network is built, the data loaded, the optimizer made: training starts
    print(f"FIRST_TRAIN {time.time():.6f}", file=sys.stderr, flush=True)
    raise SystemExit(0)
train_module.make_optimizer = first_step
from lthkit.cli import main
sys.exit(main(sys.argv[1:]))
"""

PHASES = """
import time; began = time.time()
import lthkit.cli; imported = time.time()
from lthkit.core.data import read_mnist_raw, read_mnist_tensors
read_mnist_tensors({data!r}); cached = time.time()
import torch
torch.optim.Adam([torch.zeros(1, requires_grad=True)]); optimizer = time.time()
read_mnist_raw({data!r}); parsed = time.time()
print(f"import lthkit.cli {{imported - began:.2f}} s, MNIST from the tensor cache {{cached - imported:.2f}} s, "
      f"first optimizer (torch._dynamo) {{optimizer - cached:.2f}} s; "
      f"torchvision's parser {{parsed - optimizer:.2f}} s")
"""


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default=str(REPO / "data"))
    parser.add_argument("--code", default=str(REPO), help="the checkout whose lthkit runs (to time another commit)")
    parser.add_argument("--smoke", action="store_true",
                        help="one repetition, tiny sizes: checks that the script works (tests/test_benchmarks.py); "
                             "its numbers mean nothing")
    args = parser.parse_args()
    if args.smoke:
        args.repeat = 1
        print("--smoke: tiny sizes, every section once; the numbers below mean nothing")
    env = {**os.environ, "PYTHONPATH": args.code, "OMP_NUM_THREADS": "1", "LTHKIT_WORKERS": "1"}
    print(f"cores {os.cpu_count()}, load average {load_average()}")
    times = []
    for repetition in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            command = [sys.executable, "-c", CHILD, "run", "--rounds", "1", "--no-progress", "--device", "cpu",
                       "--data", args.data, "--cache", f"{scratch}/cache", "--out", f"{scratch}/out",
                       *(SMOKE_RUN if args.smoke else [])]
            began = time.time()
            done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=scratch)
            marks = [line for line in done.stderr.splitlines() if line.startswith("FIRST_TRAIN ")]
            if not marks:
                sys.exit(f"no training started: {done.stderr.strip()[-400:]}")
            times.append(float(marks[0].split()[1]) - began)
            print(f"run {repetition + 1}: first training step after {times[-1]:.2f} s")
    phases = subprocess.run([sys.executable, "-c", PHASES.format(data=args.data)], env=env, capture_output=True,
                            text=True)
    print(phases.stdout.strip() or phases.stderr.strip()[-400:])
    print(f"median_startup_s={statistics.median(times):.2f} load_average={load_average()}")
    if phases.returncode:
        sys.exit(f"timing the phases failed (exit {phases.returncode}): {phases.stderr.strip()[-400:]}")


if __name__ == "__main__":
    main()
