"""Issue 30: the sparsity-speed study (lthkit.studies.sparsity_speed) and `python -m lthkit speed`: every ticket
exported, checked and timed; crossovers as intervals; the report rewritten from the CSVs; one-line errors for bad
flags (hypothesis), nothing written."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lthkit.cli import main
from lthkit.core.data import DataConfig
from lthkit.core.masks import full_masks, magnitude_masks, prunable_weights
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig
from lthkit.imp.config import LotteryConfig
from lthkit.runs.presets import PRESETS
from lthkit.studies import study_of
from lthkit.studies.sparsity_speed import (
    CSV_FILES,
    OUTPUTS,
    SpeedStudy,
    crossovers,
    load_speed_study,
    measure_ticket,
    read_rows,
    report_text,
    size_crossovers,
    write_report,
    write_study,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def timing_rows(form_ms: dict, spread: float = 0.05) -> list[dict]:
    """speed.csv rows of one setting: ``{density: {form: median ms}}``, quartiles ± spread."""
    return [{"model": "m", "round": index, "density": density, "form": form, "device": "cpu", "batch": 1,
             "threads": 1, "median_ms": ms, "q1_ms": ms * (1 - spread), "q3_ms": ms * (1 + spread)}
            for index, (density, forms) in enumerate(sorted(form_ms.items(), reverse=True))
            for form, ms in forms.items()]


@pytest.mark.parametrize("csr_ms,text", [
    ({1.0: 3.0, 0.5: 2.0, 0.2: 0.8, 0.05: 0.3}, "between 20.0% and 50.0%"),
    ({1.0: 3.0, 0.5: 2.0, 0.2: 1.02, 0.05: 0.3}, "between 5.0% and 20.0%"),  # a tie at 20%: not a win
    ({1.0: 3.0, 0.5: 0.5, 0.2: 2.0, 0.05: 0.3}, "between 5.0% and 20.0%"),  # a win at 50% above a loss does not count
    ({1.0: 0.5, 0.5: 0.5, 0.2: 0.5, 0.05: 0.3}, "at every density measured (up to 100.0%)"),
    ({1.0: 3.0, 0.5: 2.0, 0.2: 2.0, 0.05: 1.5}, "never (not at 5.0%, the sparsest measured)"),
])
def test_the_crossover_is_where_the_run_of_wins_reaching_the_sparsest_density_begins(csr_ms, text):
    rows = timing_rows({density: {"dense": 1.0, "csr": ms} for density, ms in csr_ms.items()})
    (entry,) = crossovers(rows)
    assert entry["text"] == text and entry["form"] == "csr" and entry["baseline"] == "dense"
    assert entry["ratio_sparsest"] == pytest.approx(csr_ms[0.05])


def test_file_size_crossovers():
    rows = [{"model": "m", "round": index, "density": density, "format": name, "bytes": size}
            for index, (density, sizes) in enumerate([(1.0, (100, 90, 150, 95)), (0.3, (100, 60, 45, 40)),
                                                      (0.1, (100, 30, 15, 12))])
            for name, size in zip(("dense", "dense_compressed", "sparse", "sparse_compressed"), sizes)]
    found = {(entry["sparse"], entry["dense"]): entry["text"] for entry in size_crossovers(rows)}
    assert found[("sparse", "dense")] == "between 30.0% and 100.0%"
    assert found[("sparse", "dense_compressed")] == "between 30.0% and 100.0%"
    assert found[("sparse_compressed", "dense_compressed")] == "between 30.0% and 100.0%"


def ticket_study(tiny_data) -> SpeedStudy:
    """Two tickets of a LeNet (dense, and pruned to about 3%), each exported, checked and timed briefly."""
    model = build_model("lenet300_100", seed=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    study = SpeedStudy(info={"forms": ["dense", "compact", "csr", "compact_csr"], "batch_sizes": [1, 4],
                             "threads": [1], "mode": "full", "tolerances": {"float32": {"rtol": 1e-4, "atol": 1e-4}}})
    masks = full_masks(model)
    for round_index in (0, 1):
        found = measure_ticket("lenet300_100", round_index, model, masks, tiny_data, batch_sizes=(1, 4),
                               threads=(1,), min_run_time=0.005)
        for key, rows in found.rows().items():
            study.rows()[key].extend(rows)
        masks = magnitude_masks(prunable_weights(model), masks, 0.97, scope="layer")
    return study


def test_measure_ticket_exports_checks_and_times_every_form(tiny_data):
    study = ticket_study(tiny_data)
    assert {row["form"] for row in study.exports} == {"dense", "compact", "csr", "compact_csr"}
    assert all(row["agrees"] and row["predictions_differ"] == 0 for row in study.exports)
    assert all(row["test_images"] == len(tiny_data.test_y) for row in study.exports)
    assert len(study.speed) == 2 * 4 * 2  # tickets x forms x batch sizes
    assert all(0 < row["q1_ms"] <= row["median_ms"] <= row["q3_ms"] for row in study.speed)
    sparse = [row for row in study.exports if row["round"] == 1]
    by_form = {row["form"]: row["stored_weights"] for row in sparse}
    assert by_form["csr"] < by_form["compact"] <= by_form["dense"] == 266_200
    (first, second) = study.two_four
    assert first["density_two_four"] == pytest.approx(0.5) and second["density_two_four"] <= second["density"]
    assert first["change_low"] <= first["change"] <= first["change_high"]
    assert {row["layer"] for row in study.structure} == {"fc1", "fc2", "fc3"}


def test_the_csvs_read_back_and_the_report_and_figures_are_rewritten_from_them(tiny_data, tmp_path):
    study = ticket_study(tiny_data)
    study.info.update({"command": "python -m lthkit speed", "not_measured": "no GPU here"})
    write_study(tmp_path, study)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(OUTPUTS)
    assert study_of(tmp_path).name == "sparsity_speed"
    loaded = load_speed_study(tmp_path)
    for name in CSV_FILES:
        assert len(loaded.rows()[name]) == len(study.rows()[name]), name
    assert loaded.speed[0]["median_ms"] == pytest.approx(study.speed[0]["median_ms"])
    assert isinstance(loaded.exports[0]["agrees"], bool) and isinstance(loaded.speed[0]["batch"], int)
    readme = (tmp_path / "README.md").read_text()
    for heading in ("## Crossover densities", "## Every export agrees", "## 2:4 re-pruning", "## What the compact",
                    "## The ticket on disk", "**GPU forms not measured**"):
        assert heading in readme
    assert report_text(loaded) == readme.rstrip("\n") + "\n" or report_text(loaded) in readme
    (tmp_path / "README.md").write_text(readme + "\n<!-- notes:begin -->\nmeasured on a quiet machine\n"
                                                 "<!-- notes:end -->\n")
    (tmp_path / "speed_vs_density.png").unlink()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "speed_vs_density.png").is_file()
    assert "measured on a quiet machine" in (tmp_path / "README.md").read_text()
    assert write_report(tmp_path) == tmp_path / "README.md"


def test_a_broken_csv_is_refused_in_one_line(tmp_path):
    (tmp_path / "speed.csv").write_text("model,round,density\nlenet,zero,1.0\n")
    with pytest.raises(Exception, match="is not a results CSV of lthkit.studies.sparsity_speed") as raised:
        read_rows(tmp_path / "speed.csv")
    assert "\n" not in str(raised.value)


# --- the command line ---------------------------------------------------------------------------

def _run(argv: list[str]) -> tuple[int, str, str, list[str]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "data").mkdir()
        argv = ["speed", "--out", str(root / "out"), "--cache", str(root / "cache"), "--data", str(root / "data"),
                "--no-progress", *argv]
        stderr, stdout = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            try:
                status = main(argv)
            except SystemExit as exit_info:
                status = exit_info.code
        left = sorted(path.name for path in root.iterdir())
    return status, stderr.getvalue(), stdout.getvalue(), left


def _assert_refused(argv, words) -> None:
    status, err, _, left = _run(argv)
    assert status == 2, (argv, status, err)
    assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert any(word in err for word in words), (argv, err)
    assert left == ["data"], (argv, left)


@SETTINGS
@given(value=st.one_of(st.integers(-5, 0).map(str), st.integers(65_537, 10 ** 9).map(str),
                       st.sampled_from(["", "x", "1,1", "1.5", "64,", ",", "1;64", "nan"])))
def test_bad_batch_sizes_are_refused(value):
    if value in ("64,",):  # a trailing comma is a fine list
        return
    _assert_refused(["--batch-sizes", value], ["--batch-sizes"])


@SETTINGS
@given(value=st.one_of(st.integers(-5, 0).map(str), st.integers(4097, 10 ** 6).map(str),
                       st.sampled_from(["", "every", "1,1", "all,all", "0.5", "-1"])))
def test_bad_thread_counts_are_refused(value):
    _assert_refused(["--threads", value], ["--threads"])


@SETTINGS
@given(value=st.one_of(st.floats(max_value=0.0, allow_nan=False).map(repr), st.floats(min_value=60.001).map(repr),
                       st.sampled_from(["nan", "inf", "soon", ""])))
def test_bad_run_times_are_refused(value):
    _assert_refused(["--min-run-time", value], ["--min-run-time"])


@SETTINGS
@given(name=st.text(min_size=1, max_size=12).filter(lambda text: text.strip() and text != "all" and "," not in text
                                                    and text.strip() not in ("lenet300_100", "conv2")))
def test_unknown_networks_and_forms_are_refused(name):
    _assert_refused(["--models", name], ["--models"])
    if name.strip() not in ("dense", "compact", "csr", "compact_csr", "dense_fp16", "two_four"):
        _assert_refused(["--forms", name], ["--forms"])


def test_a_form_the_device_has_no_kernel_for_is_refused_in_one_line():
    _assert_refused(["--forms", "two_four", "--device", "cpu"], ["runs on cuda, not cpu"])
    if not torch.cuda.is_available():
        _assert_refused(["--device", "cuda"], ["--device cuda", "no CUDA device"])


def test_out_is_required_unless_preparing():
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        assert main(["speed", "--fast"]) == 2
    assert "--out is required" in stderr.getvalue() and stderr.getvalue().count("\n") == 1


def test_the_command_measures_writes_and_prepares(mnist_root, tmp_path, monkeypatch):
    """End to end on MNIST-format files (synthetic, small): a tiny fast preset, prepared, then measured."""
    tiny = LotteryConfig(rounds=2, prune_rate=0.8, scope="layer", layer_rates=(("output", 0.1),),
                         train=TrainConfig(iterations=20, eval_every=10, batch_size=30),
                         data=DataConfig(validation_size=200, train_size=600, test_size=120))
    monkeypatch.setitem(PRESETS["sparsity_lenet"], "fast", tiny)
    common = ["--fast", "--models", "lenet300_100", "--data", str(mnist_root), "--cache", str(tmp_path / "cache"),
              "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        assert main(["speed", "--prepare", *common]) == 0
    assert "are in the cache" in out.getvalue() and not (tmp_path / "results").exists()
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        assert main(["speed", *common, "--batch-sizes", "1,3", "--out", str(tmp_path / "results")]) == 0
    printed = out.getvalue()
    assert printed.startswith("GPU forms not measured: ") or torch.cuda.is_available()
    assert "every export agrees with the masked network within tolerance: yes" in printed
    study = load_speed_study(tmp_path / "results")
    assert sorted({row["round"] for row in study.speed}) == [0, 1, 2]
    assert {row["batch"] for row in study.speed} == {1, 3}
    assert study.info["study"] == "sparsity_speed" and study.info["load_average_before"] is not None
    assert all(row["test_images"] == 120 for row in study.exports)
