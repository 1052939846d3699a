#!/usr/bin/env python
"""When does a ticket beat the dense network? Each exported form's latency against density, as ratios to dense.

The sparsity-speed study (:mod:`lthkit.studies.sparsity_speed`, what ``python -m lthkit speed`` runs)
from a benchmark's side: every ticket of an IMP run of LeNet-300-100 and Conv-2 (trained once, then
read from the run cache) is exported into each form of ``lthkit.export.forms.FORMS`` that runs on the
device, checked against the masked network on the test set, and timed with
``torch.utils.benchmark`` (3 warm-up calls, then ``--min-run-time`` seconds of repeated blocks; median
and interquartile range) at batch 1 and a typical batch, on one thread and on every usable core. It
prints, for each network, batch size and thread count, every form's median latency divided by the dense
network's at each density (below 1: faster), then the crossover densities, and writes the study's
files (``speed.csv``, the figures, a README that names the crossovers) into ``--out``.

Ends with ``lenet_csr_ratio_sparsest=X lenet_compact_ratio_sparsest=Y load_average=...``: LeNet-300-100
at batch 1 on one thread, at the sparsest density (the forms' medians over the dense network's).

``--smoke``: the presets' fast modes (3 and 2 rounds of a few iterations) and 0.02 s per timing, one
thread, batch 1 and 8: it checks that the script works, and its numbers mean nothing. Time the real
thing on a quiet machine: the load average is printed before and after.

Usage:
    python benchmarks/sparsity_speed.py [--out DIR] [--models lenet300_100,conv2] [--batch-sizes 1,64]
                                        [--threads 1,all] [--min-run-time 0.5] [--device cpu] [--smoke]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import add_smoke_argument, describe_machine, load_average  # noqa: E402

from lthkit.cli.speed import _batch_sizes, _seconds, _threads  # noqa: E402
from lthkit.studies.sparsity_speed import NETWORKS, crossovers, run_speed_study, write_study  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the study's files (default: a new "
                                                               "temporary folder, printed; removed after --smoke)")
    parser.add_argument("--models", default=",".join(NETWORKS), help=f"networks (default: {','.join(NETWORKS)})")
    parser.add_argument("--batch-sizes", type=_batch_sizes, default=None, help="default: 1,64 (smoke: 1,8)")
    parser.add_argument("--threads", type=_threads, default=None, help="default: 1,all (smoke: 1)")
    parser.add_argument("--min-run-time", type=_seconds, default=None, help="seconds per timing (default: 0.5)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    add_smoke_argument(parser)
    args = parser.parse_args()
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    out = args.out or Path(tempfile.mkdtemp(prefix="sparsity-speed-"))
    print(f"machine: {describe_machine(args.device)}")
    print(f"command: python {' '.join(sys.argv)}")
    if args.smoke:
        print("--smoke: tiny sizes, every section once; the numbers below mean nothing")
    study = run_speed_study(models, fast=args.smoke, batch_sizes=args.batch_sizes, threads=args.threads,
                            min_run_time=args.min_run_time, device=args.device, progress=False,
                            argv=["python", *sys.argv])
    write_study(out, study)
    rows = study.speed
    dense = {(r["model"], r["round"], r["batch"], r["threads"]): r["median_ms"] for r in rows if r["form"] == "dense"}
    forms = list(dict.fromkeys(r["form"] for r in rows if r["form"] != "dense"))
    for model, batch, threads in dict.fromkeys((r["model"], r["batch"], r["threads"]) for r in rows):
        print(f"{model}, batch {batch}, {threads} thread(s): latency / dense at each density")
        print("  density   dense ms  " + "  ".join(f"{form:>11}" for form in forms))
        for round_index in sorted({r["round"] for r in rows if r["model"] == model}):
            at = {r["form"]: r for r in rows if (r["model"], r["round"], r["batch"], r["threads"]) ==
                  (model, round_index, batch, threads)}
            base = dense[(model, round_index, batch, threads)]
            ratios = "  ".join(f"{at[form]['median_ms'] / base:>11.2f}" if form in at else f"{'':>11}" for form in forms)
            print(f"  {100 * at['dense']['density']:6.2f}%  {base:9.3f}  {ratios}")
    print("crossovers (below this density the form beats dense):")
    for entry in crossovers(rows):
        print(f"  {entry['model']} {entry['form']} batch {entry['batch']} x {entry['threads']} thread(s): "
              f"{entry['text']}; {entry['ratio_sparsest']:.2f} x dense at {100 * entry['sparsest']:.2f}%")
    disagree = sum(not row["agrees"] for row in study.exports)
    print(f"exports checked against the masked network: {len(study.exports)}, outside tolerance: {disagree}")
    if args.smoke and args.out is None:
        shutil.rmtree(out, ignore_errors=True)
        print(f"wrote the study into {out} (and removed it: --smoke without --out)")
    else:
        print(f"wrote the study into {out}")
    ratio = {entry["form"]: entry["ratio_sparsest"] for entry in crossovers(rows)
             if entry["model"] == "lenet300_100" and entry["batch"] == min(r["batch"] for r in rows)
             and entry["threads"] == 1}
    print(f"lenet_csr_ratio_sparsest={ratio.get('csr', float('nan')):.3f} "
          f"lenet_compact_ratio_sparsest={ratio.get('compact', float('nan')):.3f} load_average={load_average()}")
    return 0 if disagree == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
