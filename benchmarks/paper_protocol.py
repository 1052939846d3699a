#!/usr/bin/env python
"""Wall time of the full paper protocol: trials x controls x rounds of LeNet-300-100 IMP.

Runs ``preset("paper", rounds=R)`` for every trial (seed) and control through
:func:`lthkit.runs.experiments.run_experiments` in a fresh temporary cache (or ``--cache``): the runs
of each round are trained together, batched where ``--batch`` says so (``auto``: on a GPU).
Prints the wall time, the time per round, how many networks were trained, and whether the
protocol met the goal of 15 minutes. With ``--out`` it also writes ``summary.csv`` there.

The goal (issue 6) is the full protocol, 5 trials x 3 controls x 16 rounds x 50,000 iterations,
in under 15 minutes on one H100:

    python benchmarks/paper_protocol.py --device cuda

A small run to check that it works anywhere (a few minutes on a CPU):

    python benchmarks/paper_protocol.py --device cpu --trials 2 --rounds 1 --iterations 300

A smaller one, in seconds (``make test`` runs it): ``--smoke`` is 1 trial x 3 controls x 1 round x 20
iterations on 500 training images, on the CPU unless ``--device`` says otherwise; its numbers mean
nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import add_machine_arguments, load_average, start

from lthkit.core.batched import use_batched
from lthkit.core.data import get_data
from lthkit.imp.branches import PAPER_CONTROLS as CONTROLS
from lthkit.reporting.summaries import write_summary_csv
from lthkit.runs.experiments import run_experiments
from lthkit.runs.presets import preset

GOAL_SECONDS = 15 * 60


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_machine_arguments(parser, device=None)  # default: cuda, or cpu with --smoke
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=50_000, help="per training (the paper: 50,000)")
    parser.add_argument("--patience", type=int, default=None, help="stop a training early (default: never)")
    parser.add_argument("--batch", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write summary.csv here")
    args = parser.parse_args(argv)
    if args.device is None:
        args.device = "cpu" if args.smoke else "cuda"
    changes = {}
    if args.smoke:
        args.trials, args.rounds, args.iterations = 1, 1, 20
        changes = {"train": {"eval_every": 10}, "data": {"train_size": 500, "validation_size": 200, "test_size": 200}}
    start(parser, args)
    batch = {"auto": "auto", "on": True, "off": False}[args.batch]
    base = preset("paper", rounds=args.rounds, train={"iterations": args.iterations, "patience": args.patience})
    if changes:
        base = base.replace(**changes)
    configs = [base.replace(seed=trial, control=control) for trial in range(args.trials) for control in CONTROLS]
    runs_per_round = len(configs)
    batched = batch is True or (batch == "auto" and use_batched(args.device, runs_per_round))
    print(f"protocol: {args.trials} trials x {len(CONTROLS)} controls x {args.rounds} rounds (+ the dense round 0) "
          f"x {args.iterations:,} iterations; {runs_per_round} runs per round, "
          f"{'batched' if batched else 'one by one'}")
    began = time.perf_counter()
    data = get_data(base.data, args.device)
    load_seconds = time.perf_counter() - began
    round_done = {}

    def on_round(config, result):
        round_done[result.round] = time.perf_counter() - began

    with tempfile.TemporaryDirectory() as temporary:
        cache = args.cache or temporary
        results = run_experiments(configs, cache_dir=cache, data=data, batch=batch, progress=True,
                                  on_round=on_round)
    wall = time.perf_counter() - began
    if args.out:
        write_summary_csv(Path(args.out) / "summary.csv", results)
    previous = load_seconds
    for round_index in sorted(round_done):
        print(f"  round {round_index:2d} done at {round_done[round_index]:8.1f} s "
              f"(+{round_done[round_index] - previous:.1f} s)")
        previous = round_done[round_index]
    trained = sum(len(result.rounds) for result in results)
    print(f"MNIST into memory: {load_seconds:.1f} s; {trained} networks trained; load average {load_average()}")
    print(f"wall time {wall:.1f} s = {wall / 60:.1f} min; goal for the full protocol on one H100: "
          f"{GOAL_SECONDS / 60:.0f} min -> {'met' if wall <= GOAL_SECONDS else 'not met'}"
          + ("" if (args.trials, args.rounds, args.iterations) == (5, 16, 50_000) else " (not the full protocol)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
