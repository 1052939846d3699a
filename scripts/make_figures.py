#!/usr/bin/env python
"""Make the static figure that notebook 3 shows where widgets cannot run (GitHub, nbviewer).

It drives the real dashboard (lthkit.course.dashboard.Dashboard) in full mode, exactly as a learner would:
the winning ticket, random re-init, random pruning, and the ticket with a global threshold, at the
dashboard's starting settings (80% of the weights pruned in 5 rounds). Runs go through the cache,
so a second call only redraws. Writes notebooks/figures/03_explore.png and prints what it drew.

Usage:
    python scripts/make_figures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from lthkit.course.dashboard import Dashboard  # noqa: E402
from lthkit.course.modes import notebook_preset  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "notebooks" / "figures" / "03_explore.png"
RUNS = ({"control": "ticket"}, {"control": "reinit"}, {"control": "random_prune"},
        {"control": "ticket", "scope": "global"})


def main() -> int:
    dashboard = Dashboard(notebook_preset("explore", fast=False), progress=False)
    for values in RUNS:
        for name, value in values.items():
            dashboard.controls[name].value = value
        dashboard.run_button.click()
        if dashboard.errors.outputs:
            print("".join(output["text"] for output in dashboard.errors.outputs), file=sys.stderr)
            return 1
    OUT.parent.mkdir(exist_ok=True)
    dashboard.figure.savefig(OUT, dpi=80, facecolor="white")
    for label, (densities, accuracies) in dashboard.plotted().items():
        points = ", ".join(f"{d:.0%}: {a:.2f}%" for d, a in zip(densities, accuracies))
        print(f"{label}: {points}")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
