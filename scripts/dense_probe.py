#!/usr/bin/env python
"""Probe what sets the dense LeNet-300-100's accuracy under the paper protocol.

Trains the dense network of the `paper` preset (round 0 of `reproduce`, same seeds: same init and
data order) with one thing changed, and writes one CSV row per seed:

* ``standard``: lthkit as the committed run used it (inputs standardized with MNIST's mean and std,
  ``xavier_normal_``; the default inputs are now [0, 1] pixels, so the probe asks for standardized ones);
* ``unit_inputs``: pixels in [0, 1], not standardized;
* ``truncated_init``: Glorot variance from a normal truncated at 2 standard deviations (TensorFlow 1's
  ``glorot_normal_initializer``), drawn from the same seed.

With ``--rounds R`` it runs the winning ticket's whole IMP run (R pruning rounds) instead of the
dense network alone, in its own run cache (``--cache``; the lthkit cache key does not know about the
change made here, so it must never share a cache with normal runs), and writes `summary.csv` rows.

Usage:
    python scripts/dense_probe.py --variant unit_inputs --seeds 5-14 --patience 10000 --out probe.csv
    python scripts/dense_probe.py --variant unit_inputs --seeds 1-1 --rounds 16 --cache /tmp/probe-cache --out imp.csv
    python scripts/dense_probe.py --variant unit_inputs --seeds 1-1 --rounds 16 --cache /tmp/probe-cache \
        --controls ticket,reinit,random_prune --out imp-controls.csv

The committed probes (``--seeds 5-14``, each variant) are in ``results/paper-lenet300/standardized/probes/``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lthkit.core.data import MNIST_MEAN, MNIST_STD, MNISTData, get_data  # noqa: E402
from lthkit.core.models import build_model, truncated_glorot_  # noqa: E402
from lthkit.core.train import train  # noqa: E402
from lthkit.imp.branches import PAPER_CONTROLS as CONTROLS  # noqa: E402
from lthkit.reporting.summaries import write_summary_csv  # noqa: E402
from lthkit.runs.experiments import run_experiment
from lthkit.runs.presets import preset

VARIANTS = ("standard", "unit_inputs", "truncated_init")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--seeds", default="5-14", help="a range FIRST-LAST")
    parser.add_argument("--patience", type=int, default=10000)
    parser.add_argument("--rounds", type=int, help="run the ticket's IMP run with this many pruning rounds")
    parser.add_argument("--cache", type=Path, help="a run cache of its own (required with --rounds)")
    parser.add_argument("--controls", default="ticket",
                        help="with --rounds: comma-separated controls to run (ticket, reinit, random_prune)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    first, last = (int(part) for part in args.seeds.split("-"))
    torch.set_num_threads(1)
    # The variants are changes to the standardized-input protocol the committed run measured.
    config = preset("paper").replace(data={"inputs": "standardized"})
    train_config = dataclasses.replace(config.train, patience=args.patience)
    data = get_data(config.data, device="cpu")
    if args.variant == "unit_inputs":
        data = MNISTData(*(getattr(data, field) * MNIST_STD + MNIST_MEAN if field.endswith("_x") else getattr(data, field)
                           for field in MNISTData.__dataclass_fields__))
    if args.rounds:
        if args.variant == "truncated_init" or not args.cache:
            parser.error("--rounds runs standard or unit_inputs, and needs --cache")
        controls = args.controls.split(",")
        if not set(controls) <= set(CONTROLS):
            parser.error(f"--controls: choose from {', '.join(CONTROLS)}")
        results = [run_experiment(dataclasses.replace(config, rounds=args.rounds, seed=seed, train=train_config,
                                                      control=control),
                                  cache_dir=args.cache, data=data, device="cpu", progress=False)
                   for seed in range(first, last + 1) for control in controls]
        write_summary_csv(args.out, results)
        return 0
    rows = []
    for seed in range(first, last + 1):
        model = build_model(config.model, seed=seed)
        if args.variant == "truncated_init":
            truncated_glorot_(model, seed)
        outcome = train(model, data, train_config, seed=seed, progress=False, description=f"seed {seed}")
        rows.append(dict(variant=args.variant, seed=seed, early_stop_iter=outcome.early_stop_iteration,
                         test_acc_early_stop=outcome.test_acc_early_stop, test_acc_final=outcome.test_acc_final))
        print(rows[-1], flush=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
