"""Notebook 4's committed reference runs on rewinding, read back and judged with 95% intervals.

Three runs of LeNet-300-100 (the fast preset's data and budget: 10,000 training images, 1,500 iterations; 7
rounds of 50%, the output layer at 10%), each the ticket and its random re-initialization over the same 5 trials,
made by ``python -m lthkit reproduce`` (the commands are in each folder's ``run_info.json``):

* ``adam-0.03-theta0``: Adam at a large learning rate (0.03, 25 times the paper's), rewinding to θ₀;
* ``adam-0.03-theta200``: the same, rewinding to θ_200 (late rewinding, 13% into training);
* ``adam-0.0012-theta0``: Adam at the paper's rate, rewinding to θ₀ (the small-rate side of Liu et al.'s
  comparison).

Every comparison is paired within a trial (:mod:`lthkit.reporting.comparisons`) and judged against an
expectation written down before the runs: a ticket *beats* its re-initialization when the whole 95% interval of
(ticket − re-init) lies above 0; it is *matching* when the whole interval of (ticket − dense network of its
trial) lies above −0.2 points (the stability study's ``MATCHING_POINTS``).

Example:
    >>> sorted(REFERENCE_RUNS)
    ['large_theta0', 'large_theta_k', 'small_theta0']
    >>> BEATS_REINIT.judge(Interval(1.2, 0.4, 2.0, 5)), MATCHING.judge(Interval(-0.5, -0.9, -0.1, 5))
    ('consistent', 'inconclusive')
"""

from __future__ import annotations

from pathlib import Path

from ..reporting.comparisons import RoundComparison, paired_by_round, versus_dense
from ..reporting.stats import Expectation, Interval, spread  # noqa: F401 - Interval: the docstring's example
from ..reporting.summaries import read_summary_csv
from ..studies.stability import MATCHING_POINTS
from .references import REFERENCE_ROOT

#: Where the runs are committed.
FOLDER = REFERENCE_ROOT / "04_rewinding"
#: name → the folder of its run under :data:`FOLDER`.
REFERENCE_RUNS = {"large_theta0": "adam-0.03-theta0", "large_theta_k": "adam-0.03-theta200",
                  "small_theta0": "adam-0.0012-theta0"}
#: The rewind point of the late-rewinding run, and the two learning rates.
REWIND_K, LARGE_LR, SMALL_LR = 200, 0.03, 0.0012
#: A ticket beats its random re-initialization: ticket − re-init above 0 (points, paired within a trial).
BEATS_REINIT = Expectation("at_least", 0.0)
#: A ticket is matching: at most MATCHING_POINTS below the dense network of its own trial.
MATCHING = Expectation("at_least", 0.0, MATCHING_POINTS)
#: The labels of the comparisons, in the order figures and tables show them.
LABELS = {"theta0_vs_reinit": "θ₀ ticket − its re-init", "theta_k_vs_reinit": f"θ_{REWIND_K} ticket − its re-init",
          "theta0_vs_dense": "θ₀ ticket − dense", "theta_k_vs_dense": f"θ_{REWIND_K} ticket − dense",
          "theta_k_vs_theta0": f"θ_{REWIND_K} ticket − θ₀ ticket",
          "small_vs_reinit": f"lr {SMALL_LR:g}: ticket − re-init", "large_vs_reinit": f"lr {LARGE_LR:g}: ticket − re-init"}


def read_reference_runs(folder=FOLDER) -> dict[str, list[dict]]:
    """``{name: summary rows}`` of the committed runs (:data:`REFERENCE_RUNS`).

    Raises:
        LthkitError: a run's ``summary.csv`` is missing or malformed (named).
    """
    folder = Path(folder)
    return {name: read_summary_csv(folder / sub / "summary.csv") for name, sub in REFERENCE_RUNS.items()}


