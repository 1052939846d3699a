"""Every failed command changes nothing: bad input gives exit 2, one stderr line, and the disk as it was.

Each case snapshots the folders a command could touch (paths, modes and contents) before and after.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lthkit.cli import main
from lthkit.core import files
from lthkit.core.files import atomic_write_bytes, atomic_write_files
from lthkit.errors import LthkitError


def snapshot(*roots) -> dict:
    """Every path under ``roots`` (the roots included) with its kind, mode and content."""
    state = {}
    for root in map(Path, roots):
        paths = [root, *sorted(root.rglob("*"))] if root.exists() else []
        for path in paths:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if path.is_symlink():
                state[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                state[str(path)] = ("dir", mode)
            elif not path.is_file():  # a FIFO: reading it would block
                state[str(path)] = ("special", stat.S_IFMT(path.lstat().st_mode), mode)
            else:
                state[str(path)] = ("file", mode, path.read_bytes())
    return state


def one_error_line(capsys, *needles) -> str:
    """The single stderr line of a failed command; it must hold every needle and no traceback."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


# --- lthkit.core.files: modes, sets, orphaned temporaries ----------------------------------------------

def test_new_files_get_the_users_umask(tmp_path, umask_027):
    atomic_write_bytes(tmp_path / "new.json", b"{}")
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
    open(tmp_path / "plain", "w").close()  # the oracle: what open() gives under the same umask
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o640


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o664])
def test_an_existing_file_keeps_its_mode(tmp_path, mode):
    target = tmp_path / "README.md"
    target.write_text("old")
    target.chmod(mode)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == mode


def test_files_are_written_as_a_set(tmp_path, monkeypatch):
    (tmp_path / "a.json").write_text("old a")
    real = files._write_temporary
    calls = []

    def fail_on_the_second(path, payload, umask):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, payload, umask)

    monkeypatch.setattr(files, "_write_temporary", fail_on_the_second)
    before = snapshot(tmp_path)
    with pytest.raises(OSError, match="No space"):
        atomic_write_files({tmp_path / "a.json": b"new a", tmp_path / "sub" / "b.csv": b"new b"})
    assert snapshot(tmp_path) == before, "the first file was not replaced, no temporary or folder is left"


def test_a_target_that_is_a_folder_is_refused_before_writing(tmp_path):
    (tmp_path / "summary.csv").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(LthkitError, match="summary.csv: it is a folder"):
        atomic_write_files({tmp_path / "results.json": b"{}", tmp_path / "summary.csv": b""})
    assert snapshot(tmp_path) == before


def test_temporaries_orphaned_by_kill_9_are_removed_by_the_next_write(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    orphan = tmp_path / f".results.json.{writer.pid}.k3x9_a.tmp"
    orphan.write_bytes(b"half a file")
    writer.kill()  # SIGKILL: the writer had no chance to clean up
    writer.wait()
    live = tmp_path / f".summary.csv.{os.getppid()}.q8z1_b.tmp"  # a running writer's file stays
    live.write_bytes(b"being written")
    atomic_write_bytes(tmp_path / "results.json", b"{}")
    assert not orphan.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["results.json", live.name])



def test_a_writer_killed_mid_write_leaves_a_temporary_the_next_write_removes(tmp_path):
    # A real writer, stopped for good between writing its temporary file and renaming it.
    script = ("import os, sys, time; sys.path.insert(0, sys.argv[2]); import lthkit.core.files as files; "
              "os.replace = lambda *a: time.sleep(60); files.atomic_write_bytes(sys.argv[1], b'half')")
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "results.json"),
                               str(Path(files.__file__).resolve().parent.parent)])
    try:
        for _ in range(600):
            if list(tmp_path.glob(".results.json.*.tmp")):
                break
            assert writer.poll() is None, "the writer ended before writing"
            time.sleep(0.05)
        [orphan] = list(tmp_path.glob(".results.json.*.tmp"))
        assert f".{writer.pid}." in orphan.name
    finally:
        writer.kill()
        writer.wait()
    atomic_write_bytes(tmp_path / "summary.csv", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]

