#!/usr/bin/env python
"""How fast lthkit trains: against the usual DataLoader pipeline, against the FLOP bound, and over a whole IMP curve.

1. One MNIST epoch (all 60,000 training images) of LeNet-300-100 at batch 60 (the paper's) and
   at batch 128, dense, Adam 1.2e-3 (fused, as lthkit makes it):

   (a) lthkit's training loop: ``lthkit.core.train.train`` on in-memory tensors. train() also
       evaluates at its start and end (validation, test, training accuracy); that time is
       measured and printed apart, and (a) is the training steps alone, as in (b).
   (b) the pipeline of open_lth and most LTH repositories: ``torchvision.datasets.MNIST`` with
       per-sample ``ToTensor`` + ``Normalize``, a shuffling ``DataLoader`` (``--workers``, default
       0), the same model and the same optimizer (``lthkit.core.train.make_optimizer``).
   (c) the FLOP bound: 6 x 266,200 x 60,000 FLOPs (forward 2, backward 4 per weight and
       example) divided by this machine's float32 matrix-multiply throughput, measured in this
       run (see ``common.matmul_throughput``: the best of square GEMMs of 1024, 2048 and 4096 on a
       CPU, timed before and after the epochs; the higher figure is used). The 6x count includes
       the gradient of the input images, which nobody computes (the arithmetic really needed is
       70.5% of it), so (a) can come out below (c).

   Each of (a) and (b) runs ``--repeats`` times, interleaved; the fastest run is the figure
   (the least disturbed by other work on the machine) and every run is printed. Also: ms per
   iteration and peak memory.
2. The fast preset's 5-round IMP curve through ``run_experiment`` (fresh temporary cache, MNIST
   already in memory): wall time, and the share spent outside training steps (evaluation,
   pruning, building networks, cache I/O, the rest).
3. Memory across those rounds: resident memory after each round and the networks and
   optimizers still alive (each round's must be gone).

The last line is exactly ``speedup_vs_dataloader=X flop_bound_ratio=Y`` with X = (b)/(a) and
Y = (a)/(c) at batch 60. Goals on a 2-core CPU: X >= 5, Y <= 1.3.

``--smoke`` runs every section at tiny sizes (an "epoch" of 600 images, one repeat, the smallest
GEMM size, a 2-round IMP curve of 20 iterations on 500 images): it checks that the script works,
and its numbers mean nothing.

Usage:
    python benchmarks/train_throughput.py [--device cpu|cuda] [--threads N] [--repeats 3]
                                          [--batch-sizes 60,128] [--workers 0] [--skip-imp] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from common import (GEMM_SIZES, PeakMemory, add_machine_arguments, current_memory, load_average, matmul_throughput, mib,
                    put_back, replace_everywhere, shape_throughput, start, timed)

import lthkit.core.masks as masks_module
import lthkit.core.models as models_module
import lthkit.core.train as train_module
import lthkit.runs.experiments as experiments
from lthkit.core.data import MNIST_MEAN, MNIST_STD, MNISTData, data_root, normalize_images, read_mnist_raw
from lthkit.core.masks import full_masks, magnitude_masks, prunable_weights
from lthkit.core.models import LeNet300100, build_model
from lthkit.core.train import TrainConfig, evaluate, make_optimizer, train
from lthkit.runs.presets import preset

LENET_WEIGHTS = 266_200
EPOCH_IMAGES = 60_000
FLOPS_PER_WEIGHT_AND_EXAMPLE = 6  # forward 2, backward 4 (gradients of inputs and of weights)
#: ``--smoke``: the training images of its "epoch" (10 iterations at batch 60), in both pipelines.
SMOKE_EPOCH_IMAGES = 600


def full_epoch_data(device, images: int = EPOCH_IMAGES) -> MNISTData:
    """The first ``images`` training images (all 60,000: an epoch), plus 1,000 + 1,000 test images for
    train()'s evaluations."""
    train_images, train_labels, test_images, test_labels = read_mnist_raw()
    normalized = normalize_images(test_images)
    return MNISTData(normalize_images(train_images[:images]), train_labels[:images].long(), normalized[:1000],
                     test_labels[:1000].long(), normalized[1000:2000], test_labels[1000:2000].long()).to(device)


