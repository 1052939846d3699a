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
            if config.model == "lenet300_100":
                assert (config.scope, config.layer_rates, config.rewind) == (PAPER.scope, PAPER.layer_rates,
                                                                             PAPER.rewind), name
                assert (config.train.optimizer, config.train.lr, config.train.batch_size) == (
                    PAPER.train.optimizer, PAPER.train.lr, PAPER.train.batch_size), name


def test_unknown_names_are_refused_by_each_reader():
    with pytest.raises(LthkitError, match="unknown preset 'imp'; choose one of paper, fast"):
        preset("imp")  # a notebook's preset is not a command-line preset
    with pytest.raises(LthkitError, match="unknown preset 'nope'"):
        preset_config("nope")
    with pytest.raises(LthkitError, match="bad change to preset 'kata'"):
        preset_config("kata", nosuch=1)
