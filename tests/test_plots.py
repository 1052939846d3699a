"""lthkit.reporting.plots: figures carry the plotted data, from results or from summary.csv rows."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lthkit.core.train import TrainConfig  # noqa: E402
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lottery  # noqa: E402
from lthkit.reporting.plots import accuracy_vs_density, early_stop_vs_density, summary_series  # noqa: E402
from lthkit.reporting.summaries import read_summary_csv, write_summary_csv  # noqa: E402


@pytest.fixture(scope="module")
def runs(tiny_data):
    config = LotteryConfig(rounds=2, train=TrainConfig(iterations=30, eval_every=10, batch_size=32))
    tickets = [run_lottery(config.replace(seed=seed), tiny_data, progress=False) for seed in (0, 1)]
    reinit = run_lottery(config.replace(control="reinit"), tiny_data, ticket=tickets[0], progress=False)
    return tickets, reinit


def test_accuracy_plot_draws_means_and_bands(runs):
    tickets, reinit = runs
    figure = accuracy_vs_density([*tickets, reinit])
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"winning ticket (2 trials)", "random re-init"}
    expected = np.mean([[r.test_acc_early_stop * 100 for r in t.rounds] for t in tickets], axis=0)
    assert np.allclose(lines["winning ticket (2 trials)"].get_ydata(), expected)
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] > ax.get_xlim()[1]  # density falls to the right
    assert len(ax.collections) == 1  # one min/max band, for the group with several trials
    assert "%" in ax.get_ylabel() and ax.get_xlabel()


def test_plots_from_summary_rows_match_plots_from_results(runs, tmp_path):
    tickets, reinit = runs
    rows = read_summary_csv(write_summary_csv(tmp_path / "s.csv", [*tickets, reinit]))
    from_rows = summary_series(rows, "early_stop_iter")
    from_results = summary_series([*tickets, reinit], "early_stop_iter")
    for label in from_results:
        assert np.allclose(from_rows[label][0], from_results[label][0])
        assert np.array_equal(from_rows[label][1], from_results[label][1])
    figure = early_stop_vs_density(rows)
    assert figure.axes[0].get_ylabel() == "early-stop iteration"


def test_custom_labels_and_given_axes(runs):
    import matplotlib.pyplot as plt

    tickets, _ = runs
    figure, ax = plt.subplots()
    assert accuracy_vs_density({"mine": tickets}, ax=ax) is figure
    assert ax.get_lines()[0].get_label() == "mine (2 trials)"
