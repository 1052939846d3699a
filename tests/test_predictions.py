"""Predict, then run (issue 31): the questions' registry and grading, the widgets, and the grader reading answers back
from a saved notebook (``check(answer_sheet(...))`` and ``python -m lthkit grade --kata questions``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lthkit import LthkitError
from lthkit.course import predictions
from lthkit.grading.questions import (
    ANSWER_MIMETYPE,
    QUESTIONS,
    Answer,
    AnswerSheet,
    Question,
    answers_from_notebook,
    grade_notebook_questions,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(autouse=True)
def fresh_kernel(monkeypatch):
    """Each test starts with no answer recorded and no result shown, as a fresh kernel does."""
    monkeypatch.setattr(predictions, "_RECORDED", {})
    monkeypatch.setattr(predictions, "_REVEALED", set())


@pytest.fixture
def displayed(monkeypatch):
    """What the module displays, instead of a notebook's outputs: ``[(kind, object)]``; handles record updates."""
    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj))

    def display(obj, raw=False, display_id=None):
        shown.append(("display", obj))
        return Handle() if display_id else None

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", display)
    return shown


def test_a_question_is_checked_when_it_is_written():
    with pytest.raises(LthkitError, match="must look like"):
        Question("2.gap", "?", choices=("a", "b"))
    with pytest.raises(LthkitError, match="either choices or a slider"):
        Question("02.gap", "?", choices=("a",), scale=(0, 1, 0.1))
    with pytest.raises(LthkitError, match="either choices or a slider"):
        Question("02.gap", "?")
    with pytest.raises(LthkitError, match="low < high"):
        Question("02.gap", "?", scale=(1, 0, 0.1))
    with pytest.raises(LthkitError, match="answer must index"):
        Question("02.gap", "?", choices=("a", "b"), answer=2)
    with pytest.raises(LthkitError, match="registered already"):
        QUESTIONS.add(Question("02.why_reinit", "?", choices=("a",)))


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.floats(allow_nan=True), st.integers(-5, 20),
                 st.lists(st.integers(), max_size=2)))
def test_answers_outside_a_question_are_refused_in_one_line(value):
    question = QUESTIONS.require("02.reinit_gap")  # a slider from -2 to 10
    choice = QUESTIONS.require("02.best_at_7")  # four choices
    for asked in (question, choice):
        try:
            checked = asked.check_value(value)
        except LthkitError as error:
            assert "\n" not in str(error) and asked.name in str(error)
            continue
        if asked.choices:
            assert isinstance(checked, int) and 0 <= checked < len(asked.choices)
        else:
            assert -2 <= checked <= 10


def test_a_prediction_counts_when_made_before_its_result_and_a_question_when_right(displayed):
    predictions.record_answer("02.best_at_7", "the winning ticket")
    predictions.reveal("02.best_at_7", 0)
    predictions.reveal("02.reinit_gap", 2.4)
    predictions.record_answer("02.reinit_gap", 3.0)  # after its result was shown
    predictions.record_answer("02.why_reinit", 0)
    predictions.record_answer("02.output_rate", 1)
    report = predictions.answer_sheet("02").grade()
    status = {check.name: check.status for check in report.checks}
    assert status == {"02.best_at_7": "pass", "02.reinit_gap": "fail", "02.why_reinit": "pass",
                      "02.output_rate": "fail", "02.border_pixels": "fail"}
    checks = {check.name: check for check in report.checks}
    assert "after the result was shown" in checks["02.reinit_gap"].message
    assert checks["02.output_rate"].hint == QUESTIONS["02.output_rate"].explanation
    assert "no answer recorded" in checks["02.border_pixels"].message
    assert report.score == 2 and report.max_score == 5 and not report.passed
    texts = [obj for kind, obj in displayed if kind == "display" and isinstance(obj, dict)]
    assert texts[0]["text/plain"] == "02.best_at_7: prediction recorded: the winning ticket"
    assert texts[0][ANSWER_MIMETYPE] == {"question": "02.best_at_7", "value": 0, "before_result": True}


def test_reveal_shows_the_prediction_beside_the_result_and_refuses_what_is_not_an_answer(displayed):
    card = predictions.reveal_html(QUESTIONS["02.best_at_7"], "the winning ticket")
    assert "no prediction recorded" in card and "the winning ticket" in card
    predictions.record_answer("02.best_at_7", 3, show=False)
    card = predictions.reveal_html(QUESTIONS["02.best_at_7"], 0)
    assert "✗ not what you predicted" in card
    predictions.record_answer("02.reinit_gap", 1.0, show=False)
    assert "you were 1.5 points off" in predictions.reveal_html(QUESTIONS["02.reinit_gap"], 2.5)
    with pytest.raises(LthkitError, match="one of its choices"):
        predictions.reveal("02.best_at_7", "the dense network")
    assert "02.best_at_7" not in predictions._REVEALED  # a refused result marks nothing
    with pytest.raises(LthkitError, match="only predictions are revealed"):
        predictions.reveal("02.why_reinit", 0)
    with pytest.raises(LthkitError, match="ask"):
        predictions.predict("02.why_reinit")
    with pytest.raises(LthkitError, match="predict"):
        predictions.ask("02.best_at_7")
    with pytest.raises(LthkitError, match="asks no questions"):
        predictions.answer_sheet("99")


