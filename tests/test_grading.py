"""The kata grader end to end: real submissions graded in real sandbox processes.

Every file in tests/kata_submissions/<kata>/ is graded once per test session (two sandboxes at a
time). The correct ones must pass every check; every deliberately wrong one must fail with the
hint of its own mistake; hangs, crashes, syntax and import errors and memory hogs get 0 with a
clear message, and the grader itself never hangs or crashes.
"""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import nbformat
import pytest

from lthkit.cli import main
from lthkit.grading import grade_file, grade_function, kata_names
from lthkit.grading.grader import single_threaded_torch
from lthkit.grading.katas import get_kata
from lthkit.grading.landlock import abi_version
from lthkit.grading.report import JSON_SCHEMA
from lthkit.grading.sandbox import Limits

SUBMISSIONS = Path(__file__).parent / "kata_submissions"
LIMITS = Limits(timeout=10, memory_mb=512)  # generous: the machine may be busy
REPO = Path(__file__).resolve().parents[1]

#: Each wrong find_winning_ticket_step and the mistake it must be diagnosed with (issue 4's list).
WRONG_TICKET_STEP = {
    "no_rewind.py": "no_rewind",
    "per_layer.py": "per_layer",
    "ranks_theta0.py": "ranks_theta0",
    "prunes_biases.py": "prunes_biases",
    "writes_weight.py": "writes_weight",
    "no_compounding.py": "no_compounding",
    "no_compounding_permanent.py": "no_compounding",
    "hard_coded_names.py": "hard_coded_names",
    "random_pruning.py": "random_pruning",
    "reinitializes.py": "reinitializes",
    "mutates_initial_state.py": "mutates_initial_state",
    "linear_only.py": "linear_only",
    "always_equal.py": "returns_other",
}
#: The checks each wrong solution must fail (more may fail, as long as these do).
FAILED_CHECKS = {
    "no_rewind.py": {"rewinds_weight_orig", "effective_weights"},
    "per_layer.py": {"global_magnitude"},
    "ranks_theta0.py": {"global_magnitude"},
    "prunes_biases.py": {"biases_not_pruned", "global_magnitude"},
    "writes_weight.py": {"rewinds_weight_orig", "effective_weights"},
    "no_compounding.py": {"compounds"},
    "no_compounding_permanent.py": {"compounds", "prunes_every_layer"},
    "hard_coded_names.py": {"runs_on_any_model"},
    "random_pruning.py": {"global_magnitude"},
    "reinitializes.py": {"rewinds_weight_orig", "effective_weights"},
    "mutates_initial_state.py": {"initial_state_untouched"},
    "linear_only.py": {"prunes_every_layer", "global_magnitude"},
    "always_equal.py": {"returns_model"},
}
#: Submissions that cannot be graded at all: their status and a phrase of their message.
UNGRADABLE = {
    "hang.py": ("timeout", "did not finish within 10 s"),
    "syntax_error.py": ("syntax", "SyntaxError in syntax_error.py, line 4"),
    "import_error.py": ("import", "cannot import name 'prunning'"),
    "memory_hog.py": ("memory", "the sandbox allows 512 MiB"),
    "exits.py": ("crash", "exited (status 3)"),
    "not_written.py": ("missing", "find_winning_ticket_step is not written yet: it raises NotImplementedError"),
}
WRONG_OTHER_KATAS = {
    "global_magnitude_mask": {"per_layer.py": "per_layer", "revives_pruned.py": "revives_pruned",
                              "uses_torch_prune.py": "uses_torch_prune", "mutates_inputs.py": "mutates_inputs"},
    "rewind_to_init": {"forgets_mask.py": "forgets_mask", "biases_not_reset.py": "biases_not_reset",
                       "uses_prune_hooks.py": "uses_prune_hooks", "replaces_parameters.py": "replaces_parameters"},
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """kata → {file name: report}: every submission graded once, two sandboxes at a time."""
    tampered = Path(sys.modules["lthkit"].__file__).parent / "grading" / "TAMPERED"
    jobs = [(path, kata) for kata in kata_names() for path in sorted((SUBMISSIONS / kata).glob("*.py"))]
    jobs.sort(key=lambda job: job[0].name != "hang.py")  # the slowest first, so the pool never idles on it
    with single_threaded_torch(), ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda job: grade_file(job[0], job[1], LIMITS), jobs))
    results = {kata: {} for kata in kata_names()}
    for (path, kata), report in zip(jobs, reports):
        results[kata][path.name] = report
    results["tampered"] = tampered.exists()
    tampered.unlink(missing_ok=True)
    return results


@pytest.mark.parametrize("kata", kata_names())
def test_reference_solutions_pass_everything(kata):
    """Each kata's reference (its folder's reference.py), graded in process as trusted code, gets full marks."""
    from lthkit.grading.grader import grade_in_process
    from lthkit.grading.katas import get_reference

    report = grade_in_process(get_reference(kata), kata)
    assert report.passed and report.score == report.max_score, report.to_text()


