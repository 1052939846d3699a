"""Round-by-round paired comparisons of ``summary.csv`` rows, each with its 95% interval over trials.

Two IMP runs of the same trials (seeds) are compared *within* a trial, round by round: the ticket
minus its random re-initialization, a ticket rewound to θ_k minus the one rewound to θ₀, or a
ticket minus the dense network of its own trial (round 0, the same θ₀ and data order). What differs
between trials cancels; the mean of the paired differences gets a Student-*t* interval
(:func:`lthkit.reporting.stats.t_interval`), and an :class:`~lthkit.reporting.stats.Expectation`
written down before the run turns it into a verdict.

Example:
    >>> rows = [{"control": "ticket", "trial": t, "round": r, "density": 0.5 ** r, "test_acc_early_stop": a}
    ...         for t, accuracies in enumerate(([0.97, 0.975, 0.97], [0.971, 0.974, 0.968], [0.969, 0.976, 0.969]))
    ...         for r, a in enumerate(accuracies)]
    >>> [(round(c.density, 2), c.interval.text(2)) for c in versus_dense(rows)]
    [(0.5, '0.50 [0.00, 1.00]'), (0.25, '-0.10 [-0.53, 0.33]')]
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LthkitError
from .stats import Expectation, Interval, paired_differences, t_interval


@dataclass(frozen=True)
class RoundComparison:
    """One round's paired comparison.

    Attributes:
        round: the IMP round.
        density: the weights remaining (the mean over trials of the first series).
        interval: the mean paired difference, in percentage points, with its 95% interval.
        differences: ``{trial: difference in points}``.
    """

    round: int
    density: float
    interval: Interval
    differences: dict

    def verdict(self, expectation: Expectation) -> str:
        """``consistent``, ``inconclusive`` or ``inconsistent`` (:meth:`Expectation.judge`)."""
        return expectation.judge(self.interval)


def _table(rows, control: str, metric: str) -> dict[int, dict[int, dict]]:
    """``{round: {trial: row}}`` of one control's rows."""
    table: dict[int, dict[int, dict]] = {}
    for row in rows:
        if row["control"] == control:
            table.setdefault(int(row["round"]), {})[int(row["trial"])] = row
    if not table:
        raise LthkitError(f"the rows hold no control {control!r}")
    return table


def paired_by_round(rows_a, rows_b, *, control_a: str = "ticket", control_b: str = "reinit",
                    metric: str = "test_acc_early_stop", rounds=None) -> list[RoundComparison]:
    """``a − b`` within each trial, round by round, in percentage points.

    Args:
        rows_a, rows_b: ``summary.csv`` rows (the same list twice to compare two controls of one run).
        control_a, control_b: which control of each.
        metric: the compared column (an accuracy).
        rounds: the rounds to compare (default: every round both hold, round 0 left out).

    Returns:
        One :class:`RoundComparison` per round, in round order.

    Raises:
        LthkitError: a control is missing, or the two share no trial in a round.
    """
    table_a, table_b = _table(rows_a, control_a, metric), _table(rows_b, control_b, metric)
    chosen = sorted(set(table_a) & set(table_b) - {0}) if rounds is None else list(rounds)
    compared = []
    for round_index in chosen:
        values = {trial: 100 * row[metric] for trial, row in table_a.get(round_index, {}).items()}
        references = {trial: 100 * row[metric] for trial, row in table_b.get(round_index, {}).items()}
        differences = paired_differences(values, references)
        if not differences:
            raise LthkitError(f"round {round_index}: {control_a} and {control_b} share no trial")
        densities = [table_a[round_index][trial]["density"] for trial in differences]
        compared.append(RoundComparison(round_index, sum(densities) / len(densities), t_interval(list(
            differences.values())), differences))
    return compared


def versus_dense(rows, *, control: str = "ticket", metric: str = "test_acc_early_stop") -> list[RoundComparison]:
    """Each pruned round of ``control`` minus the dense network of its own trial (round 0), in points.

    Raises:
        LthkitError: the control is missing or has no round 0.
    """
    table = _table(rows, control, metric)
    if 0 not in table:
        raise LthkitError(f"{control} has no round 0: no dense network to compare with")
    dense = {trial: 100 * row[metric] for trial, row in table[0].items()}
    compared = []
    for round_index in sorted(set(table) - {0}):
        differences = paired_differences({trial: 100 * row[metric] for trial, row in table[round_index].items()},
                                         dense)
        densities = [table[round_index][trial]["density"] for trial in differences]
        compared.append(RoundComparison(round_index, sum(densities) / len(densities),
                                        t_interval(list(differences.values())), differences))
    return compared