# --- run and reproduce: --out and --cache are checked before any work starts -------------------------

TINY = ["--validation-size", "200", "--iterations", "20", "--eval-every", "10", "--batch-size", "32",
        "--no-progress", "--train-size", "none"]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a command gets as far as training (or loading data)."""
    import lthkit.runs.experiments
    import lthkit.studies.paper

    def refuse(*args, **kwargs):
        raise AssertionError("the command started work before checking its folders")

    monkeypatch.setattr(lthkit.runs.experiments, "run_experiments", refuse)
    monkeypatch.setattr(lthkit.studies.paper, "run_experiments", refuse)
    monkeypatch.setattr(lthkit.runs.experiments, "get_data", refuse)


def unusable_folders(tmp_path):
    """(flag, value, expected message) cases; tmp_path/existing is a file, tmp_path/taken holds folders."""
    (tmp_path / "existing").write_text("keep me")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "summary.csv").mkdir()
    return [
        ("--out", "/etc/passwd/x", "--out /etc/passwd/x: /etc/passwd is a file, not a folder"),
        ("--out", str(tmp_path / "existing"), f"{tmp_path / 'existing'} is a file, not a folder"),
        ("--out", str(tmp_path / "existing" / "deeper"), f"{tmp_path / 'existing'} is a file, not a folder"),
        ("--out", str(tmp_path / "taken"), f"{tmp_path / 'taken' / 'summary.csv'} is a folder"),
        ("--out", "/proc/lthkit-nowhere/out", "--out /proc/lthkit-nowhere/out: cannot write in /proc"),
        ("--cache", str(tmp_path / "existing"), f"--cache {tmp_path / 'existing'}: "),
        ("--cache", "/proc/lthkit-cache", "cannot write in /proc"),
    ]


@pytest.mark.parametrize("command", ["run", "reproduce"])
@pytest.mark.parametrize("case", range(7))
def test_unusable_out_or_cache_is_refused_before_any_work(command, case, tmp_path, mnist_root, no_training, capsys):
    flag, value, message = unusable_folders(tmp_path)[case]
    paths = {"--out": str(tmp_path / "out"), "--cache": str(tmp_path / "cache"), flag: value}
    before = snapshot(tmp_path)
    status = main([command, "--data", str(mnist_root), "--out", paths["--out"], "--cache", paths["--cache"],
                   "--rounds", "1", *TINY])
    assert status == 2
    one_error_line(capsys, f"lthkit {command}: error: ", message)
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway (the /proc case covers it)")
def test_read_only_out_folder_is_refused(tmp_path, no_training, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    before = snapshot(tmp_path)
    assert main(["run", "--out", str(locked / "out"), "--cache", str(tmp_path / "cache"), *TINY]) == 2
    one_error_line(capsys, f"cannot write in {locked}")
    assert snapshot(tmp_path) == before


def test_data_that_is_a_file_is_refused_before_any_work(tmp_path, no_training, capsys):
    (tmp_path / "mnist.gz").write_bytes(b"not a folder")
    before = snapshot(tmp_path)
    assert main(["run", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
                 "--data", str(tmp_path / "mnist.gz"), *TINY]) == 2
    one_error_line(capsys, f"--data {tmp_path / 'mnist.gz'} is a file, not a folder")
    assert snapshot(tmp_path) == before


def test_run_outputs_are_one_set(tmp_path, mnist_root, monkeypatch, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["run", "--data", str(mnist_root), "--cache", str(cache), "--out", str(out), "--rounds", "1", *TINY]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["accuracy_vs_density.png", "results.json", "summary.csv"]
    before = snapshot(out)
    real = files._write_temporary
    written = []

    def disk_full_at_the_plot(path, payload, umask):
        if path.name.endswith(".png"):
            raise OSError(28, "No space left on device", str(path))
        written.append(path)
        return real(path, payload, umask)

    monkeypatch.setattr(files, "_write_temporary", disk_full_at_the_plot)
    capsys.readouterr()
    assert main([*argv[:-len(TINY)], "--seed", "1", *TINY]) == 2  # a new result, so new files to write
    one_error_line(capsys, "lthkit run: error: No space left on device", "accuracy_vs_density.png")
    assert [p.name for p in written if p.parent == out] == ["results.json", "summary.csv"], "the first two were staged, then the plot failed"
    assert snapshot(out) == before, "results.json and summary.csv still describe the old run"


def test_a_failed_run_into_a_new_folder_leaves_no_folder(tmp_path, mnist_root, monkeypatch, capsys):
    def disk_full(path, payload, umask):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(files, "_write_temporary", disk_full)
    out = tmp_path / "new" / "out"
    assert main(["run", "--data", str(mnist_root), "--cache", str(tmp_path / "cache"), "--out", str(out),
                 "--rounds", "1", *TINY]) == 2
    one_error_line(capsys, "No space left on device")
    assert not (tmp_path / "new").exists()


# --- paper-report ---------------------------------------------------------------------------------

def summary_text(rows=None) -> str:
    from lthkit.reporting.summaries import SUMMARY_COLUMNS
    from tests.test_paper import rows_like_the_paper

    rows = rows_like_the_paper(2) if rows is None else rows
    return "\n".join([",".join(SUMMARY_COLUMNS)] + [",".join(str(row[c]) for c in SUMMARY_COLUMNS)
                                                   for row in rows]) + "\n"


HEADER = "control,trial,round,density,early_stop_iter,test_acc_early_stop,test_acc_final\n"
BAD_SUMMARIES = {
    "binary": (bytes(range(256)) * 8, "is not a text CSV file"),
    "binary with a valid header": (HEADER.encode() + b"\x89PNG\r\n\x1a\n\xff\xfe", "is not a text CSV file"),
    "header only": (HEADER.encode(), "has a header but no rows"),
    "empty": (b"", "lacks the column(s) control, trial"),
    "density 0": ((HEADER + "ticket,0,0,0,100,0.9,0.9\n").encode(), "line 2: density '0' must be in (0, 1]"),
    "density below 0": ((HEADER + "ticket,0,0,-0.5,100,0.9,0.9\n").encode(), "density '-0.5' must be in (0, 1]"),
    "density nan": ((HEADER + "ticket,0,0,nan,100,0.9,0.9\n").encode(), "density 'nan' must be in (0, 1]"),
    "density above 1": ((HEADER + "ticket,0,0,1.5,100,0.9,0.9\n").encode(), "density '1.5' must be in (0, 1]"),
    "accuracy inf": ((HEADER + "ticket,0,0,1.0,100,inf,0.9\n").encode(), "test_acc_early_stop 'inf' must be"),
    "non-numeric trial": ((HEADER + "ticket,abc,0,1.0,100,0.9,0.9\n").encode(), "trial 'abc' is not a number"),
    "float round": ((HEADER + "ticket,0,0.5,1.0,100,0.9,0.9\n").encode(), "round '0.5' is not a number"),
    "negative iteration": ((HEADER + "ticket,0,0,1.0,-3,0.9,0.9\n").encode(), "early_stop_iter '-3' must be at least 0"),
    "empty cell": ((HEADER + "ticket,0,0,1.0,,0.9,0.9\n").encode(), "early_stop_iter '' is not a number"),
    "short row": ((HEADER + "ticket,0,0,1.0\n").encode(), "line 2 has 4 cells, the header has 7"),
    "long row": ((HEADER + "ticket,0,0,1.0,100,0.9,0.9,7\n").encode(), "line 2 has 8 cells, the header has 7"),
    "missing column": (b"control,trial,round,density\nticket,0,0,1.0\n", "lacks the column(s) early_stop_iter"),
    "unknown control": ((HEADER + "lucky,0,0,1.0,100,0.9,0.9\n").encode(), "line 2: unknown control 'lucky'"),
    "repeated round": ((HEADER + "ticket,0,0,1.0,100,0.9,0.9\nticket,0,0,1.0,200,0.9,0.9\n").encode(),
                       "line 3 repeats control ticket, trial 0, round 0 (first on line 2)"),
    "NUL in a cell": ((HEADER + "ticket,0,0,1.0,1\x0000,0.9,0.9\n").encode(), "is not a text CSV file"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUMMARIES))
def test_paper_report_rejects_a_bad_summary_in_one_line(case, tmp_path, capsys):
    payload, message = BAD_SUMMARIES[case]
    (tmp_path / "summary.csv").write_bytes(payload)
    (tmp_path / "README.md").write_text("# Report\n")
    before = snapshot(tmp_path)
    assert main(["paper-report", str(tmp_path)]) == 2
    one_error_line(capsys, "lthkit paper-report: error: ", message)
    assert snapshot(tmp_path) == before


def test_paper_report_folder_cases(tmp_path, capsys):
    cases = []
    (tmp_path / "summary-folder" / "summary.csv").mkdir(parents=True)
    cases.append((tmp_path / "summary-folder", "summary.csv is a folder, not a summary CSV file"))
    (tmp_path / "readme-folder" / "README.md").mkdir(parents=True)
    (tmp_path / "readme-folder" / "summary.csv").write_text(summary_text())
    cases.append((tmp_path / "readme-folder", "README.md is a folder, not the report file"))
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "summary.csv").write_text(summary_text())
    (tmp_path / "latin1" / "README.md").write_bytes("# Résumé\n".encode("latin-1"))
    cases.append((tmp_path / "latin1", "README.md is not UTF-8 text"))
    (tmp_path / "a-file").write_text("x")
    cases.append((tmp_path / "a-file", "a-file is a file; expected a folder written by `reproduce`"))
    cases.append((tmp_path / "nowhere", "nowhere does not exist"))
    cases.append((tmp_path / "empty-folder", "no summary file at"))
    (tmp_path / "empty-folder").mkdir()
    for directory, message in cases:
        before = snapshot(tmp_path)
        assert main(["paper-report", str(directory)]) == 2, directory
        one_error_line(capsys, message)
        assert snapshot(tmp_path) == before, directory


def test_paper_report_dense_early_stop_at_iteration_0_is_a_result(tmp_path, capsys):
    from tests.test_paper import rows_like_the_paper

    rows = rows_like_the_paper(2)
    for row in rows:
        if row["control"] == "ticket" and row["round"] == 0 and row["trial"] == 0:
            row["early_stop_iter"] = 0  # iteration 0 is evaluated, so it can be the best
    (tmp_path / "summary.csv").write_text(summary_text(rows))
    assert main(["paper-report", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "| the dense network's test accuracy at early stop | ≈ 98% |" in text
    assert "| 0 | 100.0 | 98.03 [98.00, 98.05] | 2,500 [0, 5,000] |" in text
    # Only trial 1 has a dense early stop to compare with: 3,000 at P_m 21.1% vs 5,000 is 40% earlier.
    assert "| 38% earlier | §2, Results | 40% earlier (no interval from 1 value) | 1 |" in text
    claims = {row["claim_id"]: row for row in csv.DictReader(io.StringIO((tmp_path / "claims.csv").read_text()))}
    assert claims["earlier_by_38"]["n"] == "1" and claims["earlier_by_38"]["verdict"] == "inconclusive"


def test_paper_report_keeps_the_readme_mode(tmp_path, umask_027):
    (tmp_path / "summary.csv").write_text(summary_text())
    readme = tmp_path / "README.md"
    readme.write_text("# Report\n")
    readme.chmod(0o644)
    assert main(["paper-report", str(tmp_path)]) == 0
    assert stat.S_IMODE(readme.stat().st_mode) == 0o644 and "<!-- claims:begin -->" in readme.read_text()


# --- data: nothing created by a failed look, damaged idx files named ------------------------------

@pytest.fixture
def failing_download(monkeypatch):
    """torchvision's download, offline: it writes half a file, then the network fails."""
    import urllib.error

    import torchvision.datasets.mnist as tv_mnist

    def download(url, download_root, filename=None, md5=None, **kwargs):
        Path(download_root, filename or url.rsplit("/", 1)[-1]).write_bytes(b"\x1f\x8b half")
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", download)


