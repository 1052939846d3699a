"""Issue 31, item 7: figures that do not teach noise: a dense reference band, a y axis that does not magnify
noise, legends off the data, no empty negative k, and the error along the path drawn as its rise above the ends."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lthkit.core.paths import error_barrier  # noqa: E402
from lthkit.reporting.plots import (accuracy_and_early_stop, accuracy_vs_density, error_along_path,  # noqa: E402
                                    instability_vs_k, supermask_plot)


def _summary_rows(controls=("ticket", "reinit", "random_prune"), trials=3, rounds=4, seed=0):
    generator = np.random.default_rng(seed)
    rows = []
    for control in controls:
        for trial in range(trials):
            for round_index in range(rounds):
                rows.append({"control": control, "trial": trial, "round": round_index, "density": 0.5 ** round_index,
                             "test_acc_early_stop": 0.96 + 0.002 * generator.standard_normal(),
                             "early_stop_iter": 1000})
    return rows


def _path_rows(seed=0):
    """stability.csv rows: a dense pair at 3% error with a bump, a sparse one at 25% with a smaller bump."""
    generator = np.random.default_rng(seed)
    alphas = np.linspace(0, 1, 11)
    rows = []
    for kind, round_index, density, level, bump in (("dense", 0, 1.0, 0.03, 0.01), ("random_prune", 3, 0.045, 0.25,
                                                                                      0.004)):
        for k in (0, 25, 1000):
            for trial in range(3):
                errors = level + bump * np.sin(np.pi * alphas) / (1 + k) + 0.0005 * generator.standard_normal(11)
                barrier = error_barrier(errors)
                rows += [{"k": k, "round": round_index, "density": density, "control": kind, "trial": trial,
                          "alpha": float(a), "test_error": float(e), "error_barrier": barrier, "stable": barrier < 0.02}
                         for a, e in zip(alphas, errors)]
    return rows


def test_the_dense_network_is_a_band_and_the_y_axis_spans_at_least_min_span():
    rows = _summary_rows()
    figure = accuracy_vs_density(rows, dense=True, min_span=4.0)
    ax = figure.axes[0]
    dense = [100 * row["test_acc_early_stop"] for row in rows if row["control"] == "ticket" and row["round"] == 0]
    band = [patch for patch in ax.patches]  # axhspan draws a polygon patch
    assert len(band) == 1
    bottom, top = band[0].get_y(), band[0].get_y() + band[0].get_height()  # a Rectangle in data units along y
    assert np.isclose(bottom, min(dense)) and np.isclose(top, max(dense))
    line = next(line for line in ax.get_lines() if line.get_label().startswith("dense network"))
    assert np.allclose(line.get_ydata(), np.mean(dense))
    low, high = ax.get_ylim()
    assert high - low >= 4.0 - 1e-9
    assert "3 trials" in line.get_label()


def test_a_legend_of_many_entries_goes_beside_the_plot_and_two_panels_share_one_below():
    rows = _summary_rows(controls=("ticket", "reinit", "random_prune", "a", "b"))
    ax = accuracy_vs_density(rows).axes[0]
    anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
    assert anchor.x0 > 1.0  # right of the axes: it covers no curve
    few = accuracy_vs_density(_summary_rows(controls=("ticket", "reinit"))).axes[0]
    assert few.get_legend() is not None and few.get_legend().get_bbox_to_anchor().transformed(
        few.transAxes.inverted()).x0 <= 0.0  # inside, at matplotlib's best place
    figure = accuracy_and_early_stop(rows)
    assert all(axis.get_legend() is None for axis in figure.axes) and len(figure.legends) == 1


def test_instability_has_no_negative_k_a_tick_per_k_and_a_compact_legend_beside():
    rows = _path_rows()
    ax = instability_vs_k(rows).axes[0]
    left, right = ax.get_xlim()
    assert -25 < left <= 0 < 1000 < right  # inside the linear part of symlog: no negative decade
    zero = ax.transAxes.inverted().transform(ax.transData.transform((0, 0)))[0]
    assert 0 < zero < 0.06  # k = 0 sits at the left edge, with a margin for its marker
    assert list(ax.xaxis.get_major_locator().tick_values(left, right)) == [0, 25, 1000]
    legend = ax.get_legend()
    texts = [text.get_text() for text in legend.get_texts()]
    assert texts == ["dense network", "random pruning", "4.5% left", "stable below 2 points"]
    assert legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted()).x0 > 1.0
    assert ax.get_ylim()[0] == 0


def test_the_path_is_drawn_as_its_rise_above_the_ends_so_small_barriers_stay_visible():
    rows = _path_rows()
    figure = error_along_path(rows, select=lambda row: row["k"] in (0, 1000))
    assert len(figure.axes) == 2 and len(figure.legends) == 1  # one panel per k, one legend under them
    left = figure.axes[0]
    for line in left.get_lines():
        if not line.get_label().startswith(("dense", "random")):
            continue
        kind = "dense" if line.get_label().startswith("dense") else "random_prune"
        members = [row for row in rows if row["control"] == kind and row["k"] == 0]
        barriers = {row["trial"]: row["error_barrier"] for row in members}
        curve = line.get_ydata()
        assert abs(curve[0] + curve[-1]) / 2 < 0.05  # starts and ends at the ends' mean
        # The highest point of the mean curve is at most the mean barrier (each trial's peak is its barrier).
        assert curve.max() <= 100 * np.mean(list(barriers.values())) + 1e-9
        assert curve.max() > 0.2  # a 0.4-point bump stays visible beside a 25%-error network
    raw = error_along_path(rows, select=lambda row: row["k"] == 0, relative=False).axes[0]
    assert raw.get_ylabel() == "test error (%)" and max(line.get_ydata().max() for line in raw.get_lines()) > 20


def test_the_supermask_figure_names_criteria_by_their_labels_in_one_legend_below():
    rows = [{"criterion": criterion, "weights": weights, "trial": trial, "round": r, "density": 0.5 ** r,
             "test_acc": 0.1 + 0.1 * r} for criterion in ("large_final", "random") for weights in ("theta0", "sign_constant")
            for trial in range(2) for r in range(3)]
    figure = supermask_plot(rows)
    assert all(axis.get_legend() is None for axis in figure.axes) and len(figure.legends) == 1
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["large final (2 trials)", "random (2 trials)", "chance (10 classes)"]


@pytest.mark.parametrize("group", ["stability", "anatomy"])
def test_make_figures_redraws_the_committed_figures_from_the_committed_csvs(group, tmp_path, monkeypatch):
    import importlib.util
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_figures", root / "scripts" / "make_figures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = {"stability": "results/stability", "anatomy": "results/ticket-anatomy"}[group]
    shutil.copytree(root / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.png"))
    monkeypatch.setattr(script, "ROOT", tmp_path)
    written = script.GROUPS[group]()
    assert written and all(path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in written)
