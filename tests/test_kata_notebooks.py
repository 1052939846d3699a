"""What a notebook asserts about a kata's result is what the grader scores (issue 27).

A notebook checks an exercise by calling the learner's function through
``lthkit.grading.watch`` and ending with ``.check()``: the kata's own recorder and judges, those of
the grader (:mod:`lthkit.grading.example`). Two tests keep it that way:

* every exercise-check cell of every course notebook that uses a kata's function calls it only
  through ``watch`` and ``.check()``, and holds no ``assert`` of its own (an assert beside the
  grader's checks could reject what the grader passes, or pass what it fails);
* the notebooks' own check cells, run with each kata's example submissions (and the reference,
  and the ML-Katas text of kata 1, which leaves the biases alone), fail only checks the grader
  fails on the same submission, and pass every correct one.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import nbformat
import pytest
import torch

from lthkit.grading.katas import expectation, get_kata, get_reference, kata_names, submissions

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISE_TAG = "exercise-check"

#: The katas whose spec records a notebook's own calls (KataSpec.example and call): watch() checks them.
WATCHED = [kata for kata in kata_names() if get_kata(kata).example is not None]

#: Notebook 1's first cell loads MNIST and the next ones train: its check cells run here on stand-ins
#: (a LeNet-300-100 moved away from θ₀, a stand-in training that moves the survivors and runs a forward
#: pass, as the grader's hidden cases do). Its check cells end by revealing a prediction (``reveal``).
NOTEBOOK_1_STAND_INS = '''
import copy
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn.utils import prune

from lthkit import build_model, fast_mode, reveal

model = build_model("lenet300_100", seed=0)
initial_state_dict = copy.deepcopy(model.state_dict())
with torch.no_grad():
    for parameter in model.parameters():
        parameter.add_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(3)) * 0.05)
data = SimpleNamespace(val_x=torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(4)))
config = SimpleNamespace(train=None)
dense = SimpleNamespace(test_acc_final=0.97)


def train(network, data, train_config, seed=0):
    generator = torch.Generator().manual_seed(seed + 5)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            mask = dict(network.named_buffers()).get(name.replace("_orig", "_mask"))
            step = torch.randn(parameter.shape, generator=generator) * 0.01
            parameter.add_(step if mask is None else step * mask)
    network(data.val_x)
    return SimpleNamespace(test_acc_final=0.96)
'''

#: kata 1 written exactly as its text asks (ML-Katas): prune globally, survivors back to θ₀ through
#: weight_orig; the biases are left as they are.
ML_KATAS_TEXT = '''
import torch
from torch import nn
from torch.nn.utils import prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured([(module, "weight") for _, module in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for name, module in layers:
            module.weight_orig.copy_(initial_state_dict[f"{name}.weight"])
    return model
'''


def _cells(path: Path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def _solved_katas(path: Path) -> list[str]:
    """The katas a notebook teaches: the functions it defines between BEGIN/END SOLUTION markers."""
    names = []
    for cell in _cells(path):
        if "### BEGIN SOLUTION" in cell.source:
            names += [node.name for node in ast.parse(cell.source).body
                      if isinstance(node, ast.FunctionDef) and node.name in kata_names()]
    return names


def _names(source: str) -> set[str]:
    """The names a cell's code uses (not the words of its strings and comments)."""
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def _check_cells(path: Path, kata: str) -> list[str]:
    """The exercise-check cells that use the kata's function (a cell that only says its name in a message does not)."""
    return [cell.source for cell in _cells(path)
            if EXERCISE_TAG in cell.metadata.get("tags", []) and kata in _names(cell.source)]


def _through_watch(kata: str) -> None:
    """Every exercise-check cell of ``kata`` calls it through watch(...) and .check(), and asserts nothing itself."""
    path = _notebook_of(kata)
    cells = _check_cells(path, kata)
    assert cells, f"{path.name}: no exercise-check cell checks {kata}"
    for source in cells:
        tree = ast.parse(source)
        asserts = [ast.unparse(node)[:80] for node in ast.walk(tree) if isinstance(node, ast.Assert)]
        assert not asserts, (f"{path.name}: an exercise-check cell of {kata} asserts on its own ({asserts}); "
                             "check through watch(...).check(), the grader's checks")
        direct = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and isinstance(node.func, ast.Name) and node.func.id == kata]
        assert not direct, f"{path.name}: {kata} is called directly in a check cell; call it through watch()"
    watched = "\n".join(cells)
    assert f"watch({kata})" in watched and ".check()" in watched, f"{path.name}: {kata} is never watch()ed"


def test_every_kata_is_taught_in_a_notebook():
    taught = {kata for path in NOTEBOOKS for kata in _solved_katas(path)}
    assert taught == set(kata_names()), f"katas no notebook teaches: {set(kata_names()) - taught}"


#: Katas whose notebook hands the function to check(), the grader itself on its hidden cases, instead of watching the
#: notebook's own calls: iterative_magnitude_pruning's judges predict every move of the grader's stand-in training,
#: which a notebook's real training is not.
GRADED_WHOLE = {"iterative_magnitude_pruning"}


def test_every_kata_records_a_notebooks_calls():
    """A kata without KataSpec.example and call cannot be checked through watch(): its notebook would assert alone."""
    unwatched = [kata for kata in kata_names()
                 if (kata not in WATCHED or get_kata(kata).call is None) and kata not in GRADED_WHOLE]
    assert not unwatched, f"katas watch() cannot check (give their spec example and call): {unwatched}"