def test_a_failed_download_creates_no_folders(tmp_path, monkeypatch, failing_download, capsys):
    monkeypatch.setenv("LTHKIT_DATA", str(tmp_path / "nonexistent"))
    before = snapshot(tmp_path)
    assert main(["data"]) == 2
    one_error_line(capsys, f"MNIST not found in {tmp_path / 'nonexistent' / 'MNIST' / 'raw'}", "download failed")
    assert snapshot(tmp_path) == before and not (tmp_path / "nonexistent").exists()


def test_a_failed_download_into_an_existing_folder_removes_its_partial_files(mnist_root, failing_download, capsys):
    (mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    before = snapshot(mnist_root)
    assert main(["data", "--data", str(mnist_root)]) == 2
    one_error_line(capsys, "MNIST not found", "download failed")
    assert snapshot(mnist_root) == before


def test_looking_without_download_creates_nothing(tmp_path, capsys):
    assert main(["data", "--data", str(tmp_path / "absent"), "--no-download"]) == 2
    one_error_line(capsys, "MNIST not found")
    assert list(tmp_path.iterdir()) == []


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[:-100])


def _bad_magic(path: Path):
    path.write_bytes(b"\x00\x00\x08\x01" + path.read_bytes()[4:])


def _header_only(path: Path):
    path.write_bytes(path.read_bytes()[:6])


