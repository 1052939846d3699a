"""lthkit.course: the notebooks' presets and fast mode, decided in one place."""

import pytest

from lthkit import LthkitError
from lthkit.course import NOTEBOOK_PRESETS, describe, fast_mode, notebook_preset


@pytest.mark.parametrize("value, fast", [("1", True), ("yes", True), ("0", False), ("", False), (" TRUE ", True)])
def test_fast_mode_reads_the_environment(monkeypatch, value, fast):
    monkeypatch.setenv("LTHKIT_FAST", value)
    assert fast_mode() is fast


def test_fast_mode_refuses_a_value_it_does_not_understand(monkeypatch):
    monkeypatch.setenv("LTHKIT_FAST", "fats")
    with pytest.raises(LthkitError, match="LTHKIT_FAST='fats' is not understood"):
        fast_mode()


def test_notebook_presets_follow_the_mode(monkeypatch):
    monkeypatch.delenv("LTHKIT_FAST", raising=False)
    assert notebook_preset("imp") == NOTEBOOK_PRESETS["imp"]["full"]
    monkeypatch.setenv("LTHKIT_FAST", "1")
    fast = notebook_preset("imp")
    assert fast == NOTEBOOK_PRESETS["imp"]["fast"]
    assert "fast mode" in describe(fast)
    assert notebook_preset("imp", fast=False, control="reinit").control == "reinit"


def test_fast_presets_are_smaller_than_full_ones_and_use_real_mnist_subsets():
    for name, modes in NOTEBOOK_PRESETS.items():
        fast, full = modes["fast"], modes["full"]
        assert fast.train.iterations < full.train.iterations, name
        assert fast.rounds <= full.rounds, name
        assert fast.data.train_size is not None and fast.data.train_size <= 5000, name


def test_bad_preset_names_and_changes_are_one_line_errors():
    with pytest.raises(LthkitError, match="unknown notebook preset 'nope'"):
        notebook_preset("nope")
    with pytest.raises(LthkitError, match="bad change"):
        notebook_preset("imp", colour="red")