class EvaluationTimer:
    """Times every call of lthkit.core.train.evaluate (the evaluations inside train()), wherever lthkit calls it from."""

    def __init__(self, device):
        self.device, self.seconds = device, []
        self.real = train_module.evaluate

    def __enter__(self):
        def timed_evaluate(*args, **kwargs):
            with timed(self.device, self.seconds):
                return self.real(*args, **kwargs)
        self.places = replace_everywhere(self.real, timed_evaluate)
        return self

    def __exit__(self, *exc):
        put_back(self.places, self.real)
        return False


def lthkit_epoch(data, batch_size, device, *, pruned=False):
    """(training seconds, train()'s own evaluation seconds, peak memory, iterations, test accuracy)."""
    config = TrainConfig(batch_size=batch_size, iterations=None, epochs=1.0, eval_every=10 ** 9)
    model = build_model("lenet300_100", seed=0)
    masks = magnitude_masks(prunable_weights(model), full_masks(model), 0.2, scope="layer") if pruned else None
    total = []
    with PeakMemory(device) as memory, EvaluationTimer(device) as evaluations:
        with timed(device, total):
            result = train(model, data, config, masks=masks, seed=0, progress=False)
    return total[0] - sum(evaluations.seconds), sum(evaluations.seconds), memory, result.iterations, \
        result.test_acc_final


