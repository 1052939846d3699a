"""Course exercises: learner notebooks are up to date, solutions are gone, and the nbval check works."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lthkit.classroom import exercises as make_exercises

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


#: The exercise functions and their signatures, fixed by the contract with the grader.
EXERCISES = {
    "01_one_pruning_step.ipynb": "find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2)",
    "02_iterative_magnitude_pruning.ipynb": "global_magnitude_mask(weights, masks, amount)",
    "04_rewinding.ipynb": "rewind_to_init(model, initial_state_dict, masks)",
    "06_stability.ipynb": ("interpolate(state_a, state_b, alpha, masks)", "error_barrier(errors)"),
    "09_sparsity_is_not_speed.ipynb": "compact_linear(weight, bias, mask_in, mask_out)",
}
#: One (notebook, signature) per exercise.
EXERCISE_SIGNATURES = [(name, signature) for name, signatures in EXERCISES.items()
                       for signature in ((signatures,) if isinstance(signatures, str) else signatures)]


def test_learner_notebooks_are_up_to_date():
    stale = make_exercises.stale_files()
    assert not stale, f"learner notebooks out of date: {stale}; run: python scripts/make_exercises.py"


def _signature(function: ast.FunctionDef) -> str:
    args = function.args
    defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    parts = [a.arg if d is None else f"{a.arg}={ast.unparse(d)}" for a, d in zip(args.args, defaults)]
    return f"{function.name}({', '.join(parts)})"


@pytest.mark.parametrize("name,signature", EXERCISE_SIGNATURES)
def test_each_exercise_keeps_its_contract_signature_and_loses_its_solution(name, signature):
    source = nbformat.read(NOTEBOOKS / name, as_version=4)
    learner = nbformat.read(NOTEBOOKS / "exercises" / name, as_version=4)
    for notebook, solved in ((source, True), (learner, False)):
        functions = [node for cell in notebook.cells if cell.cell_type == "code"
                     for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)]
        (exercise,) = [f for f in functions if f.name == signature.split("(")[0]]
        assert _signature(exercise) == signature
        body = ast.unparse(exercise)
        assert ("raise NotImplementedError" in body) is not solved
    learner_text = (NOTEBOOKS / "exercises" / name).read_text()
    assert "BEGIN SOLUTION" not in learner_text and "END SOLUTION" not in learner_text
    checks = [cell for cell in learner.cells if "exercise-check" in cell.metadata.get("tags", [])]
    assert checks and all("raises-exception" in cell.metadata["tags"] for cell in checks)


def test_strip_solutions_keeps_indentation_and_refuses_broken_markers():
    source = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n"
    stripped, blocks = make_exercises.strip_solutions(source)
    assert blocks == 1
    assert stripped == "def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError\n"
    with pytest.raises(make_exercises.ExerciseError, match="never closed"):
        make_exercises.strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(make_exercises.ExerciseError, match="never opened"):
        make_exercises.strip_solutions("x = 1\n### END SOLUTION\n")
    with pytest.raises(make_exercises.ExerciseError, match="inside"):
        make_exercises.strip_solutions("### BEGIN SOLUTION\n### BEGIN SOLUTION\n")


def test_a_changed_source_makes_its_learner_version_stale(tmp_path):
    source_dir, learner_dir = tmp_path / "notebooks", tmp_path / "notebooks" / "exercises"
    learner_dir.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
                      nbformat.v4.new_code_cell("assert f() == 1", metadata={"tags": ["exercise-check"]})]
    nbformat.write(notebook, source_dir / "01_x.ipynb")
    assert make_exercises.stale_files(source_dir, learner_dir) == [str(learner_dir / "01_x.ipynb")]
    for path, text in make_exercises.expected_learner_files(source_dir, learner_dir).items():
        path.write_text(text)
    assert make_exercises.stale_files(source_dir, learner_dir) == []
    notebook.cells[0].source = notebook.cells[0].source.replace("return 1", "return 2")  # only the solution
    nbformat.write(notebook, source_dir / "01_x.ipynb")
    assert make_exercises.stale_files(source_dir, learner_dir) == []
    notebook.cells[1].source = "assert f() == 2"  # what the learner sees
    nbformat.write(notebook, source_dir / "01_x.ipynb")
    assert make_exercises.stale_files(source_dir, learner_dir) == [str(learner_dir / "01_x.ipynb")]


def test_notebooks_are_committed_without_bulky_outputs():
    for path in sorted(NOTEBOOKS.glob("**/*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            size = len(json.dumps(cell.get("outputs", [])))
            assert size < 2000, f"{path.name}: a cell stores {size} bytes of output; clear outputs before committing"


def test_nbval_plugin_fails_an_exercise_cell_that_raises_anything_but_not_implemented(tmp_path):
    """The check in notebooks/conftest.py can fail: a wrong error, or none, is reported."""
    (tmp_path / "conftest.py").write_text((NOTEBOOKS / "conftest.py").read_text())
    tags = {"metadata": {"tags": ["exercise-check", "raises-exception"]}}
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("raise NotImplementedError", **tags),
                      nbformat.v4.new_code_cell("raise NameError('typo')", **tags),
                      nbformat.v4.new_code_cell("x = 1", **tags),
                      nbformat.v4.new_code_cell("raise KeyError('x')", metadata={"tags": ["raises-exception"]})]
    nbformat.write(notebook, tmp_path / "check.ipynb")
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
               "-q", "-rA", "check.ipynb"]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = run.stdout
    assert "PASSED check.ipynb::Cell 0" in report
    assert "FAILED check.ipynb::Cell 1" in report and "it raised NameError" in report
    assert "FAILED check.ipynb::Cell 2" in report and "it raised nothing" in report
    assert "PASSED check.ipynb::Cell 3" in report  # an ordinary raises-exception cell is nbval's business
