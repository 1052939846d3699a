#!/usr/bin/env python
"""K independent runs trained at once (lthkit.core.batched.train_batched) against the same K runs one by one.

For K = 1, 4, 16 (``--runs``): K LeNet-300-100 runs of the fast preset's data (10,000 training
images), each with its own initialization, a 20%-pruned layer-wise mask of its own and its own
batch order, ``--iterations`` iterations at batch 60 with Adam, evaluated every 100. Prints the
wall time of the K sequential ``train`` calls and of one ``train_batched`` call, the speedup,
whether :func:`lthkit.core.batched.use_batched` picks the batched path for that K on this device, and
how far the batched results are from the sequential ones (they should agree to float rounding,
and every pruned weight must be exactly zero). Rounding differences grow over many steps (Adam
divides by the root of tiny second moments); for scale, the last line shows how far the same
sequential runs are from themselves on another thread count, which rounds differently too.

``--smoke``: K = 1 and 2, 20 iterations evaluated every 10, on 500 training images: it checks that
the script works, and its numbers mean nothing.

Usage:
    python benchmarks/batched_runs.py [--device cpu|cuda] [--runs 1,4,16] [--iterations 300] [--threads N] [--smoke]
"""

from __future__ import annotations

import argparse
import sys

import torch
from common import add_machine_arguments, load_average, start, timed

from lthkit.core.batched import train_batched, use_batched
from lthkit.core.data import get_data
from lthkit.core.masks import full_masks, magnitude_masks, prunable_weights
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig, train
from lthkit.runs.presets import preset


def runs_of(count: int):
    """``count`` (model, mask, seed) triples: each run its own init, mask and batch order."""
    runs = []
    for k in range(count):
        model = build_model("lenet300_100", seed=1000 + k)
        mask = magnitude_masks(prunable_weights(model), full_masks(model), 0.2, scope="layer",
                               layer_rates={"output": 0.1})
        runs.append((model, mask, 2000 + k))
    return runs


def sequential_runs(count: int, data, config, device):
    """(models after training, results, wall seconds) of ``count`` runs trained one by one."""
    models = [model for model, _, _ in runs_of(count)]
    seconds = []
    with timed(device, seconds):
        results = [train(model, data, config, masks=mask, seed=seed, progress=False)
                   for model, (_, mask, seed) in zip(models, runs_of(count))]
    return models, results, seconds[0]


def gaps(models_a, results_a, models_b, results_b) -> str:
    """How far two sets of the same runs are apart: weights (median, 99.99th percentile, max) and accuracy."""
    differences = torch.cat([(a.state_dict()[name] - b.state_dict()[name]).abs().flatten().cpu()
                             for a, b in zip(models_a, models_b) for name in a.state_dict()])
    sample = differences[torch.randperm(len(differences), generator=torch.Generator().manual_seed(0))[:500_000]]
    median, tail = torch.quantile(sample.double(), torch.tensor([0.5, 0.9999], dtype=torch.double)).tolist()
    accuracy = max(abs(a.val_acc_final - b.val_acc_final) for a, b in zip(results_a, results_b))
    return f"|dw| median {median:.0e}, 99.99% {tail:.0e}, max {differences.max():.0e}; max |d val acc| {accuracy:.4f}"


def compare(count: int, data, config, device):
    runs = runs_of(count)
    alone, sequential, sequential_seconds = sequential_runs(count, data, config, device)
    models = [model for model, _, _ in runs]
    batched_seconds = []
    with timed(device, batched_seconds):
        batched = train_batched(models, data, config, masks=[mask for _, mask, _ in runs],
                                seeds=[seed for _, _, seed in runs], progress=False)
    same_stop = sum(a.early_stop_iteration == b.early_stop_iteration for a, b in zip(sequential, batched))
    leaks = sum(int(torch.count_nonzero(dict(model.named_parameters())[name][~m.to(device)]))
                for model, (_, mask, _) in zip(models, runs) for name, m in mask.items())
    return (sequential_seconds, batched_seconds[0], gaps(alone, sequential, models, batched), same_stop, leaks,
            (alone, sequential))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_machine_arguments(parser, device="cpu")
    parser.add_argument("--runs", default="1,4,16", help="comma-separated values of K (default 1,4,16)")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args(argv)
    eval_every = 100
    if args.smoke:
        args.runs, args.iterations, eval_every = "1,2", 20, 10
    start(parser, args)
    fast = preset("fast")
    if args.smoke:
        fast = fast.replace(data={"train_size": 500, "validation_size": 200, "test_size": 200})
    data = get_data(fast.data, args.device)
    config = TrainConfig(iterations=args.iterations, eval_every=eval_every, batch_size=60)
    compare(2, data, TrainConfig(iterations=20, eval_every=10), args.device)  # warm-up: allocator, kernels
    print(f"\n{'K':>3} {'sequential':>11} {'batched':>9} {'speedup':>8}  {'auto':>10}  {'same stop':>9} "
          f"{'pruned!=0':>9}  load")
    gap_lines, calibration = [], None
    for count in (int(k) for k in args.runs.split(",")):
        sequential, batched, gap, same_stop, leaks, trained = compare(count, data, config, args.device)
        choice = "batched" if use_batched(args.device, count) else "one by one"
        print(f"{count:>3} {sequential:>10.2f}s {batched:>8.2f}s {sequential / batched:>7.2f}x  {choice:>10}  "
              f"{same_stop:>5}/{count:<3} {leaks:>9}  {load_average()}")
        gap_lines.append(f"  K={count}: batched vs one by one: {gap}")
        if calibration is None and count > 1:
            calibration = (count, trained)
    print("\nbatched results against the same runs trained one by one:")
    print("\n".join(gap_lines))
    if calibration is not None and args.device == "cpu":
        # For scale: the very same sequential runs on another thread count round differently too.
        count, (models, results) = calibration
        threads = torch.get_num_threads()
        torch.set_num_threads(1 if threads > 1 else 2)
        other_models, other_results, _ = sequential_runs(count, data, config, args.device)
        print(f"  for scale, K={count} one by one on {torch.get_num_threads()} vs {threads} threads: "
              f"{gaps(models, results, other_models, other_results)}")
        torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