def dataloader_epoch(batch_size, device, workers, images: int = EPOCH_IMAGES):
    """(seconds, peak memory, iterations, test accuracy) of the per-sample torchvision pipeline over the
    first ``images`` training images (all 60,000: an epoch)."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    dataset = datasets.MNIST(str(data_root()), train=True, transform=transform)
    if images < len(dataset):
        dataset = Subset(dataset, range(images))
    cuda = torch.device(device).type == "cuda"
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=cuda,
                        generator=torch.Generator().manual_seed(0))
    model = build_model("lenet300_100", seed=0).to(device)
    optimizer = make_optimizer(model, TrainConfig(batch_size=batch_size))
    seconds, iterations = [], 0
    with PeakMemory(device) as memory, timed(device, seconds):
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            iterations += 1
    test = datasets.MNIST(str(data_root()), train=False, transform=transform)
    images = torch.stack([test[i][0] for i in range(1000, 2000)]).to(device)
    labels = torch.tensor([test[i][1] for i in range(1000, 2000)], device=device)
    return seconds[0], memory, iterations, evaluate(model, images, labels)[1].item()


def epoch_comparison(args, device, data):
    """Section 1; returns {batch size: (a seconds, b seconds)}."""
    images = len(data.train_y)
    print(f"\n== 1. One epoch of LeNet-300-100 ({images:,} images), dense, Adam 1.2e-3 ==")
    # --smoke: the smallest square size, a couple of times, and a few products of the training's shapes.
    gemm = {"sizes": GEMM_SIZES["cuda" if torch.device(device).type == "cuda" else "cpu"][:1], "repeats": 3} \
        if args.smoke else {}
    shape_repeats = 10 if args.smoke else 200
    before, per_size = matmul_throughput(device, **gemm)
    print("matrix-multiply throughput, float32 A @ B, fastest run: "
          + ", ".join(f"{n}x{n}: {flops / 1e9:.0f} GFLOP/s" for n, flops in per_size.items()))
    print("for the record, the training's own GEMMs: "
          f"60x784 @ 784x300 (fc1 forward): "
          f"{shape_throughput(device, 60, 784, 300, repeats=shape_repeats) / 1e9:.0f} GFLOP/s, "
          f"300x60 @ 60x784 (fc1 weight gradient): "
          f"{shape_throughput(device, 300, 60, 784, repeats=shape_repeats) / 1e9:.0f} GFLOP/s")
    figures = {}
    for batch_size in args.batch_sizes:
        runs_a, runs_b, evals = [], [], []
        for repeat in range(args.repeats):
            seconds, eval_seconds, memory_a, iterations, accuracy_a = lthkit_epoch(data, batch_size, device)
            runs_a.append(seconds)
            evals.append(eval_seconds)
            if not args.skip_dataloader:
                seconds_b, memory_b, iterations_b, accuracy_b = dataloader_epoch(batch_size, device, args.workers,
                                                                                 images)
                runs_b.append(seconds_b)
            gc.collect()
        pruned_seconds, _, memory_p, _, _ = lthkit_epoch(data, batch_size, device, pruned=True)
        figures[batch_size] = (min(runs_a), min(runs_b) if runs_b else math.nan)
        print(f"\nbatch {batch_size}: {iterations} iterations; load average {load_average()}")
        print(f"  (a) lthkit train() steps        {min(runs_a):6.2f} s  {min(runs_a) / iterations * 1e3:6.2f} ms/it  "
              f"runs {' '.join(f'{s:.2f}' for s in runs_a)}  {memory_a.describe()}")
        print(f"      + train()'s own evaluations {min(evals):6.2f} s (start and end: validation, test, "
              f"training accuracy); test accuracy after the epoch {accuracy_a:.4f}")
        print(f"      same, 20% of weights pruned {pruned_seconds:6.2f} s  "
              f"{pruned_seconds / iterations * 1e3:6.2f} ms/it  (masks on gradients and weights; one run)")
        if runs_b:
            print(f"  (b) DataLoader, per-sample ToTensor+Normalize, {args.workers} workers "
                  f"{min(runs_b):6.2f} s  {min(runs_b) / iterations_b * 1e3:6.2f} ms/it  "
                  f"runs {' '.join(f'{s:.2f}' for s in runs_b)}  {memory_b.describe()}; "
                  f"test accuracy after the epoch {accuracy_b:.4f}")
    after, _ = matmul_throughput(device, **gemm)
    throughput = max(before, after)
    bound = FLOPS_PER_WEIGHT_AND_EXAMPLE * LENET_WEIGHTS * images / throughput
    print(f"\n  (c) FLOP bound: 6 x {LENET_WEIGHTS:,} x {images:,} FLOP / {throughput / 1e9:.0f} GFLOP/s "
          f"(best of before {before / 1e9:.0f} and after {after / 1e9:.0f}) = {bound:.3f} s per epoch "
          f"({bound / (images / 60) * 1e3:.3f} ms per batch-60 iteration)")
    needed = sum(FLOPS_PER_WEIGHT_AND_EXAMPLE * weights for weights in (300 * 100, 100 * 10)) + 4 * 784 * 300
    print(f"      (the 6x count includes a gradient for the input images, which no pipeline computes: the "
          f"arithmetic needed is {needed:,} FLOP per example, {needed / (6 * LENET_WEIGHTS):.1%} of it, so a "
          f"ratio below 1 is possible)")
    for batch_size, (seconds_a, seconds_b) in figures.items():
        print(f"  batch {batch_size}: (b)/(a) = {seconds_b / seconds_a:.2f}, (a)/(c) = {seconds_a / bound:.2f}")
    return figures, bound


class Stopwatch:
    """Seconds spent in named functions, by wrapping them for the duration wherever lthkit refers to them.

    :meth:`wrap_everywhere` replaces every reference to the very function object in every loaded
    ``lthkit.*`` module (and in the classes they define, for methods), so the figures stay right when
    code moves between modules. A call made inside another call with the same label (``load``
    calling ``load_result``) is counted once, as part of the outer one.
    """

    def __init__(self, device):
        self.device, self.seconds, self.patches, self.depth = device, {}, [], {}

    def wrap_everywhere(self, function, label: str):
        def wrapper(*args, **kwargs):
            if self.depth.get(label):
                return function(*args, **kwargs)
            self.depth[label] = 1
            spent = []
            try:
                with timed(self.device, spent):
                    return function(*args, **kwargs)
            finally:
                self.depth[label] = 0
                self.seconds[label] = self.seconds.get(label, 0.0) + spent[0]

        self.patches.append((replace_everywhere(function, wrapper), function))

    def restore(self):
        for places, function in reversed(self.patches):
            put_back(places, function)
        self.patches.clear()


def imp_config(args):
    """The IMP curve of sections 2 and 3: the fast preset (``--smoke``: 20 iterations on 500 images)."""
    if not args.smoke:
        return preset("fast", rounds=args.imp_rounds)
    return preset("fast", rounds=args.imp_rounds, train={"iterations": 20, "eval_every": 10},
                              data={"train_size": 500, "validation_size": 200, "test_size": 200})


def imp_curve(args, device):
    """Sections 2 and 3."""
    config = imp_config(args)
    print(f"\n== 2. Fast preset, {config.rounds}-round IMP curve ({config.train.iterations} iterations per round, "
          f"{config.data.train_size:,} training images), through run_experiment with a fresh cache ==")
    began = time.perf_counter()
    data = experiments.get_data(config.data, device)
    print(f"MNIST into memory (once per process, not counted below): {time.perf_counter() - began:.2f} s")
    watch = Stopwatch(device)
    try:
        watch.wrap_everywhere(train_module.train, "train() calls")
        watch.wrap_everywhere(train_module.evaluate, "evaluation")
        for function in (masks_module.magnitude_masks, masks_module.random_masks_like):
            watch.wrap_everywhere(function, "pruning")
        watch.wrap_everywhere(models_module.build_model, "building networks")
        for function in (experiments.DiskStore.save, experiments.DiskStore.load, experiments.DiskStore.load_result,
                         experiments.load_cached):
            watch.wrap_everywhere(function, "cache I/O")
    except BaseException:
        watch.restore()
        raise
    rounds, callback_seconds = [], []

    def after_round(result):
        callback_began = time.perf_counter()
        gc.collect()
        objects = gc.get_objects()
        rounds.append((result.round, result.density, current_memory(device),
                       sum(type(o) is LeNet300100 for o in objects),
                       sum(issubclass(type(o), torch.optim.Optimizer) for o in objects)))
        callback_seconds.append(time.perf_counter() - callback_began)

    try:
        with tempfile.TemporaryDirectory() as cache, PeakMemory(device) as memory:
            wall = []
            with timed(device, wall):
                result = experiments.run_experiment(config, cache_dir=cache, data=data, progress=False,
                                                    on_round=after_round)
    finally:
        watch.restore()
    wall = wall[0] - sum(callback_seconds)  # the memory census is the benchmark's, not lthkit's
    spent = watch.seconds
    steps = spent["train() calls"] - spent.get("evaluation", 0.0)
    outside = wall - steps
    print(f"wall time {wall:.2f} s for {len(result.rounds)} trainings; load average {load_average()}")
    print(f"  training steps          {steps:6.2f} s  {steps / wall:6.1%}")
    print(f"  outside training steps  {outside:6.2f} s  {outside / wall:6.1%}  (goal: under 10%)")
    accounted = 0.0
    for label in ("evaluation", "pruning", "building networks", "cache I/O"):
        accounted += spent.get(label, 0.0)
        print(f"    {label:22s}{spent.get(label, 0.0):6.2f} s  {spent.get(label, 0.0) / wall:6.1%}")
    print(f"    {'the rest':22s}{outside - accounted:6.2f} s  {(outside - accounted) / wall:6.1%}  "
          f"(state copies, progress, Python)")
    print(f"  test accuracy at early stop by round: "
          + " ".join(f"{r.test_acc_early_stop:.4f}" for r in result.rounds))

    print("\n== 3. Memory across the rounds ==")
    what = "GPU memory allocated" if torch.device(device).type == "cuda" else "resident memory"
    for round_index, density, in_use, networks, optimizers in rounds:
        print(f"  after round {round_index} (density {density:.3f}): {what} {mib(in_use)}, "
              f"live LeNet-300-100 networks {networks}, live optimizers {optimizers}")
    later = [in_use for _, _, in_use, _, _ in rounds[1:]]
    growth = max(later) - min(later) if later else 0
    left_alive = max(n + o for _, _, _, n, o in rounds)
    flat = left_alive == 0 and growth < 16 * 2**20
    print(f"  {memory.describe()}; spread over rounds 1-{len(rounds) - 1}: {mib(growth)}; "
          f"networks or optimizers left alive: {left_alive} -> memory {'flat' if flat else 'NOT flat'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_machine_arguments(parser, device="cpu")
    parser.add_argument("--repeats", type=int, default=5, help="runs of (a) and of (b) per batch size (default 5)")
    parser.add_argument("--batch-sizes", default="60,128", help="comma-separated; the first gives the last line")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes for (b) (default 0)")
    parser.add_argument("--imp-rounds", type=int, default=5)
    parser.add_argument("--skip-imp", action="store_true", help="only section 1")
    parser.add_argument("--skip-dataloader", action="store_true", help="no (b); the last line then reads nan")
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.smoke:
        args.repeats, args.imp_rounds = 1, 2
    start(parser, args)
    data = full_epoch_data(args.device, SMOKE_EPOCH_IMAGES if args.smoke else EPOCH_IMAGES)
    figures, bound = epoch_comparison(args, args.device, data)
    del data
    if not args.skip_imp:
        imp_curve(args, args.device)
    print(f"\nload average at the end: {load_average()}")
    seconds_a, seconds_b = figures[args.batch_sizes[0]]
    print(f"speedup_vs_dataloader={seconds_b / seconds_a:.2f} flop_bound_ratio={seconds_a / bound:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