@pytest.mark.parametrize("kata", ["find_winning_ticket_step", "global_magnitude_mask", "rewind_to_init"])
def test_correct_solutions_pass_everything(graded, kata):
    correct = {name: report for name, report in graded[kata].items() if name.startswith("correct_")}
    assert correct, "a correct solution written as a learner would (the reference is graded in process)"
    for name, report in correct.items():
        assert report.status == "graded", (name, report.message)
        assert report.passed and report.score == report.max_score == get_kata(kata).max_score, report.to_text()


@pytest.mark.parametrize("name", sorted(WRONG_TICKET_STEP))
def test_each_wrong_ticket_step_fails_with_its_own_hint(graded, name):
    report = graded["find_winning_ticket_step"][name]
    spec = get_kata("find_winning_ticket_step")
    mistake = WRONG_TICKET_STEP[name]
    failed = {check.name for check in report.checks if check.status != "pass"}
    assert FAILED_CHECKS[name] <= failed, report.to_text()
    assert report.score < report.max_score
    diagnosed = [check for check in report.checks if check.mistake == mistake]
    assert diagnosed, f"{name}: no check names the mistake {mistake}\n{report.to_text()}"
    assert all(check.hint == spec.hint(mistake) for check in diagnosed)
    # The hint is specific: a failing check never falls back to another mistake's hint for these.
    for check in report.checks:
        if check.name in FAILED_CHECKS[name] and check.status == "fail":
            assert check.mistake == mistake, (name, check.name, check.mistake, report.to_text())


def test_every_mistake_of_the_issue_has_a_wrong_solution():
    issue = {"no_rewind", "per_layer", "ranks_theta0", "prunes_biases", "writes_weight", "no_compounding",
             "hard_coded_names", "random_pruning", "reinitializes", "mutates_initial_state", "linear_only"}
    assert issue <= set(WRONG_TICKET_STEP.values())
    hints = [mistake.hint for mistake in get_kata("find_winning_ticket_step").mistakes]
    assert len(set(hints)) == len(hints), "every mistake has its own hint"


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


@pytest.mark.parametrize("name", sorted(UNGRADABLE))
def test_broken_submissions_get_zero_with_a_clear_message(graded, name):
    report = graded["find_winning_ticket_step"][name]
    status, phrase = UNGRADABLE[name]
    assert report.status == status, report.to_text()
    assert phrase in report.message, report.message
    assert "\n" not in report.message
    assert report.score == 0 and not report.passed
    assert all(check.status == "error" for check in report.checks)


def test_timeout_stops_a_hanging_submission(graded):
    report = graded["find_winning_ticket_step"]["hang.py"]
    # 8 s of submission time, plus the sandbox's start (import torch) on a busy machine.
    assert report.seconds < LIMITS.timeout + 40, report.seconds


@pytest.mark.parametrize("kata", sorted(WRONG_OTHER_KATAS))
def test_other_katas_diagnose_their_mistakes(graded, kata):
    for name, mistake in WRONG_OTHER_KATAS[kata].items():
        report = graded[kata][name]
        assert not report.passed and mistake in report.mistakes, report.to_text()


@pytest.mark.skipif(abi_version() < 6, reason="needs Landlock ABI 6 (Linux 6.12+) for signal scoping")
def test_a_submission_cannot_touch_the_grader(graded):
    report = graded["find_winning_ticket_step"]["tampers.py"]
    runs = next(check for check in report.checks if check.name == "runs_on_any_model")
    assert "write=no, signal=no, read=no, tcp=no" in runs.message, runs.message
    assert not graded["tampered"], "the submission wrote into the grader's package"
    # Issue 12: the report says which isolation was used (Landlock is one layer of it).
    assert report.sandbox.startswith(("bubblewrap", "fallback")) and "landlock ABI" in report.sandbox


def test_grade_function_matches_the_file_face(graded):
    """A function object graded from memory gets the same verdict as the same code in a file."""
    import importlib.util

    path = SUBMISSIONS / "find_winning_ticket_step" / "correct_by_hand.py"
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
        (folder / name).write_text((SUBMISSIONS / "find_winning_ticket_step" / name).read_text())
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
    (submission / "kata.py").write_text((SUBMISSIONS / "find_winning_ticket_step" / "per_layer.py").read_text())
    out = tmp_path / "results"
    process = subprocess.run([sys.executable, "-m", "lthkit", "grade", str(submission), "--gradescope", str(out),
                              "--no-progress"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert process.returncode == 1, process.stderr
    results = json.loads((out / "results.json").read_text())
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    assert results["score"] == 8 and sum(test["max_score"] for test in results["tests"]) == 10
    failed = [test for test in results["tests"] if test["status"] == "failed"]
    assert len(failed) == 1 and "Hint: Every layer lost exactly prune_amount" in failed[0]["output"]
    assert "8/10" in process.stdout


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
