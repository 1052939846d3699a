"""lthkit.runs.presets: one registry for the command line, the notebooks and the dashboard."""

import pytest

from lthkit.course.modes import NOTEBOOK_PRESETS, notebook_preset
from lthkit.errors import LthkitError
from lthkit.runs.presets import CLI_PRESETS, PAPER, PRESETS, preset, preset_config


def test_the_cli_and_the_notebooks_read_the_one_registry():
    assert set(CLI_PRESETS) | set(NOTEBOOK_PRESETS) <= set(PRESETS)
    for name in CLI_PRESETS:
        assert preset(name) == PRESETS[name]["full"]
    for name, modes in NOTEBOOK_PRESETS.items():
        assert modes is PRESETS[name]
        assert notebook_preset(name, fast=True) == PRESETS[name]["fast"]
    assert preset("fast", rounds=2) == preset_config("fast", rounds=2)


def test_every_preset_has_both_modes_and_fast_is_smaller():
    for name, modes in PRESETS.items():
        assert set(modes) == {"full", "fast"}, name
        full, fast = modes["full"], modes["fast"]
        budget = [mode.train.total_iterations(mode.data.train_count) for mode in (fast, full)]  # iterations or epochs
        assert budget[0] <= budget[1] and fast.rounds <= full.rounds, name
        assert (fast.data.train_size or 55_000) <= (full.data.train_size or 55_000), name


def test_lenet_presets_keep_the_papers_rates():
    """The paper's rates are written once (PAPER): every LeNet preset that prunes layer-wise uses them."""
    assert PAPER.prune_rate == 0.2 and PAPER.layer_rates == (("output", 0.1),) and PAPER.scope == "layer"
    for name, modes in PRESETS.items():
        for config in modes.values():
            if config.model == "lenet300_100" and name in FASTER_RATES:
                # A class-sized budget: fewer rounds at higher rates, the output layer still at half the hidden rate.
                assert dict(config.layer_rates)["output"] == config.prune_rate / 2 and config.scope == PAPER.scope
            elif config.model == "lenet300_100" and name not in OTHER_PAPERS:
                assert (config.scope, config.layer_rates, config.rewind) == (PAPER.scope, PAPER.layer_rates,
                                                                             PAPER.rewind), name
                assert (config.train.optimizer, config.train.lr, config.train.batch_size) == (
                    PAPER.train.optimizer, PAPER.train.lr, PAPER.train.batch_size), name


#: Presets that prune faster than the paper to fit a class (notebook 2's IMP kata: 4 rounds of 50%).
FASTER_RATES = {"imp_kata"}
#: Presets that follow another paper's LeNet protocol (checked against that paper below).
OTHER_PAPERS = {"stability_sgd"}


def test_the_sgd_stability_preset_is_frankle_et_al_2020s_lenet_protocol():
    """Table 1 of Frankle et al. 2020: SGD at a constant 0.1, batch 60, 24,000 iterations; IMP to 3.5% of the weights."""
    from lthkit.core.masks import density, full_masks, magnitude_masks, prunable_weights
    from lthkit.core.models import build_model

    config = preset_config("stability_sgd")
    train = config.train
    assert (train.optimizer, train.lr, train.momentum, train.batch_size, train.iterations) == ("sgd", 0.1, 0.0, 60, 24_000)
    assert (train.lr_milestones, train.warmup_iterations, config.rewind, config.scope) == ((), 0, "init", "layer")
    model = build_model(config.model, seed=0)
    weights, masks = prunable_weights(model), full_masks(model)
    for _ in range(config.rounds):
        masks = magnitude_masks(weights, masks, config.prune_rate, scope=config.scope,
                                layer_rates=dict(config.layer_rates))
    assert abs(density(masks) - 0.035) < 0.001


def test_unknown_names_are_refused_by_each_reader():
    with pytest.raises(LthkitError, match="unknown preset 'imp'; choose one of paper, fast"):
        preset("imp")  # a notebook's preset is not a command-line preset
    with pytest.raises(LthkitError, match="unknown preset 'nope'"):
        preset_config("nope")
    with pytest.raises(LthkitError, match="bad change to preset 'kata'"):
        preset_config("kata", nosuch=1)
