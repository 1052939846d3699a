#!/usr/bin/env python
"""Is lthkit's hand-written fast path (lthkit.core.fastpath) still faster than torch's public APIs?

One masked LeNet-300-100 training step at batch 60 (half the weights pruned, Adam 1.2e-3 fused),
four ways, on one thread:

* ``public``: autograd, then ``torch.optim.Adam(fused=True).step()`` (``fastpath.ENABLED = False``);
* ``direct_adam``: autograd, then the fused Adam kernel called directly (``FusedAdamStep``);
* ``lenet_pass``: ``LeNetPass`` (no autograd engine), then ``optimizer.step()``;
* ``fast_path``: ``LeNetPass`` and the direct kernel: what ``train()`` runs;
* ``compiled``: ``torch.compile`` of the model and of ``optimizer.step`` (public APIs, Inductor).

Each variant trains its own network on the same synthetic batches; repetitions are interleaved
(variant A, B, C, D, A, B, ...) so that load on the machine hits all of them alike, and the
figure is the fastest repetition's time per step. It prints one ratio per variant against
``public`` (below 1: faster), and whether the kept hand-written code is > 10% faster.

``--smoke``: 20 steps, one repetition, without ``torch.compile`` (a minute of compiling): it checks
that the script works, and its numbers mean nothing.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/fastpath.py [--steps 400] [--repeats 7] [--device cpu] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import add_smoke_argument  # noqa: E402

import lthkit.core.fastpath as fastpath  # noqa: E402
from lthkit.core.masks import full_masks  # noqa: E402
from lthkit.core.models import build_model  # noqa: E402
from lthkit.core.train import MaskedStep, TrainConfig, autograd_pass, make_optimizer  # noqa: E402


def setup(device, compiled=False):
    model = build_model("lenet300_100", seed=0).to(device)
    generator = torch.Generator().manual_seed(1)
    masks = {name: (torch.rand(mask.shape, generator=generator) < 0.5) for name, mask in full_masks(model).items()}
    parameters = dict(model.named_parameters())
    masked = [parameters[name] for name in masks]
    values = [mask.to(device=device, dtype=torch.float32) for mask in masks.values()]
    with torch.no_grad():
        torch._foreach_mul_(masked, values)
    optimizer = make_optimizer(model, TrainConfig())
    if not compiled:
        return model, optimizer, masked, values
    forward = torch.compile(model)
    step = torch.compile(optimizer.step)

    def compiled_step(images, labels):
        loss = F.cross_entropy(forward(images), labels)
        loss.backward()
        with torch.no_grad():
            torch._foreach_mul_([p.grad for p in masked], values)
            step()
            torch._foreach_mul_(masked, values)
        for p in model.parameters():
            p.grad = None
        return loss.detach()
    return compiled_step


def make_variant(name, device):
    """A function ``step(images, labels)`` that trains its own network one step, and whether it runs."""
    if name == "compiled":
        return setup(device, compiled=True)
    model, optimizer, masked, values = setup(device)
    masked_step = MaskedStep(optimizer, masked, values)
    forward_backward = (fastpath.lenet_pass(model) if name in ("lenet_pass", "fast_path") else None) or \
        autograd_pass(model)
    direct = name in ("direct_adam", "fast_path")

    def step(images, labels):
        loss = forward_backward(images, labels)
        # MaskedStep takes the direct kernel or not at its first step, from the switch.
        fastpath.ENABLED = direct
        masked_step()
        fastpath.ENABLED = True
        return loss
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="steps per timed repetition")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repetitions per variant")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    add_smoke_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.repeats, args.no_compile = 20, 1, True
        print("--smoke: tiny sizes, every section once, no torch.compile; the numbers below mean nothing")
    torch.set_num_threads(1)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(6000, 1, 28, 28, generator=generator).to(device)
    labels = torch.randint(0, 10, (6000,), generator=generator).to(device)
    batches = [torch.randint(0, 6000, (60,), generator=generator).to(device) for _ in range(args.steps)]

    names = ["public", "direct_adam", "lenet_pass", "fast_path"] + ([] if args.no_compile else ["compiled"])
    steps, compile_seconds = {}, {}
    for name in names:
        began = time.perf_counter()
        try:
            steps[name] = make_variant(name, device)
            for index in batches[:20]:  # warm-up (and, for torch.compile, compilation)
                steps[name](images[index], labels[index])
            sync()
        except Exception as error:  # e.g. no C++ compiler for Inductor
            print(f"{name}: unavailable ({type(error).__name__}: {str(error).splitlines()[0][:120]})")
            steps.pop(name, None)
        compile_seconds[name] = time.perf_counter() - began
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            sync()
            began = time.perf_counter()
            for index in batches:
                step(images[index], labels[index])
            sync()
            times[name].append((time.perf_counter() - began) / args.steps)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, device {device}, 1 thread, {os.cpu_count()} cores, load average {load:.1f} "
          f"at the end; {args.repeats} interleaved repetitions of {args.steps} steps, fastest shown")
    base = min(times["public"])
    for name, measured in times.items():
        best = min(measured)
        print(f"{name:12s} {best * 1e6:8.1f} µs/step  ratio to public {best / base:5.3f}  "
              f"(all: {', '.join(f'{t * 1e6:.0f}' for t in measured)}; set-up + warm-up {compile_seconds[name]:.1f} s)")
    for name in ("direct_adam", "lenet_pass", "fast_path"):
        gain = 1 - min(times[name]) / base
        print(f"{name}: {gain:.1%} faster than public -> {'keep' if gain > 0.10 else 'not worth it (<= 10%)'}")
    if "compiled" in times:
        print(f"compiled vs fast_path: ratio {min(times['compiled']) / min(times['fast_path']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
