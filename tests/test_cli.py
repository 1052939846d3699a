"""The command line: `run` writes JSON, CSV and PNG; bad arguments give one line and exit 2."""

import json
import subprocess
import sys

import pytest

from lthkit.cli import main

# The synthetic files hold 1,200 training images; the fast preset's 10,000-image subset cannot fit.
TINY = ["--validation-size", "200", "--iterations", "30", "--eval-every", "10", "--batch-size", "32",
        "--no-progress"]


def test_run_writes_results(mnist_root, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["run", "--preset", "fast", "--rounds", "2", "--rewind", "init", "--control", "all",
                   "--data", str(mnist_root), "--cache", str(tmp_path / "cache"), "--out", str(out), *TINY, "--train-size", "none"])
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert [run["config"]["control"] for run in results["runs"]] == ["ticket", "reinit", "random_prune"]
    assert all(len(run["rounds"]) == 3 for run in results["runs"])
    assert results["runs"][0]["config"]["train"]["iterations"] == 30
    assert (out / "accuracy_vs_density.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "summary.csv").read_text().splitlines()) == 1 + 9
    assert "wrote" in capsys.readouterr().out


def test_flags_reach_the_config(mnist_root, tmp_path):
    out = tmp_path / "out"
    main(["run", "--rounds", "1", "--sparsity", "0.5", "--scope", "global", "--layer-rate", "fc1=0.3",
          "--rewind", "fraction", "--rewind-fraction", "0.5", "--optimizer", "sgd", "--lr", "0.05",
          "--train-size", "500", "--data", str(mnist_root), "--cache", str(tmp_path / "cache"), "--out", str(out),
          *TINY])
    config = json.loads((out / "results.json").read_text())["runs"][0]["config"]
    assert config["target_sparsity"] == 0.5 and config["prune_rate"] is None and config["scope"] == "global"
    assert config["layer_rates"] == [["fc1", 0.3]] and config["rewind"] == "fraction"
    assert config["train"]["optimizer"] == "sgd" and config["data"]["train_size"] == 500


@pytest.mark.parametrize("argv,message", [
    (["run", "--out", "x", "--rate", "1.5"], "--rate: must be in [0, 1)"),
    (["run", "--out", "x", "--sparsity", "nan"], "--sparsity: must be in [0, 1)"),
    (["run", "--out", "x", "--rounds", "0"], "--rounds: must be at least 1"),
    (["run", "--out", "x", "--rewind", "later"], "invalid choice: 'later'"),
    (["run", "--out", "x", "--layer-rate", "fc1"], "expected NAME=RATE"),
    (["run", "--out", "x", "--rate", "0.2", "--sparsity", "0.5"], "not allowed with argument"),
    (["run"], "the following arguments are required: --out"),
    (["run", "--out", "x", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
])
def test_bad_arguments_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_config_errors_one_line_exit_2(tmp_path, capsys):
    status = main(["run", "--out", str(tmp_path / "o"), "--rewind", "iteration", "--rewind-iteration", "5000",
                   "--iterations", "100"])
    err = capsys.readouterr().err
    assert status == 2 and "past the training budget of 100" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_missing_data_one_line_exit_2(tmp_path, capsys):
    status = main(["data", "--data", str(tmp_path), "--no-download"])
    err = capsys.readouterr().err
    assert status == 2 and "MNIST not found" in err and err.count("\n") == 1


def test_module_entry_point_help_and_exit_codes():
    helped = subprocess.run([sys.executable, "-m", "lthkit", "run", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    for flag in ("--rounds", "--rewind", "--control", "--sparsity", "--lr", "--train-size", "--out"):
        assert flag in helped.stdout
    bare = subprocess.run([sys.executable, "-m", "lthkit"], capture_output=True, text=True)
    assert bare.returncode == 2 and "COMMAND" in bare.stderr


def test_dashboard_serves_the_app_notebook_on_loopback_with_a_token(monkeypatch, capsys):
    import nbformat

    from lthkit.cli import dashboard as cli

    launched = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: launched.append(argv))
    assert main(["dashboard", "--no-browser", "--port", "8123", "--token", "secret"]) == 0
    (argv,) = launched
    assert argv[:3] == [sys.executable, "-m", "voila"] and argv[3] == str(cli.DASHBOARD_APP)
    assert "--Voila.ip=127.0.0.1" in argv and "--token=secret" in argv and "--port=8123" in argv
    assert "--no-browser" in argv and "--VoilaConfiguration.strip_sources=True" in argv
    assert "http://127.0.0.1:8123/?token=secret" in capsys.readouterr().out
    # The app is notebook 3's Dashboard, not a copy: one code cell that makes it.
    code = [cell.source for cell in nbformat.read(cli.DASHBOARD_APP, as_version=4).cells if cell.cell_type == "code"]
    assert len(code) == 1 and "from lthkit import Dashboard" in code[0]


def test_dashboard_bad_port_one_line_exit_2(monkeypatch, capsys):
    from lthkit.cli import dashboard as cli

    monkeypatch.setattr(cli.os, "execv", lambda *args: pytest.fail("started Voilà on a bad port"))
    assert main(["dashboard", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "--port must be in 0..65535" in err and err.count("\n") == 1