def comparisons(runs: dict[str, list[dict]]) -> dict[str, list[RoundComparison]]:
    """Every paired comparison the notebook draws, by key of :data:`LABELS`."""
    large, late, small = runs["large_theta0"], runs["large_theta_k"], runs["small_theta0"]
    return {
        "theta0_vs_reinit": paired_by_round(large, large),
        "theta_k_vs_reinit": paired_by_round(late, late),
        "theta0_vs_dense": versus_dense(large),
        "theta_k_vs_dense": versus_dense(late),
        "theta_k_vs_theta0": paired_by_round(late, large, control_b="ticket"),
        "small_vs_reinit": paired_by_round(small, small),
        "large_vs_reinit": paired_by_round(large, large),
    }


def noise_floor(runs: dict[str, list[dict]]) -> float:
    """The largest spread (sample standard deviation, in points) of a run's dense networks over its trials: what
    changing only the seed does. A claimed difference smaller than this is never called consistent."""
    spreads = []
    for rows in runs.values():
        dense = [100 * row["test_acc_early_stop"] for row in rows if row["control"] == "ticket" and row["round"] == 0]
        spreads.append(spread(dense))
    return max(spreads, default=0.0)


def verdicts(compared: dict[str, list[RoundComparison]], floor: float = 0.0) -> dict[str, list[str]]:
    """Per comparison, each round's verdict: beating the re-init (held to the noise ``floor``, in points), or
    matching the dense network."""
    expectation = {"theta0_vs_dense": MATCHING, "theta_k_vs_dense": MATCHING}
    return {key: [expectation.get(key, BEATS_REINIT).judge(c.interval, floor) for c in rounds]
            for key, rounds in compared.items()}


def verdict_table(compared: dict[str, list[RoundComparison]], keys, floor: float = 0.0) -> str:
    """A text table: one row per round, for each comparison its mean [95% interval] in points and its verdict."""
    judged = verdicts(compared, floor)
    keys = list(keys)
    width = 34
    lines = [f"{'weights remaining':>17}  " + "  ".join(f"{LABELS[key]:<{width}}" for key in keys)]
    for index, first in enumerate(compared[keys[0]]):
        cells = [f"{compared[key][index].interval.text(2):<21} {judged[key][index]:<12}" for key in keys]
        lines.append(f"{first.density:>17.1%}  " + "  ".join(f"{cell:<{width}}" for cell in cells))
    return "\n".join(lines)


def rewinding_figure(runs: dict[str, list[dict]], compared: dict[str, list[RoundComparison]]):
    """Two panels: test accuracy of both tickets and their re-inits against weights remaining, the dense network as
    a band (mean and min–max of its trials); and the paired differences with their 95% intervals."""
    import matplotlib.pyplot as plt

    from ..reporting.plots import accuracy_vs_density, paired_differences_plot

    labelled = {"θ₀ ticket": ("large_theta0", "ticket"), "θ₀ ticket's re-init": ("large_theta0", "reinit"),
                f"θ_{REWIND_K} ticket (late rewinding)": ("large_theta_k", "ticket"),
                f"θ_{REWIND_K} ticket's re-init": ("large_theta_k", "reinit")}
    rows = [dict(row, control=label) for label, (name, control) in labelled.items()
            for row in runs[name] if row["control"] == control]
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8), facecolor="white")
    accuracy_vs_density(rows, ax=left, dense=True, legend=False,
                        title=f"Adam at lr {LARGE_LR:g}: test accuracy (mean, min–max of the trials)")
    handles, labels = left.get_legend_handles_labels()
    left.legend(handles, labels, frameon=False, fontsize="small", loc="lower left")
    paired_differences_plot({LABELS[key]: compared[key] for key in ("theta0_vs_reinit", "theta_k_vs_reinit",
                                                                    "theta0_vs_dense", "theta_k_vs_dense")},
                            ax=right, tolerance=MATCHING_POINTS, title="paired within a trial, 95% intervals")
    figure.tight_layout()
    return figure


def liu_figure(compared: dict[str, list[RoundComparison]]):
    """Ticket − re-init at the small and the large learning rate, paired within a trial, with 95% intervals."""
    from ..reporting.plots import paired_differences_plot

    return paired_differences_plot({LABELS[key]: compared[key] for key in ("small_vs_reinit", "large_vs_reinit")},
                                   title="Liu et al.'s comparison: does the ticket beat its re-init?")
