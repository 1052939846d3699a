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


def test_notebook_4s_reference_runs_are_read_compared_and_judged(tmp_path):
    """lthkit.course.rewinding on three small reproduce folders: every comparison, its verdicts and its figures."""
    from lthkit.course import rewinding
    from lthkit.reporting.summaries import SUMMARY_COLUMNS

    def write(sub, ticket, reinit):
        folder = tmp_path / sub
        folder.mkdir()
        rows = _rows("ticket", ticket) + _rows("reinit", reinit)
        lines = [",".join(SUMMARY_COLUMNS)] + [
            f"{row['control']},{row['trial']},{row['round']},{row['density']},1000,{row['test_acc_early_stop']},"
            f"{row['test_acc_early_stop']}" for row in rows]
        (folder / "summary.csv").write_text("\n".join(lines) + "\n")

    ahead = [[0.95, 0.955, 0.958], [0.951, 0.957, 0.956], [0.949, 0.954, 0.957]]
    level = [[0.95, 0.951, 0.949], [0.951, 0.950, 0.952], [0.949, 0.951, 0.948]]
    behind = [[0.95, 0.94, 0.93], [0.951, 0.942, 0.931], [0.949, 0.941, 0.929]]
    write("adam-0.03-theta0", level, level)
    write("adam-0.03-theta200", ahead, behind)
    write("adam-0.0012-theta0", ahead, behind)
    runs = rewinding.read_reference_runs(tmp_path)
    compared = rewinding.comparisons(runs)
    assert set(compared) == set(rewinding.LABELS)
    floor = rewinding.noise_floor(runs)
    assert floor == pytest.approx(0.1)  # the dense networks 95.0, 95.1, 94.9
    judged = rewinding.verdicts(compared, floor)
    assert judged["theta_k_vs_reinit"] == ["consistent", "consistent"]
    assert judged["theta0_vs_reinit"] == ["inconclusive", "inconclusive"]  # a tie is no win, however narrow
    assert rewinding.verdicts(compared)["theta0_vs_reinit"][-1] == "consistent"  # ... which only the floor says
    assert judged["theta_k_vs_dense"] == ["consistent", "consistent"]  # above the dense network of each trial
    table = rewinding.verdict_table(compared, ["theta0_vs_reinit", "theta_k_vs_reinit"], floor)
    assert len(table.splitlines()) == 3 and "consistent" in table
    assert len(rewinding.rewinding_figure(runs, compared).axes) == 2
    assert rewinding.liu_figure(compared).axes
    with pytest.raises(LthkitError, match="summary"):
        rewinding.read_reference_runs(tmp_path / "nowhere")


def test_notebook_4s_committed_runs_are_what_the_notebook_says():
    """The folders notebook 4 reads hold the configs its prose names: LeNet, Adam at 0.03 (θ₀ and θ_200) and at the
    paper's 1.2e-3 (θ₀), 7 rounds of 50%, ticket and re-init, trials 0 to 4, the same seeds in every run."""
    import json

    from lthkit.course.rewinding import FOLDER, LARGE_LR, REFERENCE_RUNS, REWIND_K, SMALL_LR, read_reference_runs

    runs = read_reference_runs()
    expected = {"large_theta0": (LARGE_LR, "init", 0), "large_theta_k": (LARGE_LR, "iteration", REWIND_K),
                "small_theta0": (SMALL_LR, "init", 0)}
    for name, folder in REFERENCE_RUNS.items():
        config = json.loads((FOLDER / folder / "run_info.json").read_text())["config"]
        lr, rewind, k = expected[name]
        assert (config["model"], config["train"]["optimizer"], config["train"]["lr"]) == ("lenet300_100", "adam", lr)
        assert (config["rewind"], config["rewind_iteration"], config["rounds"], config["prune_rate"]) == (rewind, k, 7, 0.5)
        assert {(row["control"], row["trial"]) for row in runs[name]} == {(c, t) for c in ("ticket", "reinit")
                                                                         for t in range(5)}
