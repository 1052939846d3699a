"""The grader's parts without a sandbox: source extraction, oracle, hidden cases, judging, reports, CLI errors."""

import copy
import json
import os
import subprocess
import sys
import time

import jsonschema
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from lthkit.cli import main
from lthkit.core.masks import magnitude_masks
from lthkit.errors import LthkitError
from lthkit.grading.grader import evaluate, prepared_inputs
from lthkit.grading.katas import get_kata, kata_names
from lthkit.grading.katas.global_magnitude_mask.reference import global_magnitude_mask
from lthkit.grading.katas.rewind_to_init.reference import rewind_to_init
from lthkit.grading.oracle import same_masks, torch_prune_masks
from lthkit.grading.report import JSON_SCHEMA, gradescope_results, report_html, reports_json, summary_csv, summary_table
from lthkit.grading.sandbox import Limits, Outcome, _kill_group, _plain_tree, _supervise
from lthkit.grading.source import definitions_only, load_submission, submission_from_function, submission_from_notebook
from lthkit.grading.spec import CheckResult, GradeReport

# ------------------------------------------------------------------------------ source extraction


def test_definitions_only_keeps_definitions_and_line_numbers():
    text = ("import torch\n"
            "model = torch.nn.Linear(2, 2)\n"
            "AMOUNT = 0.2; trained = train(model)\n"
            "LAYERS = (torch.nn.Linear, torch.nn.Conv2d)\n"
            "@torch.no_grad()\n"
            "def f(x):\n"
            "    return x\n"
            "try:\n    import numpy\nexcept ImportError:\n    numpy = None\n"
            "if __name__ == '__main__':\n    f(1)\n"
            "check(f)\n")
    kept = definitions_only(text, "s.py").splitlines()
    # Issue 12: a constant built by a call to an imported name (line 2) now runs too (guarded).
    assert kept[0] == "import torch" and kept[1] == "model = torch.nn.Linear(2, 2)" and kept[2] == "AMOUNT = 0.2"
    assert kept[3].startswith("LAYERS") and kept[4] == "@torch.no_grad()" and kept[5] == "def f(x):"
    assert kept[7] == "try:" and kept[11:14] == ["", "", ""]
    namespace = {}
    exec(compile("\n".join(kept), "s.py", "exec"), namespace)
    assert namespace["f"](3) == 3 and "trained" not in namespace


def test_assignments_must_read_only_definitions():
    kept = definitions_only("import torch\nA = 1\nB = (A, torch.nn.Linear)\nticket = runs['ticket']\nC = B\n", "s.py")
    assert kept.splitlines() == ["import torch", "A = 1", "B = (A, torch.nn.Linear)", "", "C = B"]


def test_notebook_cells_magics_and_broken_cells():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "# title"},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "import torch\n", "!pip install x\n"]},
        {"cell_type": "code", "source": "%%time\nwhile True: pass"},
        {"cell_type": "code", "source": "def broken(:\n    pass"},
        {"cell_type": "code", "source": "def find_winning_ticket_step(m, s, a=0.2):\n    return m\nm = train()"},
        {"cell_type": "code", "source": "LATER = torch\nSTATE = m"},  # m was never kept: STATE is dropped
    ]}
    submission = submission_from_notebook(json.dumps(notebook), "nb.ipynb", "find_winning_ticket_step")
    labels = [label for label, _ in submission.chunks]
    assert labels == ["cell 1", "cell 4", "cell 5"]  # the %%time cell and the broken cell are skipped
    assert submission.chunks[2][1].splitlines() == ["LATER = torch"]
    assert submission.chunks[0][1].splitlines() == ["", "import torch"]
    assert "m = train()" not in submission.chunks[1][1]
    # Issue 12: besides the broken cell, a note says which statements were skipped, and why.
    assert len(submission.notes) == 2
    assert "skipped cell 3" in submission.notes[0] and "SyntaxError" in submission.notes[0]
    assert "cell 4 line 3 `m = train()`: it calls train, which is neither a builtin nor an imported name" \
        in submission.notes[1] and "cell 5 line 2 `STATE = m`: it reads m" in submission.notes[1]

    notebook["cells"][3]["source"] = "def find_winning_ticket_step(:\n    pass"
    broken = submission_from_notebook(json.dumps(notebook), "nb.ipynb", "find_winning_ticket_step")
    assert broken.error[0] == "syntax" and "cell 3, line 1" in broken.error[1]