def _fewer_labels(path: Path):
    payload = path.read_bytes()
    path.write_bytes(payload[:4] + (1199).to_bytes(4, "big") + payload[8:-1])


DAMAGES = {
    "truncated images": ("train-images-idx3-ubyte", _truncate, "is damaged: truncated: 940,716 bytes where its "
                                                               "header (1,200 images) needs 940,816"),
    "bad magic": ("train-images-idx3-ubyte", _bad_magic, "is damaged: bad magic number 0x00000801"),
    "header cut": ("t10k-labels-idx1-ubyte", _header_only, "is damaged: its header is cut short (6 of 8 bytes)"),
    "too long": ("t10k-labels-idx1-ubyte", lambda p: p.write_bytes(p.read_bytes() + b"\0"), "is damaged: too long"),
    "count mismatch": ("train-labels-idx1-ubyte", _fewer_labels,
                       "train-images-idx3-ubyte holds 1,200 images but train-labels-idx1-ubyte 1,199 labels"),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_a_damaged_idx_file_is_named(case, mnist_root, capsys):
    name, damage, message = DAMAGES[case]
    damage(mnist_root / "MNIST" / "raw" / name)
    before = snapshot(mnist_root)
    assert main(["data", "--data", str(mnist_root), "--no-download"]) == 2
    err = one_error_line(capsys, "lthkit data: error: ", message)
    assert "not found" not in err
    if case != "count mismatch":
        assert f"MNIST file {mnist_root / 'MNIST' / 'raw' / name} is damaged" in err
    assert snapshot(mnist_root) == before


def test_a_data_root_that_is_a_file(tmp_path, capsys):
    (tmp_path / "mnist").write_text("x")
    before = snapshot(tmp_path)
    assert main(["data", "--data", str(tmp_path / "mnist")]) == 2
    one_error_line(capsys, f"the MNIST folder {tmp_path / 'mnist'} is a file, not a folder")
    assert snapshot(tmp_path) == before


# --- the kata reference functions: everything checked first, nothing changed on error ------------------

def model_snapshot(model) -> dict:
    """Parameters, buffers and pruning hooks of ``model``, to compare before and after a call."""
    from torch.nn.utils import prune

    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "parameters": [name for name, _ in model.named_parameters()],
            "hooks": {name: sorted(type(h).__name__ for h in m._forward_pre_hooks.values()
                                   if isinstance(h, prune.BasePruningMethod))
                      for name, m in model.named_modules()},
            "attributes": {name: sorted(k for k in vars(m) if k.startswith("weight"))
                           for name, m in model.named_modules()}}


