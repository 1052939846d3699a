"""`python -m lthkit stability`: the CSV (one row per k, sparsity, control, trial, α) and figures; bad input exits 2."""

import json

import pytest

from lthkit.cli import main
from lthkit.cli.stability import STABILITY_OUTPUTS
from lthkit.studies.stability import STABILITY_COLUMNS, read_rows

TINY = ["--validation-size", "200", "--train-size", "none", "--test-size", "none", "--iterations", "40",
        "--lr-milestone", "20", "--lr-milestone", "30",
        "--eval-every", "20", "--batch-size", "32", "--rounds", "1", "--no-progress"]


def test_stability_writes_the_csv_and_figures_and_is_cached(mnist_root, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["stability", "--fast", "--k", "0,20", "--points", "5", "--retrain-k", "10", "--data", str(mnist_root),
            "--cache", str(cache), "--out", str(out), *TINY]
    assert main(argv) == 0
    rows = read_rows(out / "stability.csv")
    assert list(rows[0]) == list(STABILITY_COLUMNS)
    # k ∈ {0, 20} × (dense, ticket, random_prune at round 1) × 1 trial × 5 points
    assert len(rows) == 2 * 3 * 5
    assert {(r["k"], r["control"]) for r in rows} == {(k, c) for k in (0, 20) for c in ("dense", "ticket", "random_prune")}
    assert sorted({r["alpha"] for r in rows}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    retraining = read_rows(out / "retraining.csv")
    assert {r["method"] for r in retraining} == {"finetune", "weight_rewind", "lr_rewind"}
    for name in STABILITY_OUTPUTS:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = (out / "README.md").read_text()
    assert "| dense | 0 | 100.0% | 1 |" in report and "python -m lthkit stability --fast" in report
    assert "learning-rate rewinding matches or beats weight rewinding" in report
    info = json.loads((out / "run_info.json").read_text())
    assert info["ks"] == [0, 20] and info["trainings"] > 0 and info["seconds_per_training"] > 0
    assert "wrote" in capsys.readouterr().out
    before = (out / "stability.csv").read_text()
    assert main(argv) == 0  # from the cache: the same numbers
    assert (out / "stability.csv").read_text() == before


@pytest.mark.parametrize("extra,message", [
    (["--k", "0,5000"], "rewind iteration 5000 is past the training budget of 40 iterations"),
    (["--k", "0,20", "--retrain-k", "40"], "rewind iteration 40 is past the training budget of 40 iterations"),
])
def test_a_k_past_the_budget_is_one_line_and_changes_nothing(mnist_root, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    status = main(["stability", "--fast", "--data", str(mnist_root), "--cache", str(tmp_path / "cache"),
                   "--out", str(out), *TINY, *extra])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("argv,message", [
    (["--k", "a,b"], "expected comma-separated iterations"),
    (["--k", "0,0"], "expected distinct iterations"),
    (["--points", "1"], "must be from 2 to 1001"),
    (["--controls", "dense"], "unknown control 'dense'"),
    (["--threshold", "0"], "must be between 0 and 100 points"),
    (["--retrain-k", "-3"], "must be at least 0"),
    ([], "the following arguments are required: --out"),
])
def test_bad_stability_arguments_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["stability", *argv] + (["--out", "/tmp/never-written"] if argv else []))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