def test_unreadable_submissions_are_errors_not_exceptions(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json")
    (tmp_path / "latin.py").write_bytes(b"x = '\xe9'\n")
    assert load_submission(tmp_path / "bad.ipynb").error[0] == "error"
    assert "not UTF-8" in load_submission(tmp_path / "latin.py").error[1]
    assert "cannot read" in load_submission(tmp_path / "missing.py").error[1]


CELLS = """
import torch
from torch import nn

LAYER_TYPES = (nn.Linear, nn.Conv2d)
SCALE = 2.0
BIG = torch.zeros(3)


class Helper:
    def scale(self):
        return SCALE


def _helper(model):
    return [m for m in model.modules() if isinstance(m, LAYER_TYPES)]


def uses_globals(model, initial_state_dict, prune_amount=0.2):
    return len(_helper(model)) * Helper().scale() * torch.ones(1)


def uses_a_tensor(model, initial_state_dict, prune_amount=0.2):
    return BIG
"""


@pytest.fixture
def cells(tmp_path):
    """Functions defined like a notebook's: in a module that cannot be imported again by name."""
    import importlib.util

    path = tmp_path / "cells.py"
    path.write_text(CELLS)
    spec = importlib.util.spec_from_file_location("lthkit_test_cells", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not put in sys.modules, like a kernel's __main__ for a new process
    return module


def test_submission_from_function_sends_what_the_function_uses(cells):
    submission = submission_from_function(cells.uses_globals)
    source = "\n".join(text for _, text in submission.chunks)
    assert "import torch" in source and "SCALE = 2.0" in source
    assert "LAYER_TYPES = (torch.nn.modules.linear.Linear, torch.nn.modules.conv.Conv2d)" in source
    assert "def _helper(model):" in source and "class Helper:" in source
    assert submission.chunks[-1][0] == "uses_globals (cell)"
    namespace = {}
    for label, text in submission.chunks:
        exec(compile(text, label, "exec"), namespace)
    assert namespace["uses_globals"](nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)), {}).item() == 4.0

    tensor_user = submission_from_function(cells.uses_a_tensor)
    assert any("'BIG' (a Tensor) was not sent" in note for note in tensor_user.notes)


def test_submission_from_function_rejects_what_it_cannot_send():
    def outer():
        captured = 1

        def inner(model, state, amount):
            return captured
        return inner

    with pytest.raises(LthkitError, match="inside another function"):
        submission_from_function(outer())
    with pytest.raises(LthkitError, match="defined with def"):
        submission_from_function(lambda model, state, amount: model)
    with pytest.raises(LthkitError, match="defined with def"):
        submission_from_function(len)


def test_importable_functions_are_sent_as_imports():
    from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step

    submission = submission_from_function(find_winning_ticket_step)
    assert submission.chunks == (("import", "from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step as "
                                            "find_winning_ticket_step\n"),)


# ------------------------------------------------------------------------------ oracle and cases


def test_torch_prune_oracle_matches_lthkit_masks():
    generator = torch.Generator().manual_seed(0)
    weights = {"a": torch.randn(30, 20, generator=generator), "b": torch.randn(4, 3, 3, 3, generator=generator) * 3}
    masks = {name: torch.rand(w.shape, generator=generator) > 0.3 for name, w in weights.items()}
    for scope in ("global", "layer"):
        assert same_masks(torch_prune_masks(weights, masks, 0.25, scope), magnitude_masks(weights, masks, 0.25,
                                                                                          scope=scope))


