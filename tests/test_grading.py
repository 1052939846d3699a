"""The kata grader end to end: real submissions graded in real sandbox processes.

Every kata folder's submissions/ (lthkit/grading/katas/<kata>/) are graded once per test session (two sandboxes at a
time). The correct ones must pass every check; every deliberately wrong one must fail with the
hint of its own mistake; hangs, crashes, syntax and import errors and memory hogs get 0 with a
clear message, and the grader itself never hangs or crashes.
"""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import nbformat
import pytest

from lthkit.cli import main
from lthkit.grading import grade_function
from lthkit.grading.landlock import abi_version
from lthkit.grading.report import JSON_SCHEMA
from lthkit.grading.sandbox import Limits

LIMITS = Limits(timeout=10, memory_mb=512)  # generous: the machine may be busy
REPO = Path(__file__).resolve().parents[1]

SUBMISSIONS = Path(__file__).resolve().parents[1] / "lthkit" / "grading" / "katas" / "find_winning_ticket_step" / \
    "submissions"


@pytest.fixture(scope="module")
def graded(graded_submissions):
    """kata → {file name: report} (conftest.py grades every kata folder's submissions once per session)."""
    return graded_submissions


def test_the_graders_own_oracle_is_out_of_reach(graded):
    """Issue 12's clears_prune_log.py pruned through the grader's oracle; since issue 25 the oracle is not in the
    sandbox at all: calling it is the status reference, 0 points."""
    report = graded["global_magnitude_mask"]["clears_prune_log.py"]
    assert report.status == "reference" and report.score == 0, report.to_text()
    assert "lthkit.grading.oracle.torch_prune_masks" in report.message


def test_always_equal_cannot_fool_the_grader(graded):
    report = graded["find_winning_ticket_step"]["always_equal.py"]
    returns = next(check for check in report.checks if check.name == "returns_model")
    assert returns.status == "fail" and "AlwaysEqual" in returns.message
    assert report.score <= 3, report.to_text()
    assert {"prunes_every_layer", "global_magnitude", "rewinds_weight_orig"} <= {
        check.name for check in report.checks if check.status == "fail"}


def test_timeout_stops_a_hanging_submission(graded):
    report = graded["find_winning_ticket_step"]["hang.py"]
    # 8 s of submission time, plus the sandbox's start (import torch) on a busy machine.
    assert report.seconds < LIMITS.timeout + 40, report.seconds


@pytest.mark.skipif(abi_version() < 6, reason="needs Landlock ABI 6 (Linux 6.12+) for signal scoping")
def test_a_submission_cannot_touch_the_grader(graded):
    report = graded["find_winning_ticket_step"]["tampers.py"]
    runs = next(check for check in report.checks if check.name == "runs_on_any_model")
    # The exception is said once, in the report's cause; the check it fails points there.
    assert "write=no, signal=no, read=no, tcp=no" in report.cause, report.cause
    assert runs.status == "fail" and "see the cause above" in runs.message, runs.message
    from lthkit.grading.gate import sandbox_tree

    for package in (Path(sys.modules["lthkit"].__file__).parent, sandbox_tree() / "lthkit"):  # the checkout, the copy
        assert not (package / "grading" / "TAMPERED").exists(), "the submission wrote into the grader's package"
    # Issue 12: the report says which isolation was used (Landlock is one layer of it).
    assert report.sandbox.startswith(("bubblewrap", "fallback")) and "landlock ABI" in report.sandbox