def test_the_widget_records_into_the_cells_output_and_locks(displayed):
    quiz = predictions.ask("02.why_reinit")
    assert quiz.record() is None and "pick one" in quiz.status.value  # nothing chosen yet
    quiz.control.value = quiz.question.choices[1]
    quiz.button.click()
    assert quiz.control.disabled and quiz.button.disabled and "not quite" in quiz.status.value
    kinds = [kind for kind, _ in displayed]
    assert kinds == ["display", "display", "update"]  # the widget, the empty record, the record
    assert displayed[1][1][ANSWER_MIMETYPE]["value"] is None
    assert displayed[2][1][ANSWER_MIMETYPE] == {"question": "02.why_reinit", "value": 1, "before_result": True}

    slider = predictions.predict("02.reinit_gap")
    slider.control.value = 4.5
    slider.button.click()
    assert predictions._RECORDED["02.reinit_gap"] == Answer("02.reinit_gap", 4.5, True)
    assert "now run the experiment" in slider.status.value


def _notebook_with(records) -> dict:
    notebook = nbformat.v4.new_notebook()
    for record in records:
        cell = nbformat.v4.new_code_cell('predict("...")')
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "x", ANSWER_MIMETYPE: record})]
        notebook.cells.append(cell)
    return notebook


def test_the_grader_reads_the_answers_a_saved_notebook_holds(tmp_path, capsys):
    from lthkit.cli import main

    records = [{"question": "04.lenet_theta0", "value": None, "before_result": None},  # asked, never answered
               {"question": "04.lenet_theta0", "value": 1, "before_result": True},
               {"question": "04.late_rewinding", "value": 0, "before_result": True},
               {"question": "04.matching", "value": 7, "before_result": True},  # not one of its choices: ignored
               {"question": "nothing.here", "value": 1}, "not a record"]
    notebook = _notebook_with(records)
    assert set(answers_from_notebook(notebook)) == {"04.lenet_theta0", "04.late_rewinding"}
    path = tmp_path / "04_rewinding.ipynb"
    nbformat.write(notebook, path)
    report = grade_notebook_questions(path)
    passed = {check.name for check in report.checks if check.status == "pass"}
    assert passed == {"04.lenet_theta0", "04.late_rewinding"}
    assert {check.name for check in report.checks} == {q.name for q in QUESTIONS.of_notebook("04")}

    status = main(["grade", str(path), "--kata", "questions", "--json", "--no-progress"])
    graded = json.loads(capsys.readouterr().out)["submissions"][0]["katas"][0]
    assert status == 1 and graded["kata"] == "questions" and graded["score"] == 2

    script = tmp_path / "solution.py"
    script.write_text("x = 1\n")
    assert grade_notebook_questions(script).status == "missing"
    broken = tmp_path / "02_broken.ipynb"
    broken.write_text("{not json")
    assert grade_notebook_questions(broken).status == "syntax"
    anonymous = tmp_path / "mine.ipynb"
    nbformat.write(_notebook_with([{"question": "02.why_reinit", "value": 0, "before_result": True}]), anonymous)
    assert [c.status for c in grade_notebook_questions(anonymous).checks if c.name == "02.why_reinit"] == ["pass"]


def test_check_grades_an_answer_sheet_without_a_sandbox(capsys):
    from lthkit.grading import check

    predictions.record_answer("02.why_reinit", 0, show=False)
    check(predictions.answer_sheet("02"))
    out = capsys.readouterr().out
    assert "questions: 1/5 points" in out and "PASS" in out


def test_every_question_is_asked_by_its_notebook_and_every_ask_names_a_question():
    """A question in the registry that no notebook asks, or a notebook asking an unknown one, fails here."""
    asked = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
        for call, name in re.findall(r"\b(predict|ask|reveal)\(\"([^\"]+)\"", source):
            asked.setdefault(name, set()).add((path.name[:2], call))
    for name, calls in asked.items():
        question = QUESTIONS.require(name)
        assert {number for number, _ in calls} == {question.notebook}, name
        wanted = {"predict", "reveal"} if question.kind == "prediction" else {"ask"}
        assert {call for _, call in calls} == wanted, (name, calls)
    assert set(QUESTIONS) == set(asked), set(QUESTIONS) ^ set(asked)


def test_every_notebook_with_questions_grades_them_at_its_end():
    """A notebook that asks questions ends with ``check(answer_sheet("NN"))``, after every question it asks."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        number = path.name[:2]
        if not QUESTIONS.of_notebook(number):
            continue
        sources = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        graded = [index for index, source in enumerate(sources) if f'check(answer_sheet("{number}"))' in source]
        asked = [index for index, source in enumerate(sources) if re.search(r"\b(ask|reveal)\(", source)]
        assert graded and graded[-1] > max(asked), f"{path.name}: end with check(answer_sheet({number!r}))"


def test_notebook_5s_count_of_confirmed_claims_ranges_over_the_papers_claims():
    from lthkit.studies.paper import CLAIMS

    papers = [claim for claim in CLAIMS if not claim.id.startswith("placebo")]
    question = QUESTIONS["05.claims_confirmed"]
    assert question.scale[:2] == (0, len(papers)) and f"{len(papers)} of the paper's claims" in question.prompt


def test_an_answer_sheet_of_a_notebook_without_questions_says_so():
    report = AnswerSheet("99").grade()
    assert report.status == "missing" and report.checks[0].status == "error"
