"""Round-by-round paired comparisons with 95% intervals (notebook 4's demonstration), against a plain numpy oracle
and a printed t table."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lthkit import LthkitError  # noqa: E402
from lthkit.reporting.comparisons import paired_by_round, versus_dense  # noqa: E402
from lthkit.reporting.plots import paired_differences_plot  # noqa: E402
from lthkit.reporting.stats import Expectation  # noqa: E402

#: Student's t, two-sided 95%, from a printed table: degrees of freedom → quantile.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}


def _rows(control, accuracies):
    """``accuracies[trial][round]`` as summary rows of one control."""
    return [{"control": control, "trial": trial, "round": r, "density": 0.6 ** r, "test_acc_early_stop": accuracy}
            for trial, per_round in enumerate(accuracies) for r, accuracy in enumerate(per_round)]


def test_paired_differences_match_a_plain_t_interval():
    ticket = [[0.97, 0.972, 0.968], [0.965, 0.973, 0.971], [0.968, 0.970, 0.962], [0.971, 0.975, 0.966]]
    reinit = [[0.969, 0.966, 0.955], [0.970, 0.967, 0.958], [0.966, 0.969, 0.951], [0.972, 0.965, 0.957]]
    rows = _rows("ticket", ticket) + _rows("reinit", reinit)
    compared = paired_by_round(rows, rows)
    assert [c.round for c in compared] == [1, 2]
    for c in compared:
        differences = 100 * (np.array(ticket)[:, c.round] - np.array(reinit)[:, c.round])
        mean, sem = differences.mean(), differences.std(ddof=1) / math.sqrt(len(differences))
        assert math.isclose(c.interval.estimate, mean, abs_tol=1e-9)
        assert math.isclose(c.interval.high - mean, T_975[3] * sem, rel_tol=1e-3)
        assert c.density == pytest.approx(0.6 ** c.round)
    assert compared[1].verdict(Expectation("at_least", 0.0)) == "consistent"  # the ticket ahead, in every trial


def test_versus_dense_pairs_each_round_with_its_own_trials_dense_network():
    rows = _rows("ticket", [[0.95, 0.96], [0.97, 0.965]])
    (compared,) = versus_dense(rows)
    assert compared.differences == pytest.approx({0: 1.0, 1: -0.5})
    assert compared.interval.n == 2


def test_bad_rows_are_named_in_one_line():
    rows = _rows("ticket", [[0.95, 0.96]])
    with pytest.raises(LthkitError, match="no control 'reinit'"):
        paired_by_round(rows, rows)
    other = [dict(row, trial=7) for row in _rows("reinit", [[0.95, 0.96]])]
    with pytest.raises(LthkitError, match="share no trial"):
        paired_by_round(rows, other)
    with pytest.raises(LthkitError, match="no round 0"):
        versus_dense([row for row in rows if row["round"]])


def test_the_plot_draws_each_interval_as_a_bar_and_the_matching_band():
    ticket = [[0.97, 0.972, 0.968], [0.965, 0.973, 0.971], [0.968, 0.970, 0.962]]
    rows = _rows("ticket", ticket)
    compared = versus_dense(rows)
    figure = paired_differences_plot({"ticket − dense": compared}, tolerance=0.2)
    ax = figure.axes[0]
    bars = [collection for collection in ax.collections if collection.get_segments()]
    assert len(bars) == 1
    spans = sorted((segment[:, 1].min(), segment[:, 1].max()) for segment in bars[0].get_segments())
    expected = sorted((c.interval.low, c.interval.high) for c in compared)
    assert np.allclose(spans, expected)
    assert any(patch.get_height() == pytest.approx(0.2) for patch in ax.patches)  # the matching band
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # weights remaining fall to the right
