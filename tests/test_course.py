"""lthkit.course: the notebooks' presets and fast mode, decided in one place; their reference runs."""

import io

import pytest
import torch

from lthkit.course.modes import NOTEBOOK_PRESETS, describe, fast_mode, notebook_preset
from lthkit.errors import LthkitError


@pytest.mark.parametrize("value, fast", [("1", True), ("yes", True), ("0", False), ("", False), (" TRUE ", True)])
def test_fast_mode_reads_the_environment(monkeypatch, value, fast):
    monkeypatch.setenv("LTHKIT_FAST", value)
    assert fast_mode() is fast


def test_fast_mode_refuses_a_value_it_does_not_understand(monkeypatch):
    monkeypatch.setenv("LTHKIT_FAST", "fats")
    with pytest.raises(LthkitError, match="LTHKIT_FAST='fats' is not understood; use 1 \\(on\\) or 0"):
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
        budget = [mode.train.total_iterations(mode.data.train_count) for mode in (fast, full)]  # iterations or epochs
        assert budget[0] < budget[1], name
        assert fast.rounds <= full.rounds, name
        assert fast.data.train_size is not None and fast.data.train_size <= 5000, name


def test_bad_preset_names_and_changes_are_one_line_errors():
    with pytest.raises(LthkitError, match="unknown notebook preset 'nope'"):
        notebook_preset("nope")
    with pytest.raises(LthkitError, match="bad change"):
        notebook_preset("imp", colour="red")


# --- the notebooks' reference runs -------------------------------------------------------------

from lthkit.core.train import TrainConfig  # noqa: E402
from lthkit.course.references import (CONNECTIVITY_COLUMNS, RECORD_ENV, REFERENCE_COLUMNS, compare_with_reference,
                                      config_hash, read_reference_csv, record_reference)
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lottery  # noqa: E402


@pytest.fixture(scope="module")
def two_runs(tiny_data):
    base = LotteryConfig(rounds=2, train=TrainConfig(iterations=40, eval_every=20, batch_size=32))
    return {label: run_lottery(base.replace(control=control), tiny_data, progress=False)
            for label, control in (("ticket", "ticket"), ("re-init", "reinit"))}


def test_a_recorded_reference_reads_back_what_the_runs_measured(tmp_path, two_runs):
    path = record_reference(two_runs, "02_demo", "runs", tmp_path)
    rows = read_reference_csv(path)
    assert path == tmp_path / "02_demo" / "runs.csv" and list(rows[0]) == list(REFERENCE_COLUMNS)
    assert len(rows) == 2 * 3
    for row in rows:
        result = two_runs[row["run"]]
        round_result = result.rounds[row["round"]]
        assert row["density"] == round_result.density and row["seed"] == result.config.seed
        assert row["test_acc_early_stop"] == round_result.test_acc_early_stop
        assert row["early_stop_iter"] == round_result.early_stop_iteration
        assert row["config_hash"] == config_hash(result.config)
    connectivity = read_reference_csv(path.with_suffix(".connectivity.csv"))
    assert list(connectivity[0]) == list(CONNECTIVITY_COLUMNS) and len(connectivity) == 6
    ticket_last = two_runs["ticket"].masks[-1]["fc1.weight"]
    row = next(r for r in connectivity if r["run"] == "ticket" and r["round"] == 2)
    per_pixel = ticket_last.sum(0).reshape(28, 28).double()  # an independent count of the same thing
    assert row["pixel_mean"] == pytest.approx(float(per_pixel.mean()))
    assert row["pixel_centre"] == pytest.approx(float(per_pixel[8:20, 8:20].mean()))
    assert row["pixel_border"] == pytest.approx(float(torch.cat([per_pixel[:3], per_pixel[-3:]]).mean()))
    assert row["pixel_max"] == int(per_pixel.max())


def test_config_hash_tells_configs_apart_and_ignores_the_code():
    config = LotteryConfig(rounds=2)
    assert config_hash(config) == config_hash(LotteryConfig(rounds=2))
    assert config_hash(config) != config_hash(config.replace(rounds=3))
    assert config_hash(config) != config_hash(config.replace(data={"inputs": "standardized"}))


def test_the_comparison_prints_your_numbers_beside_the_reference(tmp_path, two_runs, tiny_data, monkeypatch):
    monkeypatch.delenv(RECORD_ENV, raising=False)
    record_reference(two_runs, "02_demo", "runs", tmp_path)
    out = io.StringIO()
    compare_with_reference(two_runs, "02_demo", root=tmp_path, out=out)
    text = out.getvalue()
    assert "your configs are the reference's" in text
    line = next(line for line in text.splitlines() if line.split()[:1] == [f"{two_runs['ticket'].rounds[1].density:.1%}"])
    ticket, reinit = (two_runs[label].rounds[1].test_acc_early_stop for label in ("ticket", "re-init"))
    assert line.split()[1:] == [f"{ticket:.2%}"] * 2 + [f"{reinit:.2%}"] * 2  # yours, then the reference's
    # A run of other densities meets the reference only where the densities agree: round 0.
    other = {"ticket": run_lottery(two_runs["ticket"].config.replace(prune_rate=0.5), tiny_data, progress=False)}
    out = io.StringIO()
    compare_with_reference(other, "02_demo", root=tmp_path, out=out)
    text = out.getvalue()
    assert "your configs differ" in text and text.count("·") == 3 + 2  # the whole re-init column, ticket rounds 1–2


def test_recording_writes_the_reference_and_refuses_fast_mode(tmp_path, two_runs, monkeypatch):
    monkeypatch.setenv(RECORD_ENV, str(tmp_path / "recorded"))
    monkeypatch.setenv("LTHKIT_FAST", "0")
    out = io.StringIO()
    compare_with_reference(two_runs, "02_demo", "lenet", root=tmp_path / "recorded", out=out)
    assert (tmp_path / "recorded" / "02_demo" / "lenet.csv").is_file()
    assert "recorded as the reference" in out.getvalue() and "your configs are the reference's" in out.getvalue()
    monkeypatch.setenv("LTHKIT_FAST", "1")
    with pytest.raises(LthkitError, match="full-mode"):
        compare_with_reference(two_runs, "02_demo", "lenet", root=tmp_path / "recorded", out=io.StringIO())


def test_a_missing_or_broken_reference_is_said_in_one_line(tmp_path, two_runs, monkeypatch):
    monkeypatch.delenv(RECORD_ENV, raising=False)
    out = io.StringIO()
    compare_with_reference(two_runs, "02_demo", root=tmp_path, out=out)
    assert out.getvalue().startswith("no reference run recorded at")
    broken = tmp_path / "02_demo" / "runs.csv"
    broken.parent.mkdir()
    broken.write_text(",".join(REFERENCE_COLUMNS) + "\nticket,ticket,zero,0,1.0,20,0.5,0.5,0.1,abc\n")
    with pytest.raises(LthkitError, match=r"line 2: seed is 'zero', not a number"):
        compare_with_reference(two_runs, "02_demo", root=tmp_path, out=io.StringIO())
    broken.write_text(",".join(REFERENCE_COLUMNS) + "\n")
    with pytest.raises(LthkitError, match="holds no rows"):
        read_reference_csv(broken)
