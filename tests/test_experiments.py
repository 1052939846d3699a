"""lthkit.experiments: the cache (hits, resume, corruption, code version), presets, summaries."""

import os

import pytest

import lthkit.experiments as experiments
import lthkit.lottery as lottery
from lthkit import LthkitError
from lthkit.experiments import (DiskStore, cache_entry, load_cached, preset, read_summary_csv, run_experiment,
                                write_summary_csv)
from lthkit.files import atomic_write_bytes
from lthkit.lottery import LotteryConfig
from lthkit.train import TrainConfig

from helpers import strip_seconds

CONFIG = LotteryConfig(rounds=2, train=TrainConfig(iterations=40, eval_every=20, batch_size=32))


class Calls(list):
    """The descriptions of the training calls made; the ``fail_at``-th call raises Ctrl-C."""

    fail_at = None


@pytest.fixture
def train_calls(monkeypatch):
    calls = Calls()
    real = lottery.train

    def counting(*args, **kwargs):
        calls.append(kwargs.get("description"))
        if calls.fail_at == len(calls):
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lottery, "train", counting)
    return calls


def test_finished_config_comes_from_the_cache(tiny_data, tmp_path, train_calls):
    first = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert len(train_calls) == 3
    seen = []
    again = run_experiment(CONFIG, cache_dir=tmp_path, data=None, progress=False, on_round=seen.append)
    assert len(train_calls) == 3, "a cached config trained again"
    assert strip_seconds(again) == strip_seconds(first) and len(seen) == 3


def test_interrupted_run_resumes_after_the_last_finished_round(tiny_data, tmp_path, train_calls):
    train_calls.fail_at = 3  # Ctrl-C during round 2
    with pytest.raises(KeyboardInterrupt):
        run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert DiskStore(cache_entry(CONFIG, tmp_path), CONFIG).finished_rounds() == 2
    train_calls.fail_at = None
    resumed = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert len(train_calls) == 4  # 3 before (one interrupted) + only round 2 again
    uninterrupted = lottery.run_lottery(CONFIG, tiny_data, progress=False)
    assert strip_seconds(resumed) == strip_seconds(uninterrupted)


@pytest.mark.parametrize("damaged", ["round_001.json", "round_001.state.pt", "round_001.masks.pt"])
def test_corrupt_entry_is_reported_and_recomputed(tiny_data, tmp_path, train_calls, capsys, damaged):
    first = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    entry = cache_entry(CONFIG, tmp_path)
    (entry / damaged).write_bytes(b"\x00garbage")
    # Without round 2 the run is unfinished, so resuming must read round 1 in full.
    (entry / "round_002.json").unlink()
    again = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert "round 1 is corrupt" in capsys.readouterr().err
    assert len(train_calls) == 5  # rounds 1 and 2 recomputed (2 was built on 1)
    assert strip_seconds(again) == strip_seconds(first)


def test_corrupt_metrics_of_a_finished_run_are_recomputed(tiny_data, tmp_path, train_calls, capsys):
    first = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    (cache_entry(CONFIG, tmp_path) / "round_002.json").write_text("{not json")
    again = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert "round 2 is corrupt" in capsys.readouterr().err
    assert len(train_calls) == 4
    assert strip_seconds(again) == strip_seconds(first)


def test_cache_key_includes_the_code_version(tiny_data, tmp_path, monkeypatch):
    run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert load_cached(CONFIG, tmp_path) is not None
    monkeypatch.setattr(experiments, "code_version", lambda: "0.1.0+bugfixed")
    assert load_cached(CONFIG, tmp_path) is None
    assert experiments.cache_key(CONFIG) != experiments.cache_key(CONFIG.replace(seed=1))


def test_controls_reuse_the_cached_ticket(tiny_data, tmp_path, train_calls):
    run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    run_experiment(CONFIG.replace(control="random_prune"), cache_dir=tmp_path, data=tiny_data, progress=False)
    assert len(train_calls) == 6  # the ticket's 3 rounds were not trained again


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "file.json"
    atomic_write_bytes(target, b"old")

    def broken_replace(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]  # no temporary left behind


def test_presets():
    paper = preset("paper")
    assert paper.train == TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, iterations=50_000, eval_every=100)
    assert paper.layer_rates == (("output", 0.1),) and paper.per_round_rate == 0.2 and paper.rewind == "init"
    assert paper.data.validation_size == 5000 and paper.scope == "layer"
    assert preset("fast", rounds=3, train={"iterations": 10}).train.iterations == 10
    with pytest.raises(LthkitError, match="unknown preset"):
        preset("slow")
    with pytest.raises(LthkitError, match="bad change"):
        preset("fast", colour="red")


def test_summary_csv_round_trip(tiny_data, tmp_path):
    result = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    path = write_summary_csv(tmp_path / "summary.csv", [result])
    rows = read_summary_csv(path)
    assert path.read_text().splitlines()[0] == \
        "control,trial,round,density,early_stop_iter,test_acc_early_stop,test_acc_final"
    assert [row["round"] for row in rows] == [0, 1, 2]
    assert rows[2]["test_acc_early_stop"] == result.rounds[2].test_acc_early_stop
    (tmp_path / "bad.csv").write_text("control,trial\nticket,0\n")
    with pytest.raises(LthkitError, match="lacks the column"):
        read_summary_csv(tmp_path / "bad.csv")
    with pytest.raises(LthkitError, match="no summary file"):
        read_summary_csv(tmp_path / "none.csv")
