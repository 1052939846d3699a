"""Issue 25: every flag is checked against what it refers to, property-based (hypothesis).

For generated bad values of the command line's flags (numbers out of range or not numbers at all,
fractions outside [0, 1), unknown choices and layer names, sizes past what MNIST holds, a batch
larger than the training set, a milestone past the budget, a flag given twice with different
values), the command exits 2 with one stderr line that names the flag, prints no traceback, and
creates nothing: no output folder, no cache folder. The data folder given is empty, so a bad value
that slipped through would fail later on the missing data, with a message that does not name the
flag, and the test would say so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lthkit.cli import main
from lthkit.core.data import MNIST_TEST_IMAGES, MNIST_TRAIN_IMAGES, DataConfig
from lthkit.core.train import TrainConfig
from lthkit.imp.config import LotteryConfig

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(argv: list[str]) -> tuple[int, str, list[str]]:
    """``main(argv)`` in a fresh folder: (exit status, stderr, what the folder holds afterwards)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "data").mkdir()
        argv = [argv[0], "--out", str(root / "out"), "--cache", str(root / "cache"), "--data", str(root / "data"),
                "--no-progress", *argv[1:]]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except SystemExit as exit_info:
                status = exit_info.code
        left = sorted(path.name for path in root.iterdir())
    return status, stderr.getvalue(), left


def _assert_refused(argv: list[str], names) -> None:
    status, err, left = _run(argv)
    assert status == 2, (argv, status, err)
    assert err.count("\n") == 1 and err.endswith("\n"), (argv, err)
    assert "Traceback" not in err, (argv, err)
    assert any(name in err for name in names), f"{argv}: the message does not name the flag: {err}"
    assert left == ["data"], (argv, left)


def _flag_fields(cls) -> dict[str, dataclasses.Field]:
    return {field.metadata.get("flag", "--" + field.name.replace("_", "-")): field
            for field in dataclasses.fields(cls) if field.metadata.get("cli", True)}


NOT_A_NUMBER = st.text(alphabet="abcxyz%$#@!_ ", min_size=1, max_size=6).filter(lambda t: t.strip().lower() not in
                                                                                   ("nan", "inf", "none", "null", ""))
NEGATIVE = st.integers(min_value=-10**12, max_value=-1).map(str)
NOT_WHOLE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda x: x != int(x)).map(repr)
NOT_FINITE = st.sampled_from(["nan", "inf", "-inf", "1e999"])
OUTSIDE_FRACTION = st.one_of(st.floats(min_value=1.0, max_value=1e9).map(repr),
                             st.floats(max_value=-1e-9, min_value=-1e9).map(repr), NOT_FINITE)

#: flag → strategy of values that must be refused (the types come from the configs' fields).
INT_FLAGS = [flag for cls in (LotteryConfig, TrainConfig, DataConfig) for flag, field in _flag_fields(cls).items()
             if field.type in ("int", "int | None") and not field.metadata.get("repeat")]
FRACTION_FLAGS = ["--rate", "--sparsity", "--rewind-fraction"]
POSITIVE_FLOAT_FLAGS = ["--lr", "--lr-gamma", "--epochs"]
def _choices(field):
    """A field's choices; a registry's are a function, read when asked (a scorer registered later counts)."""
    choices = field.metadata["choices"]
    return tuple(choices() if callable(choices) else choices)


CHOICE_FLAGS = {flag: _choices(field) for cls in (LotteryConfig, TrainConfig, DataConfig)
                for flag, field in _flag_fields(cls).items() if "choices" in field.metadata}


def test_the_flag_lists_are_not_empty():
    assert {"--rounds", "--batch-size", "--iterations", "--train-size", "--test-size"} <= set(INT_FLAGS)
    assert {"--model", "--scope", "--rewind", "--optimizer", "--inputs"} <= set(CHOICE_FLAGS)


@SETTINGS
@given(flag=st.sampled_from(INT_FLAGS), value=st.one_of(NOT_A_NUMBER, NEGATIVE, NOT_WHOLE))
def test_whole_number_flags_refuse_what_is_not_a_whole_number_in_range(flag, value):
    _assert_refused(["run", flag, value], [flag, flag[2:].replace("-", "_")])


@SETTINGS
@given(flag=st.sampled_from(FRACTION_FLAGS), value=st.one_of(NOT_A_NUMBER, OUTSIDE_FRACTION))
def test_fractions_refuse_what_is_outside_zero_one(flag, value):
    _assert_refused(["run", flag, value], [flag])


@SETTINGS
@given(flag=st.sampled_from(POSITIVE_FLOAT_FLAGS),
       value=st.one_of(NOT_A_NUMBER, NOT_FINITE, st.floats(max_value=0, min_value=-1e9).map(repr)))