def test_ticket_step_cases_tell_every_mistake_from_the_oracle():
    spec = get_kata("find_winning_ticket_step")
    models = {case.model for case in spec.cases}
    assert models == {"lenet_like", "sequential", "own_names", "conv"} and len({c.seed for c in spec.cases}) == 8
    distinguished = dict.fromkeys(["per_layer", "ranks_theta0", "linear_only", "prunes_biases"], 0)
    for case, inputs in zip(spec.cases, prepared_inputs(spec)):
        evidence = spec.context(case, inputs, {}, None)
        for name, mask in evidence.oracle.items():
            assert 0 < int((~mask).sum()) < mask.numel(), (case, name)  # every layer loses some weights
        for mistake, predicted in evidence.predictions.items():
            distinguished[mistake] += not same_masks(predicted, evidence.oracle)
    # A prediction equal to the oracle on some case is harmless (the oracle is checked first), but
    # every mistake must show on most cases: linear-only pruning only can on the conv net's two.
    assert distinguished["linear_only"] == 2
    assert all(count >= 6 for mistake, count in distinguished.items() if mistake != "linear_only"), distinguished
    biased = [case for case in spec.cases if case.model == "own_names"]
    layer_types = prepared_inputs(spec)[spec.cases.index(biased[0])]["layer_types"]
    assert layer_types == ["Linear", "Linear", "Linear"]
    assert "bottleneck.bias" not in prepared_inputs(spec)[spec.cases.index(biased[0])]["theta0"]


def test_reference_implementations_of_the_other_katas():
    generator = torch.Generator().manual_seed(1)
    weights = {"fc1.weight": torch.randn(20, 10, generator=generator),
               "fc2.weight": torch.randn(5, 20, generator=generator)}
    masks = {name: torch.rand(w.shape, generator=generator) > 0.2 for name, w in weights.items()}
    before = copy.deepcopy((weights, masks))
    new = global_magnitude_mask(weights, masks, 0.3)
    assert same_masks(new, torch_prune_masks(weights, masks, 0.3))
    assert all(torch.equal(weights[k], before[0][k]) and torch.equal(masks[k], before[1][k]) for k in weights)
    with pytest.raises(LthkitError, match="amount"):
        global_magnitude_mask(weights, masks, 1.5)

    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    theta0 = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    rewind_masks = {"0.weight": torch.rand(3, 4) > 0.5, "1.weight": torch.rand(2, 3) > 0.5}
    prune.custom_from_mask(model[1], "weight", torch.ones(2, 3))  # hooks are removed
    objects = [model[0].weight, model[0].bias]
    assert rewind_to_init(model, theta0, rewind_masks) is model
    assert torch.equal(model[0].weight, theta0["0.weight"] * rewind_masks["0.weight"])
    assert torch.equal(model[1].weight, theta0["1.weight"] * rewind_masks["1.weight"])
    assert torch.equal(model[0].bias, theta0["0.bias"]) and not hasattr(model[1], "weight_orig")
    assert model[0].weight is objects[0] and model[0].bias is objects[1]
    with pytest.raises(LthkitError, match="'2.weight'"):
        rewind_to_init(model, theta0, {"2.weight": torch.ones(1)})
    with pytest.raises(LthkitError, match=r"initial_state_dict\['0.bias'\]"):
        rewind_to_init(model, {k: v for k, v in theta0.items() if k != "0.bias"}, rewind_masks)


# ------------------------------------------------------------------------------ judging


def test_malformed_sandbox_results_never_crash_the_grader():
    """Whatever a subverted sandbox writes, evaluate() returns a report (errors, not exceptions)."""
    for kata in kata_names():
        spec = get_kata(kata)
        inputs = prepared_inputs(spec)
        garbage = [{"outputs": {"calls": "nope", "returned": [1, 2], "values": {"x": "y"}}, "error": None},
                   {"outputs": {"calls": [{"raised": False, "after": {}}]}, "error": "not a dict"},
                   "not a record"]
        cases = [garbage[index % len(garbage)] for index in range(len(spec.cases))]
        report = evaluate(spec, "evil.py", Outcome("ok", results={"cases": cases}), inputs)
        assert report.status == "graded" and report.score < report.max_score
        assert all(check.status in ("pass", "fail", "error") for check in report.checks)
        wrong_count = evaluate(spec, "evil.py", Outcome("ok", results={"cases": []}), inputs)
        assert wrong_count.status == "crash" and wrong_count.score == 0