@pytest.mark.parametrize("kata", sorted(GRADED_WHOLE))
def test_a_kata_graded_whole_is_checked_by_the_grader_and_asserts_nothing_else(kata):
    path = _notebook_of(kata)
    cells = _check_cells(path, kata)
    assert cells, f"{path.name}: no exercise-check cell runs {kata}"
    for source in cells:
        asserts = [ast.unparse(node)[:80] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]
        assert not asserts, f"{path.name}: a check cell of {kata} asserts on its own ({asserts}); check() judges it"
    graded = [cell.source for cell in _cells(path) if f"check({kata})" in cell.source.replace(" ", "")]
    assert graded, f"{path.name}: {kata} is never handed to check(), the grader's hidden cases"


@pytest.mark.parametrize("kata", WATCHED)
def test_a_notebook_checks_its_kata_through_the_graders_checks(kata):
    _through_watch(kata)


def _notebook_of(kata: str) -> Path:
    return next(path for path in NOTEBOOKS if kata in _solved_katas(path))


def _preamble(path: Path) -> str:
    """The set-up the check cells need: notebook 1's stand-ins, else the notebook's first code cell (imports)."""
    return NOTEBOOK_1_STAND_INS if path.name.startswith("01_") else _cells(path)[0].source


def _helper_cells(path: Path) -> list[str]:
    """Cells that only define functions or classes (and are not an exercise): helpers the check cells use."""
    kinds = (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    return [cell.source for cell in _cells(path) if "### BEGIN SOLUTION" not in cell.source
            and all(isinstance(node, kinds) for node in ast.parse(cell.source).body)
            and any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in ast.parse(cell.source).body)]


def notebook_verdict(kata: str, function) -> tuple[set[str], str]:
    """Run the notebook's own check cells of ``kata`` with ``function``: the required checks it failed."""
    path = _notebook_of(kata)
    namespace: dict = {"__name__": "__notebook__"}
    exec(compile(_preamble(path), f"{path.name}:preamble", "exec"), namespace)  # noqa: S102 - our notebooks
    if "data" in namespace:  # get_data caches its result: a submission that writes into it must not reach the next
        namespace["data"] = copy.deepcopy(namespace["data"])
    for source in _helper_cells(path):
        exec(compile(source, f"{path.name}:helpers", "exec"), namespace)  # noqa: S102
    namespace[kata] = function
    failed, problem = set(), ""
    from lthkit.grading.example import Watched

    for index, source in enumerate(_check_cells(path, kata)):
        try:
            exec(compile(source, f"{path.name}:check {index}", "exec"), namespace)  # noqa: S102
        except AssertionError as error:
            watched = [value for value in namespace.values() if isinstance(value, Watched) and value.kata.name == kata]
            named = {check.name for value in watched for check in value.failures()}
            assert named, f"{path.name}: a check cell of {kata} raised an AssertionError no grader check names: {error}"
            failed |= named
            problem = str(error)
            break
        except Exception as error:  # noqa: BLE001 - a submission that raises fails the notebook too
            failed.add("raised")
            problem = f"{type(error).__name__}: {error}"
            break
    return failed, problem


def _load(path_or_source, name: str):
    source = Path(path_or_source).read_text() if isinstance(path_or_source, Path) else path_or_source
    namespace: dict = {}
    exec(compile(source, str(path_or_source)[:60], "exec"), namespace)  # noqa: S102 - our own example submissions
    return namespace[name]


def test_the_ml_katas_text_and_the_papers_imp_both_pass_notebook_1_and_the_grader():
    """Kata 1's text asks for the surviving weights at θ₀ through weight_orig; the paper also resets the biases."""
    from lthkit.grading.grader import grade_in_process

    text = _load(ML_KATAS_TEXT, "find_winning_ticket_step")
    for function in (text, get_reference("find_winning_ticket_step")):
        assert notebook_verdict("find_winning_ticket_step", function) == (set(), "")
        report = grade_in_process(function, "find_winning_ticket_step")
        assert report.passed and report.score == report.max_score, report.to_text()
    extras = {check.name: check.status for check in grade_in_process(text, "find_winning_ticket_step").checks
              if not check.required}
    assert extras == {"biases_rewound": "fail"}, "the biases are reported as an extra, and this one leaves them"


def _patches_the_library(path: Path) -> bool:
    """A submission that assigns to a module's attributes at import (always_equal.py patches torch.equal): it runs
    only in the grader's sandbox, never in this process."""
    return any(isinstance(node, ast.Assign) and any(isinstance(target, ast.Attribute) for target in node.targets)
               for node in ast.parse(path.read_text()).body)


BENIGN = [(kata, path) for kata in WATCHED for path in submissions(kata)
          if "mistake" in expectation(path) and not _patches_the_library(path)]


@pytest.mark.parametrize("kata,path", BENIGN, ids=[f"{kata}-{path.stem}" for kata, path in BENIGN])
def test_a_notebook_rejects_only_what_the_grader_fails(graded_submissions, kata, path):
    """The notebook's check cells, run with an example submission, fail no check the grader passes."""
    function = _load(path, get_kata(kata).function)
    failed, problem = notebook_verdict(kata, copy.deepcopy(function))
    report = graded_submissions[kata][path.name]
    graded_failed = {check.name for check in report.checks if check.status != "pass" and check.required}
    if expectation(path)["mistake"] == "none":
        assert not failed, f"the notebook rejects a correct submission the grader passes: {problem}"
    elif "raised" in failed:
        assert graded_failed, f"the notebook's cell raised ({problem}) on a submission the grader passes"
    else:
        assert failed <= graded_failed, (f"the notebook fails {sorted(failed - graded_failed)} on {path.name}, "
                                         f"which the grader passes: {problem}")


@pytest.mark.parametrize("kata", WATCHED)
def test_the_reference_passes_its_notebooks_checks(kata):
    torch.manual_seed(0)
    assert notebook_verdict(kata, get_reference(kata)) == (set(), "")
