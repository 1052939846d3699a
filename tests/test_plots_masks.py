"""lthkit.reporting.plots: the figures of one run's masks and the two-panel overlay."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lthkit.core.masks import full_masks, random_masks_like  # noqa: E402
from lthkit.core.models import build_model  # noqa: E402
from lthkit.core.train import TrainConfig  # noqa: E402
from lthkit.errors import LthkitError  # noqa: E402
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lottery  # noqa: E402
from lthkit.reporting.plots import (accuracy_and_early_stop, first_layer_connectivity, input_connectivity,
                                    layer_density_plot)


@pytest.fixture(scope="module")
def run(tiny_data):
    config = LotteryConfig(rounds=3, prune_rate=0.5, train=TrainConfig(iterations=20, eval_every=10, batch_size=32))
    return run_lottery(config, tiny_data, progress=False)


def test_layer_density_plot_draws_each_layer_against_the_whole_network(run):
    ax = layer_density_plot(run).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"fc1", "fc2", "fc3", "whole network"}
    assert np.allclose(lines["fc3"].get_ydata(), [0.9 ** r for r in range(4)], atol=1e-2)  # output layer: 10%/round
    assert np.allclose(lines["fc1"].get_ydata(), [0.5 ** r for r in range(4)], atol=1e-2)
    assert np.allclose(lines["fc1"].get_xdata(), run.densities)
    assert ax.get_yscale() == "log" and ax.get_xlim()[0] > ax.get_xlim()[1]


def test_input_connectivity_counts_surviving_outgoing_weights_per_pixel():
    masks = random_masks_like(full_masks(build_model("lenet300_100")), torch.Generator().manual_seed(0))
    masks["fc1.weight"][:, 5] = False
    counts = input_connectivity(masks)
    assert counts.shape == (28, 28)
    assert np.array_equal(counts.reshape(-1), masks["fc1.weight"].sum(0).numpy())  # oracle: sum over units
    assert counts[0, 5] == 0 and counts.max() <= 300
    with pytest.raises(LthkitError, match="not a fully connected layer over 28x28"):
        input_connectivity(full_masks(build_model("conv2_small")))


def test_first_layer_connectivity_shows_chosen_rounds_on_one_scale(run):
    figure = first_layer_connectivity(run)
    maps = [ax for ax in figure.axes if ax.images]
    assert [ax.get_title().split(":")[0] for ax in maps] == ["round 1", "round 2", "round 3"]
    clims = set()
    for ax, round_index in zip(maps, (1, 2, 3)):
        image, counts = ax.images[0], input_connectivity(run.masks[round_index])
        assert np.allclose(image.get_array(), counts / counts.mean())  # relative to the average pixel
        assert f"average pixel keeps {counts.mean():.0f} of 300" in ax.get_title()
        clims.add(image.get_clim())
    assert len(clims) == 1 and clims.pop()[0] == 0  # one color scale for every map
    assert "average pixel" in figure.axes[-1].get_ylabel()  # the shared colorbar
    assert len([ax for ax in first_layer_connectivity(run, rounds=[-1]).axes if ax.images]) == 1
    with pytest.raises(LthkitError, match="out of range"):
        first_layer_connectivity(run, rounds=[9])


def test_accuracy_and_early_stop_overlays_labelled_runs(run):
    figure = accuracy_and_early_stop({"a": run, "b": [run]}, title="two")
    left, right = figure.axes
    assert [line.get_label() for line in left.get_lines()] == ["a", "b"]
    assert right.get_legend() is None and right.get_ylabel() == "early-stop iteration"
    assert np.allclose(right.get_lines()[0].get_ydata(), run.early_stop_iterations)


def test_nearly_equal_densities_of_overlaid_runs_share_one_tick():
    import matplotlib.pyplot as plt

    from lthkit.reporting.plots import format_density_axis

    _, ax = plt.subplots()
    ax.plot([1.0, 0.731, 0.5], [1, 2, 3])
    ax.plot([1.0, 0.734, 0.5], [1, 2, 3])
    format_density_axis(ax)
    assert list(ax.xaxis.get_major_locator()()) == [1.0, 0.734, 0.5]


def test_overlaid_densities_close_on_a_short_axis_share_one_tick():
    import matplotlib.pyplot as plt

    from lthkit.reporting.plots import format_density_axis

    _, ax = plt.subplots()
    ax.plot([1.0, 0.71, 0.504], [1, 2, 3])     # global, 50% in 2 rounds
    ax.plot([1.0, 0.671, 0.451], [1, 2, 3])    # 55% in 2 rounds
    format_density_axis(ax)
    ticks = list(ax.xaxis.get_major_locator()())
    assert ticks == [1.0, 0.71, 0.504, 0.451], "71% and 67% would overlap on an axis from 100% to 45%"


def test_the_paper_schedule_keeps_every_other_density():
    import matplotlib.pyplot as plt

    from lthkit.reporting.plots import format_density_axis
    from lthkit.studies.paper import PAPER_PM

    _, ax = plt.subplots()
    densities = [percent / 100 for percent in PAPER_PM[:17]]
    ax.plot(densities, range(17))
    format_density_axis(ax)
    assert list(ax.xaxis.get_major_locator()()) == pytest.approx(densities[::2])