def test_sandbox_results_are_plain():
    tree = _plain_tree({"a": torch.ones(2), "b": [1, "x", None, nn.Linear(1, 1)], 3: object()}, torch)
    assert isinstance(tree["a"], torch.Tensor) and tree["b"][3] == "<Linear object>" and tree["3"] == "<object object>"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(line.split()[1] for line in status if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return "gone"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_supervision_of_children_that_never_start_or_never_end(tmp_path):
    read_end, write_end = os.pipe()
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(4)"], pass_fds=(write_end,),
                               start_new_session=True)
    os.close(write_end)
    # Issue 25: a sandbox that never starts is the grader's set-up failing, never the learner's fault.
    assert _supervise(process, read_end, Limits(timeout=1)) == (
        "setup", "the sandbox failed to start (exit status 4): the grader's set-up, not the submission; nothing was "
                 "graded")
    os.close(read_end)

    read_end, write_end = os.pipe()
    code = (f"import os, subprocess, time; child = subprocess.Popen(['sleep', '60']); "
            f"open({str(tmp_path / 'pid')!r}, 'w').write(str(child.pid)); os.write({write_end}, b'ready'); "
            "time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(write_end,), start_new_session=True)
    os.close(write_end)
    started = time.monotonic()
    status, message = _supervise(process, read_end, Limits(timeout=1))
    _kill_group(process)
    process.wait()
    os.close(read_end)
    assert status == "timeout" and "did not finish within 1 s" in message
    assert time.monotonic() - started < 30
    grandchild = int((tmp_path / "pid").read_text())
    for _ in range(50):  # the orphaned `sleep` is killed with the group (then reaped by init)
        if _state(grandchild) in ("gone", "Z"):
            break
        time.sleep(0.1)
    assert _state(grandchild) in ("gone", "Z")


def test_limits_are_validated():
    with pytest.raises(LthkitError, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(LthkitError, match="memory"):
        Limits(memory_mb=1)


# ------------------------------------------------------------------------------ reports


def _report(status="graded"):
    checks = (CheckResult("runs", "runs <anywhere>", "pass", 1, 1),
              CheckResult("global", "one threshold", "fail", 0, 2, "layer <script>alert(1)</script>", "use & fix",
                          "per_layer"))
    if status != "graded":
        checks = tuple(CheckResult(c.name, c.title, "error", 0, c.max_score, "boom", "hint") for c in checks)
    return GradeReport("find_winning_ticket_step", "alice.py", checks, status, "" if status == "graded" else "boom",
                       ("a note",), 1.5, "landlock ABI 7")


def test_reports_follow_their_schemas_and_escape_html():
    reports = [_report(), _report("timeout")]
    jsonschema.validate(reports_json(reports), JSON_SCHEMA)
    assert reports_json(reports)["score"] == 1 and reports_json(reports)["max_score"] == 6
    html = report_html(reports[0])
    assert "<script>" not in html and "&lt;script&gt;" in html and "runs &lt;anywhere&gt;" in html
    text = reports[0].to_text()
    assert "FAIL       0/2  one threshold" in text and "hint: use & fix" in text and text.endswith("total  1/3")
    results = gradescope_results([reports[0]])
    assert results["score"] == 1 and [t["status"] for t in results["tests"]] == ["passed", "failed", "passed"]
    assert [t["visibility"] for t in results["tests"]] == ["visible", "visible", "hidden"]
    rows = summary_csv(reports).splitlines()
    assert rows[1] == "alice.py,find_winning_ticket_step,1,3,fail,global,per_layer,"
    assert rows[2].startswith("alice.py,find_winning_ticket_step,0,3,timeout,,,boom")


@pytest.mark.parametrize("argv,message", [
    (["grade", "missing.py"], "no such file or folder: missing.py"),
    (["grade", "README.md"], "is not a .py or .ipynb file"),
    (["grade", "x.py", "--kata", "nope"], "unknown kata 'nope'"),
    (["grade", "x.py", "--timeout", "0"], "--timeout: must be a positive number"),
    (["grade"], "the following arguments are required: SUBMISSION"),
])
def test_grade_usage_errors_are_one_line_exit_2(argv, message, capsys):
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_every_report_says_which_isolation_was_used():
    report = _report()
    assert report.to_text().splitlines()[-2] == "  isolation: landlock ABI 7"
    gradescope = gradescope_results([report])
    # Instructor-only on Gradescope: the sandbox and the timing sit in a hidden test, not in what students see.
    assert "landlock" not in gradescope["output"] and "execution_time" not in gradescope
    (hidden,) = [test for test in gradescope["tests"] if test["visibility"] == "hidden"]
    assert "isolation: landlock ABI 7" in hidden["output"] and "graded in 1.50 s" in hidden["output"]
    assert all("landlock" not in test["output"] for test in gradescope["tests"] if test is not hidden)
    assert reports_json([report])["submissions"][0]["katas"][0]["sandbox"] == "landlock ABI 7"
    assert summary_table([report]).splitlines()[-1] == "isolation: landlock ABI 7"


def test_gradescope_needs_exactly_one_submission(tmp_path, capsys):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    assert main(["grade", str(tmp_path), "--gradescope", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--gradescope grades one student's submission" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")
def test_the_seccomp_filter_allows_threads_but_no_processes_or_sockets():
    """The filter every sandbox installs (lthkit.grading.isolation.restrict_syscalls), in a throwaway process."""
    code = ("import os, socket, subprocess, threading\n"
            "from lthkit.grading.isolation import restrict_syscalls\n"
            "print(restrict_syscalls())\n"
            "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
            "for name, attempt in [('fork', os.fork), ('spawn', lambda: subprocess.run(['true'])),\n"
            "                      ('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),\n"
            "                      ('mptcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)),\n"
            "                      ('unix', lambda: socket.socket(socket.AF_UNIX))]:\n"
            "    try:\n"
            "        attempt() or os._exit(0) if name == 'fork' else attempt()\n"
            "        print(name, 'allowed')\n"
            "    except PermissionError:\n"
            "        print(name, 'denied')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = result.stdout.split("\n")
    if not lines[0].startswith("seccomp:"):
        pytest.skip(f"no seccomp here: {lines[0]}")
    assert lines[1:] == ["thread", "fork denied", "spawn denied", "udp denied", "mptcp denied", "unix denied", ""], \
        result.stdout + result.stderr


#: Kata 1 with a mistake: it copies every layer's bias, and one hidden layer has none.
RAISES_WITHOUT_BIAS = """import torch
from torch import nn
from torch.nn.utils import prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for name, module in layers:
            module.weight_orig.copy_(initial_state_dict[f"{name}.weight"])
            module.bias.copy_(initial_state_dict[f"{name}.bias"])
    return model
"""


def test_one_cause_is_said_once_and_the_checks_it_stopped_are_not_run(tmp_path):
    """Issue 27: a step that raises on a bias-free layer gets one cause, not the same error in eight rows."""
    from lthkit.grading import grade_file

    (tmp_path / "bob.py").write_text(RAISES_WITHOUT_BIAS)
    report = grade_file(tmp_path / "bob.py", limits=Limits(timeout=20, memory_mb=1024))
    assert report.cause.count("AttributeError") == 1 and "bias-free" in report.cause, report.to_text()
    assert "first call" in report.cause and "bob.py, line 13: `module.bias.copy_" in report.cause, report.cause
    not_run = [check for check in report.checks if check.status == "not_run"]
    assert len(not_run) >= 5 and all(check.hint == "" and "AttributeError" not in check.message for check in not_run)
    text = report.to_text()
    assert text.count("AttributeError") == 1 and "Return the model." not in text, text
    runs = next(check for check in report.checks if check.name == "runs_on_any_model")
    assert runs.status == "fail" and "see the cause above" in runs.message
    jsonschema.validate(reports_json([report]), JSON_SCHEMA)
