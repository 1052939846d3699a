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


def strip_seconds(result):
    rounds = [r.to_dict() for r in result.rounds]
    for r in rounds:
        r["train"].pop("seconds")
    return rounds


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


def _key_in_a_fresh_process(package_parent, config_json) -> str:
    """``cache_key`` of a config, computed by a new interpreter that imports lthkit from ``package_parent``."""
    import subprocess
    import sys

    script = ("import json, lthkit, lthkit.experiments as e, lthkit.lottery as l; "
              f"assert lthkit.__file__.startswith({str(package_parent)!r}), lthkit.__file__; "
              f"print(e.cache_key(l.LotteryConfig.from_dict(json.loads({config_json!r}))))")
    env = {**os.environ, "PYTHONPATH": str(package_parent), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          cwd=package_parent)  # not the repository, whose lthkit would come first
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_code_version_follows_the_source_of_the_modules_the_core_imports(tmp_path):
    """Edit a copy of the package: a core module changes the key, plots.py and widgets.py do not."""
    import json
    import shutil

    package = tmp_path / "lthkit"
    shutil.copytree(os.path.dirname(experiments.__file__), package, ignore=shutil.ignore_patterns("__pycache__"))
    config_json = json.dumps(CONFIG.to_dict())
    original = _key_in_a_fresh_process(tmp_path, config_json)
    assert original == experiments.cache_key(CONFIG)  # the copy is this code
    for module, counts in (("experiments.py", True), ("files.py", True), ("fields.py", True),
                           ("plots.py", False), ("widgets.py", False)):
        source = (package / module).read_text()
        (package / module).write_text(source + "\n# an edit\n")
        changed = _key_in_a_fresh_process(tmp_path, config_json) != original
        (package / module).write_text(source)
        assert changed == counts, f"editing {module} {'left' if counts else 'changed'} the cache key"


def test_core_modules_are_found_from_the_imports():
    names = {path.name for path in experiments.core_modules()}
    assert {"experiments.py", "files.py", "lottery.py", "train.py", "masks.py", "data.py", "models.py",
            "batched.py"} <= names  # batched is imported inside run_lotteries
    assert not names & {"plots.py", "widgets.py", "cli.py", "paper.py", "course.py"}