def test_grade_function_matches_the_file_face(graded):
    """A function object graded from memory gets the same verdict as the same code in a file."""
    import importlib.util

    path = SUBMISSIONS / "correct_by_hand.py"
    spec = importlib.util.spec_from_file_location("learner_module_not_on_sys_path", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = grade_function(module.find_winning_ticket_step, limits=LIMITS)
    file_report = graded["find_winning_ticket_step"]["correct_by_hand.py"]
    assert [(c.name, c.status) for c in report.checks] == [(c.name, c.status) for c in file_report.checks]
    assert report.passed


def test_the_reference_solution_from_a_notebook_scores_nothing():
    """Issue 12: check(lthkit.grading.katas.find_winning_ticket_step) is the kit's answer, not the learner's."""
    from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step

    report = grade_function(find_winning_ticket_step, limits=LIMITS)
    assert report.status == "reference" and report.score == 0, report.to_text()
    assert "graded code cannot use the kit's library" in report.message


def test_cli_folder_json_csv_and_exit_status(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("correct_by_hand.py", "per_layer.py"):
        (folder / name).write_text((SUBMISSIONS / name).read_text())
    status = main(["grade", str(folder), "--json", "--no-progress"])
    out = capsys.readouterr()
    assert status == 1
    document = json.loads(out.out)
    jsonschema.validate(document, JSON_SCHEMA)
    scores = {Path(entry["submission"]).name: entry["score"] for entry in document["submissions"]}
    assert scores == {"correct_by_hand.py": 10, "per_layer.py": 8}
    rows = (folder / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("submission,kata,score,max_score,status") and len(rows) == 3
    assert any("per_layer.py" in row and "global_magnitude" in row and "per_layer" in row for row in rows)


GRADESCOPE_SCHEMA = {  # https://gradescope-autograders.readthedocs.io/en/latest/specs/
    "type": "object",
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "number"}, "output": {"type": "string"},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "tests": {"type": "array", "items": {
            "type": "object", "required": ["score", "max_score", "name"],
            "properties": {"score": {"type": "number"}, "max_score": {"type": "number"}, "name": {"type": "string"},
                           "number": {"type": "string"}, "output": {"type": "string"},
                           "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                           "status": {"enum": ["passed", "failed"]},
                           "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]}},
            "additionalProperties": False}},
    },
    "required": ["score", "tests"],
    "additionalProperties": False,
}


def test_cli_gradescope_results(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "kata.py").write_text((SUBMISSIONS / "per_layer.py").read_text())
    out = tmp_path / "results"
    process = subprocess.run([sys.executable, "-m", "lthkit", "grade", str(submission), "--gradescope", str(out),
                              "--no-progress"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert process.returncode == 1, process.stderr
    results = json.loads((out / "results.json").read_text())
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["score"] == 8 and sum(test["max_score"] for test in results["tests"]) == 10
    failed = [test for test in results["tests"] if test.get("status") == "failed"]
    assert len(failed) == 1 and "Hint: Every layer lost exactly prune_amount" in failed[0]["output"]
    assert "8/10" in process.stdout
    # Only where Gradescope reads: results.json, nothing in the submission folder; the sandbox is hidden.
    assert sorted(path.name for path in submission.iterdir()) == ["kata.py"]
    assert sorted(path.name for path in out.iterdir()) == ["results.json"]
    hidden = [test for test in results["tests"] if test["visibility"] == "hidden"]
    assert len(hidden) == 1 and "isolation:" in hidden[0]["output"] and "isolation" not in results["output"]


CHECK_NOTEBOOK = [
    "%matplotlib inline\nimport torch\nfrom torch import nn\nfrom torch.nn.utils import prune\n"
    "from lthkit.grading import check\nLAYER_TYPES = (nn.Linear, nn.Conv2d)",
    "model = nn.Linear(3, 3)  # a notebook global the function does not need\n\n"
    "def layers_of(net):\n    return [(n, m) for n, m in net.named_modules() if isinstance(m, LAYER_TYPES)]",
    "def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):\n"
    "    layers = layers_of(model)\n"
    "    for name, module in layers:\n"
    "        prune.l1_unstructured(module, 'weight', amount=prune_amount)  # per layer: a mistake\n"
    "    with torch.no_grad():\n"
    "        for name, module in layers:\n"
    "            module.weight_orig.copy_(initial_state_dict[f'{name}.weight'])\n"
    "    return model",
    "check(find_winning_ticket_step)",
]


def test_notebook_check_and_cli_give_the_same_verdicts(tmp_path):
    """check() in a real Jupyter kernel, then the CLI on the same notebook file."""
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CHECK_NOTEBOOK])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "learner.ipynb"
    nbformat.write(notebook, path)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                   ).execute()
    outputs = notebook.cells[-1].outputs
    shown = [output for output in outputs if output.get("output_type") == "display_data"]
    assert len(shown) == 1, outputs
    assert "<table>" in shown[0]["data"]["text/html"]
    in_kernel = shown[0]["data"]["application/vnd.lthkit.grade+json"]

    process = subprocess.run([sys.executable, "-m", "lthkit", "grade", str(path), "--json"],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
    assert process.returncode == 1, process.stderr
    from_cli = json.loads(process.stdout)["submissions"][0]["katas"][0]

    def verdict(report):
        return [(check["name"], check["status"], check["score"], check["mistake"]) for check in report["checks"]]

    assert verdict(in_kernel) == verdict(from_cli)
    assert in_kernel["score"] == from_cli["score"] == 8
    assert "per_layer" in [c["mistake"] for c in in_kernel["checks"]]
