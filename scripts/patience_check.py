#!/usr/bin/env python
"""Check that a patience rule does not move the early-stopping numbers of the paper protocol.

Reads every run cached by `python -m lthkit reproduce ... --patience none` (full 50,000-iteration
budget) in a cache folder, replays the patience rule on each round's validation curve
(:func:`lthkit.studies.paper.patience_effect`) and writes one CSV row per round: where the rule would have
stopped, the early-stopping iteration with and without it, and whether it moved.

Usage:
    python scripts/patience_check.py --cache CACHE --patience 10000 --out results/paper-lenet300/standardized/patience_check.csv

The cache is read directly (the JSON of each finished round), so it works whichever lthkit code
version wrote it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lthkit.studies.paper import patience_effect  # noqa: E402

COLUMNS = ("control", "trial", "round", "density", "iterations_trained", "stop_iteration_with_patience",
           "early_stop_with_patience", "early_stop_full", "moved")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="the cache folder of the reproduce runs")
    parser.add_argument("--patience", type=int, required=True, help="the patience rule to replay, in iterations")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write")
    args = parser.parse_args(argv)
    rows = []
    for entry in sorted(args.cache.iterdir()):
        try:
            config = json.loads((entry / "config.json").read_text())["config"]
        except (OSError, ValueError, KeyError):
            continue
        if config["train"]["patience"] is not None or config["train"]["iterations"] != 50_000:
            continue
        for path in sorted(entry.glob("round_*.json")):
            round_data = json.loads(path.read_text())
            effect = patience_effect(round_data["train"]["curve"], args.patience)
            rows.append({"control": config["control"], "trial": config["seed"], "round": round_data["round"],
                         "density": round_data["density"], "iterations_trained": round_data["train"]["iterations"],
                         "stop_iteration_with_patience": effect["stop_iteration"],
                         "early_stop_with_patience": effect["early_stop_with_patience"],
                         "early_stop_full": effect["early_stop_full"], "moved": effect["moved"]})
    if not rows:
        print(f"patience_check: no full-budget (patience none) runs in {args.cache}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: (r["control"], r["trial"], r["round"])))
    moved = sum(row["moved"] for row in rows)
    print(f"{len(rows)} rounds replayed with patience {args.patience}: the early-stopping iteration moved in {moved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