def assert_same_model(before, after):
    assert before["parameters"] == after["parameters"] and before["hooks"] == after["hooks"]
    assert before["attributes"] == after["attributes"]
    assert before["state"].keys() == after["state"].keys()
    for key in before["state"]:
        assert torch.equal(before["state"][key], after["state"][key]), key


def lenet_and_theta0(pruned_once: bool):
    from lthkit.core.models import build_model
    from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step

    model = build_model("lenet300_100", seed=0)
    theta0 = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)  # "trained"
    if pruned_once:
        find_winning_ticket_step(model, theta0, 0.2)
    return model, theta0


TICKET_STEP_BAD_THETA0 = {
    "wrong-shaped bias": (lambda t: dict(t, **{"fc1.bias": torch.zeros(7)}),
                          "initial_state_dict['fc1.bias'] has shape (7,), the model's bias has (300,)"),
    "bias not a tensor": (lambda t: dict(t, **{"fc2.bias": [0.0] * 100}),
                          "initial_state_dict['fc2.bias'] is a list, not a tensor"),
    "complex bias": (lambda t: dict(t, **{"fc2.bias": torch.zeros(100, dtype=torch.complex64)}),
                     "initial_state_dict['fc2.bias'] is a complex tensor"),
    "weight not a tensor": (lambda t: dict(t, **{"fc1.weight": t["fc1.weight"].tolist()}),
                            "initial_state_dict['fc1.weight'] is a list, not a tensor"),
    "missing weight": (lambda t: {k: v for k, v in t.items() if k != "fc3.weight"},
                       "initial_state_dict has no entry 'fc3.weight'"),
    "a pruned model's state_dict": (
        lambda t: {(k + "_orig" if k.endswith("weight") else k): v for k, v in t.items()},
        "looks like the state_dict of a pruned model"),
    "not a dict": (lambda t: list(t.values()), "initial_state_dict must be a dict of tensors, got list"),
}