def test_positive_numbers_refuse_zero_negative_and_infinite(flag, value):
    _assert_refused(["run", flag, value], [flag, flag[2:].replace("-", "_")])


@SETTINGS
@given(data=st.data())
def test_choices_refuse_unknown_names(data):
    flag = data.draw(st.sampled_from(sorted(CHOICE_FLAGS)))
    value = data.draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
                      .filter(lambda text: text not in CHOICE_FLAGS[flag]))
    _assert_refused(["run", flag, value], [flag])


@SETTINGS
@given(value=st.one_of(st.integers(min_value=MNIST_TEST_IMAGES + 1, max_value=10**9).map(lambda n: ["--test-size", str(n)]),
                       st.integers(min_value=MNIST_TRAIN_IMAGES, max_value=10**9).map(lambda n: ["--validation-size", str(n)]),
                       st.integers(min_value=MNIST_TRAIN_IMAGES, max_value=10**9).map(lambda n: ["--train-size", str(n)]),
                       st.integers(min_value=1001, max_value=10**6).map(lambda n: ["--train-size", "1000", "--batch-size", str(n)])))
def test_sizes_are_checked_against_what_mnist_holds(value):
    _assert_refused(["run", *value], ["test_size", "validation_size", "train_size", "batch_size"])


@SETTINGS
@given(layer=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=10)
       .filter(lambda name: name not in ("fc1", "fc2", "fc3", "output", "fc1.weight", "fc2.weight", "fc3.weight")),
       rate=st.floats(min_value=0, max_value=0.99))
def test_layer_names_are_checked_against_the_model(layer, rate):
    _assert_refused(["run", "--layer-rate", f"{layer}={rate}"], ["layer"])


@SETTINGS
@given(milestone=st.integers(min_value=30, max_value=10**7))
def test_a_schedule_past_the_budget_is_refused(milestone):
    _assert_refused(["run", "--iterations", "30", "--lr-milestone", str(milestone)], ["milestone"])


@SETTINGS
@given(data=st.data())
def test_a_flag_given_twice_with_different_values_is_refused(data):
    flag, values = data.draw(st.sampled_from([
        ("--rounds", st.integers(1, 50)), ("--lr", st.floats(1e-5, 1.0)), ("--batch-size", st.integers(1, 500)),
        ("--iterations", st.integers(1, 10**6)), ("--seed", st.integers(0, 10**9)),
        ("--scope", st.sampled_from(["global", "layer"])), ("--model", st.sampled_from(["lenet300_100", "conv2"])),
        ("--control", st.sampled_from(["ticket", "reinit", "random_prune", "all"]))]))
    first, second = data.draw(st.lists(values, min_size=2, max_size=2, unique=True))
    if isinstance(first, float) and math.isclose(first, second):
        return
    _assert_refused(["run", flag, str(first), flag, str(second)], [flag])


def test_the_same_value_twice_is_fine_and_spelling_does_not_matter(mnist_root, tmp_path):
    status = main(["run", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--data", str(mnist_root),
                   "--no-progress", "--preset", "fast", "--validation-size", "200", "--train-size", "500",
                   "--iterations", "20", "--iterations=20", "--lr", "0.01", "--lr", "0.010", "--rounds", "1",
                   "--batch-size", "32", "--test-size", "100"])
    assert status == 0 and (tmp_path / "out" / "summary.csv").is_file()


def test_a_test_size_past_the_real_files_is_refused(mnist_root, tmp_path, capsys):
    """The synthetic MNIST holds 300 test images: --test-size 400 fits MNIST's 10,000 but not these files."""
    status = main(["run", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--data", str(mnist_root),
                   "--no-progress", "--validation-size", "200", "--train-size", "500", "--iterations", "20",
                   "--rounds", "1", "--batch-size", "32", "--test-size", "400"])
    err = capsys.readouterr().err
    assert status == 2 and "test_size 400 is larger than the 300 test images" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@SETTINGS
@given(flag=st.sampled_from(["--timeout", "--memory-mb", "--workers"]),
       value=st.one_of(NOT_A_NUMBER, NEGATIVE, st.just("0"), NOT_FINITE))
def test_grade_flags_refuse_bad_numbers(flag, value):
    with tempfile.TemporaryDirectory() as folder:
        submission = Path(folder) / "s.py"
        submission.write_text("def find_winning_ticket_step(m, s, a=0.2):\n    return m\n")
        before = sorted(Path(folder).iterdir())
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(["grade", str(submission), flag, value])
            except SystemExit as exit_info:
                status = exit_info.code
        assert status == 2 and stderr.getvalue().count("\n") == 1 and flag in stderr.getvalue(), stderr.getvalue()
        assert sorted(Path(folder).iterdir()) == before
