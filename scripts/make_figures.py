#!/usr/bin/env python
"""Redraw the committed figures that are drawn from committed multi-trial results, without training anything.

* ``notebooks/figures/03_explore.png``: the static figure notebook 3 shows where widgets cannot run (GitHub,
  nbviewer): the dashboard's starting settings (80% of the weights pruned in 5 rounds, the fast preset) for the
  winning ticket, random re-init, random pruning and the ticket with a global threshold, each the mean of the
  trials committed in ``results/notebooks/03_explore/`` with their min–max band, the dense network as a band,
  and a y axis that spans at least 4 points (so that the noise between trials does not fill the figure);
* ``results/stability/**/instability_vs_k.png`` and ``error_along_path.png``: every trial of the committed
  ``stability.csv`` (the error along the path drawn as its rise above the ends, one panel per k);
* ``results/ticket-anatomy/*.png``: the anatomy study's figures from its committed CSVs (supermask.png among them).

The committed runs behind ``03_explore`` are made (resumably, through the cache) by::

    python -m lthkit reproduce --preset fast --sparsity 0.8 --rounds 5 --trials 3 \
        --control ticket,reinit,random_prune --out results/notebooks/03_explore/layer
    python -m lthkit reproduce --preset fast --sparsity 0.8 --rounds 5 --trials 3 --scope global \
        --control ticket --out results/notebooks/03_explore/global

Usage:
    python scripts/make_figures.py            # every figure
    python scripts/make_figures.py explore    # one group: explore, stability or anatomy
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from lthkit.core.files import atomic_write_bytes, figure_png  # noqa: E402
from lthkit.reporting.plots import accuracy_vs_density, error_along_path, instability_vs_k  # noqa: E402
from lthkit.reporting.provenance import read_run_info  # noqa: E402
from lthkit.reporting.summaries import read_summary_csv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = ROOT / "results" / "notebooks" / "03_explore"
EXPLORE_FIGURE = ROOT / "notebooks" / "figures" / "03_explore.png"
#: The y axis of the explore figure spans at least this many points.
MIN_SPAN_POINTS = 4.0


def explore() -> list[Path]:
    """Notebook 3's static figure from ``results/notebooks/03_explore/{layer,global}/summary.csv``."""
    rows = read_summary_csv(EXPLORE / "layer" / "summary.csv")
    rows += [dict(row, control="winning ticket, global threshold")
             for row in read_summary_csv(EXPLORE / "global" / "summary.csv") if row["control"] == "ticket"]
    figure = accuracy_vs_density(rows, dense=True, min_span=MIN_SPAN_POINTS, legend="outside",
                                 title="LeNet-300-100, 80% pruned in 5 rounds (the dashboard's start)")
    figure.set_size_inches(9.6, 4.4)
    figure.tight_layout()
    atomic_write_bytes(EXPLORE_FIGURE, figure_png(figure, dpi=90))
    plt.close(figure)
    return [EXPLORE_FIGURE]


def stability() -> list[Path]:
    """The instability figures of every committed stability folder, from all of its trials."""
    from lthkit.studies.stability import read_rows

    written = []
    for table in sorted((ROOT / "results" / "stability").rglob("stability.csv")):
        folder = table.parent
        rows = read_rows(table)
        info = read_run_info(folder / "run_info.json", "stability")
        model = (info.get("config") or {}).get("model", "the network")
        ks = sorted({row["k"] for row in rows})
        sparsest = max(row["round"] for row in rows)
        figures = {
            "error_along_path.png": error_along_path(
                rows, select=lambda row, ends=(ks[0], ks[-1]), rounds=(0, sparsest): row["k"] in ends
                and row["round"] in rounds,
                title=f"test error along the linear path between two copies, {model}"),
            "instability_vs_k.png": instability_vs_k(rows, threshold=info.get("threshold", 0.02),
                                                     title=f"instability of {model}"),
        }
        for name, figure in figures.items():
            atomic_write_bytes(folder / name, figure_png(figure, dpi=120))
            plt.close(figure)
            written.append(folder / name)
    return written


def anatomy() -> list[Path]:
    """The ticket-anatomy study's figures from its committed ``summary.csv`` and ``supermask.csv``."""
    from lthkit.studies.anatomy import load_study, study_figures

    folder = ROOT / "results" / "ticket-anatomy"
    loaded = load_study(folder)
    if loaded is None:
        return []
    written = []
    for name, png in study_figures(*loaded).items():
        atomic_write_bytes(folder / name, png)
        written.append(folder / name)
    return written


GROUPS = {"explore": explore, "stability": stability, "anatomy": anatomy}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    unknown = [name for name in argv if name not in GROUPS]
    if unknown:
        print(f"make_figures: unknown group {', '.join(unknown)}; choose from {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    for name in argv or GROUPS:
        for path in GROUPS[name]():
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