@pytest.mark.parametrize("pruned_once", [False, True], ids=["fresh", "pruned once"])
@pytest.mark.parametrize("case", sorted(TICKET_STEP_BAD_THETA0))
def test_find_winning_ticket_step_changes_nothing_on_bad_theta0(case, pruned_once):
    from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step

    model, theta0 = lenet_and_theta0(pruned_once)
    bad_theta0, message = TICKET_STEP_BAD_THETA0[case]
    bad = bad_theta0(theta0)
    bad_copy = copy.deepcopy(bad)
    before = model_snapshot(model)
    with pytest.raises(LthkitError) as error:
        find_winning_ticket_step(model, bad, 0.2)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert_same_model(before, model_snapshot(model))
    assert type(bad) is type(bad_copy) and len(bad) == len(bad_copy), "the argument was not changed either"


def test_find_winning_ticket_step_rejects_a_non_module():
    from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step

    with pytest.raises(LthkitError, match="model must be a torch.nn.Module, got dict"):
        find_winning_ticket_step({"fc1.weight": torch.zeros(2, 2)}, {}, 0.2)


REWIND_BAD_INPUTS = {
    "mask is a list": (lambda t, m: (t, dict(m, **{"fc1.weight": m["fc1.weight"].tolist()})),
                       "masks['fc1.weight'] is a list, not a tensor"),
    "mask of the wrong shape": (lambda t, m: (t, dict(m, **{"fc2.weight": torch.ones(3, 3, dtype=torch.bool)})),
                                "masks['fc2.weight'] has shape (3, 3), the parameter has (100, 300)"),
    "mask for no parameter": (lambda t, m: (t, dict(m, **{"fc9.weight": torch.ones(1)})),
                              "masks has an entry 'fc9.weight', which is not a parameter"),
    "wrong-shaped bias": (lambda t, m: (dict(t, **{"fc3.bias": torch.zeros(3)}), m),
                          "initial_state_dict['fc3.bias'] has shape (3,), the parameter has (10,)"),
    "missing bias": (lambda t, m: ({k: v for k, v in t.items() if k != "fc1.bias"}, m),
                     "initial_state_dict['fc1.bias'] is missing; the parameter has shape (300,)"),
    "bias not a tensor": (lambda t, m: (dict(t, **{"fc1.bias": 0.0}), m),
                          "initial_state_dict['fc1.bias'] is a float, not a tensor"),
}


