"""lthkit.runs.experiments: the cache (hits, resume, corruption, code version), presets, summaries."""

import os
from pathlib import Path

import pytest
from helpers import strip_seconds

import lthkit
import lthkit.runs.cache
import lthkit.imp.driver as lottery
import lthkit.runs.experiments as experiments
from lthkit.core.files import atomic_write_bytes
from lthkit.core.train import TrainConfig
from lthkit.errors import LthkitError
from lthkit.imp.config import LotteryConfig
from lthkit.reporting.summaries import read_summary_csv, write_summary_csv
from lthkit.runs.cache import DiskStore, cache_entry, load_cached
from lthkit.runs.experiments import run_experiment
from lthkit.runs.presets import preset

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
    monkeypatch.setattr(lthkit.runs.cache, "code_version", lambda: "0.1.0+bugfixed")
    assert load_cached(CONFIG, tmp_path) is None
    assert lthkit.runs.cache.cache_key(CONFIG) != lthkit.runs.cache.cache_key(CONFIG.replace(seed=1))


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


def _edited_copy(tmp_path, module: str, old: str, new: str) -> Path:
    """A copy of the lthkit package with one text edit in ``module`` (a path inside the package)."""
    import shutil

    package = tmp_path / "lthkit"
    if not package.exists():
        shutil.copytree(Path(lthkit.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    path = package / module
    source = path.read_text()
    assert source.count(old) == 1, f"{old!r} is not once in {module}"
    path.write_text(source.replace(old, new))
    return package


def test_the_code_version_covers_computation_not_help_text_or_orchestration(tmp_path):
    """Issue 26: editing a flag's help text, a docstring, a comment or the sweep keeps every cache key;
    editing the training step changes them."""
    from lthkit.runs.cache import code_version

    here = Path(lthkit.__file__).parent
    assert code_version(here) == code_version()
    cases = [("core/train.py", '"help": "examples per iteration (the paper: 60)"',
              '"help": "examples in one training step (the paper: 60)"', False),
             ("imp/config.py", '"help": "pruning rounds after the dense round 0"',
              '"help": "rounds of pruning after the dense round"', False),
             ("core/masks.py", '"""Pruning masks', '"""Pruning masks (edited docstring)', False),
             ("runs/sweep.py", 'CONNECT_TIMEOUT = "3s"', 'CONNECT_TIMEOUT = "4s"', False),
             ("reporting/plots.py", "def accuracy_vs_density(", "def accuracy_vs_density_(", False),
             ("core/train.py", "        loss.backward()\n        return loss.detach()", "        (2 * loss).backward()\n        return loss.detach()", True),
             ("imp/branches/paper.py", '"reinit", inputs.round)', '"re-init", inputs.round)', True)]
    for index, (module, old, new, changes) in enumerate(cases):
        package = _edited_copy(tmp_path / str(index), module, old, new)
        assert (code_version(package) != code_version(here)) == changes, (module, old, new)


def test_computing_modules_are_the_core_and_the_imp_engine():
    from lthkit.runs.cache import computing_modules

    names = {path.relative_to(Path(lthkit.__file__).parent).as_posix() for path in computing_modules()}
    assert {"core/train.py", "core/masks.py", "core/data.py", "core/models.py", "core/batched.py",
            "imp/driver.py", "imp/config.py", "imp/branches/paper.py", "imp/scorers.py",
            "imp/resets.py"} <= names
    assert not {name for name in names if name.split("/")[0] not in ("core", "imp")}


# --- the cache trusts only what it has checked ------------------------------------------------------

def _edit_json(path, change):
    import json

    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set_train(name, value):
    return lambda data: data["train"].__setitem__(name, value)


def _save_tensors(path, tensors):
    import torch

    torch.save(tensors, path)


def _bad_state(entry):
    import torch

    state = torch.load(entry / "round_001.state.pt", weights_only=True)
    state["trained_state"]["fc1.bias"] = torch.zeros(7)
    torch.save(state, entry / "round_001.state.pt")


@pytest.mark.parametrize("damage,reason", [
    (lambda e: _edit_json(e / "round_001.json", lambda d: d.__setitem__("density", "abc")),
     "density must be a number in [0, 1], got 'abc'"),
    (lambda e: _edit_json(e / "round_001.json", _set_train("test_acc_early_stop", None)),
     "train.test_acc_early_stop must be a number in [0, 1], got None"),
    (lambda e: _edit_json(e / "round_001.json", _set_train("early_stop_iteration", "x")),
     "train.early_stop_iteration must be a non-negative integer, got 'x'"),
    (lambda e: _edit_json(e / "round_001.json", lambda d: d.pop("layer_density")),
     "round result has no layer_density"),
    (lambda e: _save_tensors(e / "round_001.masks.pt", {"fc9.weight": __import__("torch").ones(3, dtype=bool)}),
     "mask names ['fc9.weight'], not the model's ['fc1.weight', 'fc2.weight', 'fc3.weight']"),
    (lambda e: _save_tensors(e / "round_001.masks.pt", {name: __import__("torch").ones(3, 3, dtype=bool) for name in
                                                       ("fc1.weight", "fc2.weight", "fc3.weight")}),
     "mask['fc1.weight'] is shape (3, 3), torch.bool; the model needs shape (300, 784), torch.bool"),
    (_bad_state, "trained_state['fc1.bias'] is shape (7,), torch.float32; the model needs shape (300,)"),
])
def test_wrong_content_is_reported_in_one_line_and_recomputed(tiny_data, tmp_path, train_calls, capsys, damage,
                                                              reason):
    first = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    entry = cache_entry(CONFIG, tmp_path)
    damage(entry)
    (entry / "round_002.json").unlink()  # unfinished: resuming reads round 1 in full, state included
    capsys.readouterr()
    again = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert capsys.readouterr().err == f"lthkit: cache entry {entry.name} round 1 is corrupt ({reason}); recomputing it\n"
    assert len(train_calls) == 5  # rounds 1 and 2 again
    assert strip_seconds(again) == strip_seconds(first)


def test_wrong_metrics_never_reach_a_summary(tiny_data, tmp_path, train_calls, capsys):
    first = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    entry = cache_entry(CONFIG, tmp_path)
    _edit_json(entry / "round_002.json", _set_train("test_acc_final", "high"))
    assert load_cached(CONFIG, tmp_path) is None  # a finished-looking entry that is not trusted
    assert "round 2 is corrupt (train.test_acc_final must be a number in [0, 1], got 'high')" in capsys.readouterr().err
    rows = read_summary_csv(write_summary_csv(tmp_path / "s.csv",
                                              [run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data,
                                                              progress=False)]))
    assert [row["test_acc_final"] for row in rows] == [r.test_acc_final for r in first.rounds]


def test_an_entry_folder_replaced_by_a_file_is_recomputed(tiny_data, tmp_path, train_calls, capsys):
    import shutil

    first = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    entry = cache_entry(CONFIG, tmp_path)
    shutil.rmtree(entry)
    entry.write_text("not a folder")
    capsys.readouterr()
    again = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert capsys.readouterr().err == \
        f"lthkit: cache entry {entry.name} round 0 is corrupt (the entry is a file, not a folder); recomputing it\n"
    assert entry.is_dir() and len(train_calls) == 6
    assert strip_seconds(again) == strip_seconds(first)


def test_a_round_file_replaced_by_a_folder_is_recomputed(tiny_data, tmp_path, train_calls, capsys):
    first = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    entry = cache_entry(CONFIG, tmp_path)
    (entry / "round_001.masks.pt").unlink()
    (entry / "round_001.masks.pt").mkdir()
    again = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    err = capsys.readouterr().err
    assert err.startswith(f"lthkit: cache entry {entry.name} round 1 is corrupt (IsADirectoryError: ")
    assert err.count("\n") == 1 and "\x1b" not in err
    assert len(train_calls) == 5 and strip_seconds(again) == strip_seconds(first)


def test_round_zero_without_its_rewind_weights_is_recomputed(tiny_data, tmp_path, train_calls, capsys):
    import torch

    config = CONFIG.replace(rewind="iteration", rewind_iteration=10)
    first = run_experiment(config, cache_dir=tmp_path, data=tiny_data, progress=False)
    entry = cache_entry(config, tmp_path)
    state = torch.load(entry / "round_000.state.pt", weights_only=True)
    torch.save({**state, "rewind_state": None}, entry / "round_000.state.pt")
    (entry / "round_002.json").unlink()
    again = run_experiment(config, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert capsys.readouterr().err == \
        f"lthkit: cache entry {entry.name} round 0 is corrupt (round 0 lacks the rewind weights θ_k); recomputing it\n"
    assert len(train_calls) == 6 and strip_seconds(again) == strip_seconds(first)


# --- nothing on disk before a round is finished; provenance ---------------------------------------

def test_a_run_that_fails_before_its_first_round_leaves_no_entry(tiny_data, tmp_path):
    # The config passes its own checks (55,000 nominal images) but not the 600 images it gets.
    config = LotteryConfig(rounds=1, rewind="iteration", rewind_iteration=50,
                           train=TrainConfig(iterations=None, epochs=1, batch_size=32))
    with pytest.raises(LthkitError, match="past the training budget of 19"):
        run_experiment(config, cache_dir=tmp_path / "cache", data=tiny_data, progress=False)
    assert not cache_entry(config, tmp_path / "cache").exists()
    assert [p for p in (tmp_path / "cache").rglob("*") if p.name != f"{cache_entry(config, tmp_path).name}.lock"] == []
    DiskStore(tmp_path / "never", CONFIG)
    assert not (tmp_path / "never").exists()


def test_each_round_records_its_provenance(tiny_data, tmp_path):
    import json

    import torch

    result = run_experiment(CONFIG, cache_dir=tmp_path, data=tiny_data, progress=False)
    expected = {"code_version": lthkit.runs.cache.code_version(), "torch": torch.__version__, "device": "cpu",
                "threads": torch.get_num_threads()}
    assert [r.provenance for r in result.rounds] == [expected] * 3
    on_disk = json.loads((cache_entry(CONFIG, tmp_path) / "round_001.json").read_text())
    assert on_disk["provenance"] == expected
    assert [r.provenance for r in load_cached(CONFIG, tmp_path).rounds] == [expected] * 3
    assert result.to_dict()["provenance"] == [expected] * 3


# --- two processes on one entry ---------------------------------------------------------------------

_PROCESS = '''
import json, os, sys, time
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from conftest import make_tiny_data
import lthkit.runs.cache as cache_module, lthkit.runs.experiments as experiments, lthkit.imp.driver as lottery
from lthkit.imp.config import LotteryConfig

role, cache, folder = sys.argv[1:4]
config = LotteryConfig.from_dict(json.loads({config!r}))
trained, real_train, real_report = [], lottery.train, cache_module._report


def wait_for(name):
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(folder, name)):
        assert time.monotonic() < deadline, "the other process never got there"
        time.sleep(0.02)


def train(*args, **kwargs):
    if role == "first" and not trained:
        open(os.path.join(folder, "first-holds-the-lock"), "w").close()
        wait_for("second-waits")  # keep the lock until the second process is waiting for it
    trained.append(kwargs.get("description"))
    return real_train(*args, **kwargs)


def report(message):
    real_report(message)
    if "waiting for it" in message:
        open(os.path.join(folder, "second-waits"), "w").close()


lottery.train, cache_module._report = train, report
result = experiments.run_experiment(config, cache_dir=cache, data=make_tiny_data(), progress=False)
print(json.dumps({{"trained": len(trained), "accuracies": result.test_acc_early_stop}}))
'''


def test_a_second_process_waits_for_the_first_and_reads_its_rounds(tmp_path):
    import json
    import subprocess
    import sys
    import time

    script = tmp_path / "process.py"
    script.write_text(_PROCESS.format(tests=os.path.dirname(__file__), config=json.dumps(CONFIG.to_dict())))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.path.dirname(os.path.dirname(experiments.__file__))}

    def start(role):
        return subprocess.Popen([sys.executable, str(script), role, str(tmp_path / "cache"), str(tmp_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    first = start("first")
    try:
        while not (tmp_path / "first-holds-the-lock").exists():
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.05)
        second = start("second")
        out_second, err_second = second.communicate(timeout=240)
        out_first, err_first = first.communicate(timeout=240)
    finally:
        first.kill()
    assert first.returncode == 0 and second.returncode == 0, err_first + err_second
    first_run, second_run = json.loads(out_first), json.loads(out_second)
    assert first_run["trained"] == 3 and second_run["trained"] == 0
    assert second_run["accuracies"] == first_run["accuracies"]
    entry = cache_entry(CONFIG, tmp_path / "cache").name
    assert err_second == f"lthkit: cache entry {entry} is being computed by another process; waiting for it\n"
