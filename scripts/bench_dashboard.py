#!/usr/bin/env python
"""Benchmark the dashboard: how long a config that already ran takes to come back, against training it.

The goal (issue 3): selecting a configuration that already ran redraws in under half a second. This
trains one fast-mode configuration (``notebook_preset("explore", fast=True)``, in a fresh
temporary cache), moves a control away and back, and prints the seconds each step took and the
ratio training / cached redraw. It also checks that the controls' moves trained nothing.

Usage:
    python scripts/bench_dashboard.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")

import lthkit.imp.driver  # noqa: E402
from lthkit.course.dashboard import Dashboard  # noqa: E402
from lthkit.course.modes import notebook_preset  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="cached selections to time (default 5)")
    args = parser.parse_args(argv)
    trainings = []
    real_train = lthkit.imp.driver.train

    def counting_train(*a, **k):
        trainings.append(1)
        return real_train(*a, **k)

    lthkit.imp.driver.train = counting_train
    with tempfile.TemporaryDirectory() as cache:
        dashboard = Dashboard(notebook_preset("explore", fast=True), cache_dir=cache, progress=False)
        began = time.perf_counter()
        dashboard.run_button.click()
        train_seconds = time.perf_counter() - began
        trained = len(trainings)
        fresh = Dashboard(notebook_preset("explore", fast=True), cache_dir=cache, progress=False)  # empty memory
        rounds = fresh.controls["rounds"]
        selections = []
        for _ in range(args.repeats):
            rounds.value += 1  # a config that has not run: looked up, not trained
            fresh._known.clear()  # every selection reads the disk cache, as in a new session
            began = time.perf_counter()
            rounds.value -= 1  # the config that ran: read from the cache and drawn
            selections.append(time.perf_counter() - began)
    redraw = statistics.median(selections)
    print(f"training the config (Run: {trained} networks, loading MNIST included): {train_seconds:.2f} s")
    print(f"selecting it again (disk cache + draw), median of {args.repeats}: {redraw * 1000:.0f} ms "
          f"(min {min(selections) * 1000:.0f}, max {max(selections) * 1000:.0f}); goal: under 500 ms")
    print(f"ratio training / cached redraw: {train_seconds / redraw:.0f}x")
    print(f"networks trained by moving controls: {len(trainings) - trained}")
    return 0 if len(trainings) == trained else 1


if __name__ == "__main__":
    sys.exit(main())