@pytest.mark.parametrize("case", sorted(REWIND_BAD_INPUTS))
def test_rewind_to_init_changes_nothing_on_bad_input(case):
    from lthkit.core.masks import from_torch_prune
    from lthkit.grading.katas.rewind_to_init.reference import rewind_to_init

    model, theta0 = lenet_and_theta0(pruned_once=True)  # with pruning hooks, which a good call removes
    masks = from_torch_prune(model)
    make_bad, message = REWIND_BAD_INPUTS[case]
    bad_theta0, bad_masks = make_bad(theta0, masks)
    before = model_snapshot(model)
    with pytest.raises(LthkitError) as error:
        rewind_to_init(model, bad_theta0, bad_masks)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert_same_model(before, model_snapshot(model))


# --- other bad input to the commands ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "reproduce"])
@pytest.mark.parametrize("trials,message", [("abc", "expected a whole number, got 'abc'"),
                                            ("0", "must be from 1 to 1000"), ("10000000000", "must be from 1 to 1000")])
def test_trials_out_of_range_is_a_usage_error(command, trials, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--out", str(tmp_path / "out"), "--trials", trials])
    assert exit_info.value.code == 2
    err = one_error_line(capsys, f"argument --trials: {message}")
    assert "_trials" not in err
    assert list(tmp_path.iterdir()) == []


def test_paper_report_on_a_fifo_does_not_block(tmp_path, capsys):
    os.mkfifo(tmp_path / "summary.csv")
    before = snapshot(tmp_path)
    assert main(["paper-report", str(tmp_path)]) == 2
    one_error_line(capsys, f"{tmp_path / 'summary.csv'} is not a regular file")
    assert snapshot(tmp_path) == before


def test_paper_report_on_a_readme_fifo_does_not_block(tmp_path, capsys):
    (tmp_path / "summary.csv").write_text(summary_text())
    os.mkfifo(tmp_path / "README.md")
    before = snapshot(tmp_path)
    assert main(["paper-report", str(tmp_path)]) == 2
    one_error_line(capsys, f"{tmp_path / 'README.md'} is not a regular file")
    assert snapshot(tmp_path) == before


def test_paper_report_that_cannot_write_its_readme(tmp_path, monkeypatch, capsys):
    (tmp_path / "summary.csv").write_text(summary_text())
    (tmp_path / "README.md").write_text("# Report\n")

    def read_only(path, payload, umask):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files, "_write_temporary", read_only)
    before = snapshot(tmp_path)
    assert main(["paper-report", str(tmp_path)]) == 2
    one_error_line(capsys, f"cannot write {tmp_path / 'README.md'} (Permission denied)")
    assert snapshot(tmp_path) == before


def test_reproduce_outputs_are_one_set_and_keep_the_readme_mode(tmp_path, mnist_root, monkeypatch, capsys):
    out = tmp_path / "paper"
    out.mkdir()
    (out / "README.md").write_text("# My report\n\nprose\n")
    (out / "README.md").chmod(0o644)
    argv = ["reproduce", "--trials", "1", "--rounds", "1", "--control", "ticket", "--data", str(mnist_root),
            "--cache", str(tmp_path / "cache"), "--out", str(out), *TINY]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", "summary.csv", "claims.csv", "run_info.json",
                                                             "accuracy_vs_density.png", "early_stop_vs_density.png"])
    readme = (out / "README.md").read_text()
    assert readme.startswith("# My report\n\nprose\n") and "| 0 | 100.0 |" in readme
    assert stat.S_IMODE((out / "README.md").stat().st_mode) == 0o644
    before = snapshot(out)
    real = files._write_temporary

    def disk_full_at_the_readme(path, payload, umask):
        if path.name == "README.md":
            raise OSError(28, "No space left on device", str(path))
        return real(path, payload, umask)

    monkeypatch.setattr(files, "_write_temporary", disk_full_at_the_readme)
    capsys.readouterr()
    assert main([*argv[:-len(TINY)], "--seed", "5", *TINY]) == 2
    one_error_line(capsys, "lthkit reproduce: error: No space left on device", "README.md")
    assert snapshot(out) == before, "summary, figures and run_info.json still describe the first run"
