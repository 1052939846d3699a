"""Predict, then run: the notebooks' questions as widgets, recorded in the notebook so that they can be graded.

Before a notebook's main experiment, ``predict("02.best_at_7")`` shows the question with a choice or a slider
and a **Record my prediction** button; after the run, ``reveal("02.best_at_7", measured)`` shows the learner's
prediction beside the measured result, with what the literature found. At the end, ``ask("02.why_reinit")``
shows a question with one right choice; answering it shows whether it was right and why. The questions
themselves, their answers and their grading live in :mod:`lthkit.grading.questions` (one entry of ``QUESTIONS``
each), so that ``check(answer_sheet("02"))`` in the notebook and ``python -m lthkit grade notebook.ipynb --kata
questions`` grade them the same way.

Every answer is also written into the output of the cell that asked, as a small JSON record
(:data:`~lthkit.grading.questions.ANSWER_MIMETYPE`) beside a line of text: it is saved with the notebook, and
the grader reads it back from a submitted ``.ipynb``. Without widgets (a script, a test),
``record_answer(name, value)`` records the same answer.

Example:
    >>> recorded = record_answer("02.why_reinit", 0, show=False)
    >>> recorded.value, recorded.before_result
    (0, True)
    >>> answer_sheet("02").grade().checks[2].status
    'pass'
"""

from __future__ import annotations

import html
import re

from ..errors import LthkitError
from ..grading.questions import ANSWER_MIMETYPE, QUESTIONS, Answer, AnswerSheet, Question

#: This kernel's answers (``{question name: Answer}``) and the questions whose result has been shown.
_RECORDED: dict[str, Answer] = {}
_REVEALED: set[str] = set()


def _markdown(text: str) -> str:
    """The little Markdown a prompt uses (``**bold**``, ``*italic*``, ```code```) as HTML, everything else escaped."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _record_bundle(question: Question, answer: Answer | None) -> dict:
    """What the asking cell's output holds: a line of text and the JSON record the grader reads."""
    if answer is None:
        text = f"{question.name}: no answer recorded yet"
        record = {"question": question.name, "value": None, "before_result": None}
    else:
        what = "prediction" if question.kind == "prediction" else "answer"
        late = "" if answer.before_result or question.kind != "prediction" else " (after the result was shown)"
        text = f"{question.name}: {what} recorded: {question.show(answer.value)}{late}"
        record = answer.record()
    return {"text/plain": text, ANSWER_MIMETYPE: record}


def record_answer(name: str, value, *, show: bool = True) -> Answer:
    """Record an answer to question ``name`` without a widget.

    Args:
        name: the question (``"02.reinit_gap"``).
        value: one of its choices (the text, or its index), or a number on its slider.
        show: display the record (in a notebook, that writes it into the cell's output).

    Returns:
        The recorded :class:`~lthkit.grading.questions.Answer`.

    Raises:
        LthkitError: unknown question, or a value that is not one of its answers.
    """
    question = QUESTIONS.require(name)
    recorded = Answer(question.name, question.check_value(value), before_result=question.name not in _REVEALED)
    _RECORDED[question.name] = recorded
    if show:
        from IPython.display import display

        display(_record_bundle(question, recorded), raw=True)
    return recorded


def answer_sheet(notebook: str) -> AnswerSheet:
    """This kernel's answers to notebook ``notebook``'s questions (``"02"``), for ``check(answer_sheet("02"))``.

    Raises:
        LthkitError: no question belongs to that notebook.
    """
    notebook = str(notebook)[:2]
    if not QUESTIONS.of_notebook(notebook):
        raise LthkitError(f"notebook {notebook!r} asks no questions; the notebooks with questions: "
                          f"{', '.join(sorted({question.notebook for question in QUESTIONS.values()}))}")
    return AnswerSheet(notebook, {name: recorded for name, recorded in _RECORDED.items()
                                  if QUESTIONS[name].notebook == notebook}, "this notebook")


class QuestionWidget:
    """One question as a widget: the prompt, a choice or a slider, a button that records the answer.

    Attributes:
        question: the :class:`~lthkit.grading.questions.Question`.
        control: the ``ToggleButtons``/``RadioButtons`` or ``FloatSlider`` the learner answers with.
        button: records the answer (and, for an end-of-notebook question, shows whether it was right).
        status: what happened, as HTML.
        widget: the whole thing, to display.
    """

    def __init__(self, question: Question):
        import ipywidgets as widgets

        self.question = question
        prediction = question.kind == "prediction"
        heading = "Predict before you run" if prediction else "Question"
        prompt = widgets.HTML(f"<b>{heading}</b> <span style='color:#666'>({question.name})</span><br>"
                              f"{_markdown(question.prompt)}")
        if question.choices:
            self.control = widgets.RadioButtons(options=list(question.choices), value=None,
                                                layout=widgets.Layout(width="auto"))
        else:
            low, high, step = question.scale
            self.control = widgets.FloatSlider(value=min(max(0.0, low), high), min=low, max=high, step=step,
                                               description=question.unit, readout_format=".1f",
                                               continuous_update=False, layout=widgets.Layout(width="60%"))
        self.button = widgets.Button(description="Record my prediction" if prediction else "Check my answer",
                                     button_style="primary", layout=widgets.Layout(width="auto"))
        self.status = widgets.HTML()
        self.button.on_click(lambda _: self.record())
        self.widget = widgets.VBox([prompt, self.control, widgets.HBox([self.button, self.status])])
        self.widget.add_class("lthkit-question")
        self._handle = None

    def display(self) -> QuestionWidget:
        """Show the widget and the record line under it (updated when the learner answers)."""
        from IPython.display import display

        display(self.widget)
        self._handle = display(_record_bundle(self.question, None), raw=True, display_id=True)
        return self

    def record(self) -> Answer | None:
        """Record what the control shows (the button does this); ``None`` while no choice is picked."""
        if self.question.choices and self.control.value is None:
            self.status.value = "pick one of the choices first"
            return None
        recorded = record_answer(self.question.name, self.control.value, show=False)
        if self._handle is not None:
            self._handle.update(_record_bundle(self.question, recorded), raw=True)
        self.control.disabled = self.button.disabled = True
        self.status.value = self._status(recorded)
        return recorded

    def _status(self, recorded: Answer) -> str:
        question = self.question
        if question.kind == "prediction":
            if not recorded.before_result:
                return ("recorded, but after the result was shown: a prediction counts when it comes before the "
                        "run")
            return "recorded: now run the experiment"
        if recorded.value == question.answer:
            return f"<b style='color:#2ca02c'>right.</b> {_markdown(question.explanation)}"
        return (f"<b style='color:#d62728'>not quite</b>: the answer is “{html.escape(question.choices[question.answer])}”. "
                f"{_markdown(question.explanation)}")

    def _ipython_display_(self):  # shown once: predict() and ask() have displayed it already
        if self._handle is None:
            self.display()


def predict(name: str) -> QuestionWidget:
    """Show prediction ``name`` (a choice or a slider) before the experiment it is about.

    Raises:
        LthkitError: unknown question, or one that is not a prediction.
    """
    question = QUESTIONS.require(name)
    if question.kind != "prediction":
        raise LthkitError(f"{name} is an end-of-notebook question: show it with ask({name!r})")
    return QuestionWidget(question).display()


def ask(name: str) -> QuestionWidget:
    """Show end-of-notebook question ``name``: answering it shows whether it was right, and why.

    Raises:
        LthkitError: unknown question, or a prediction (shown with :func:`predict`).
    """
    question = QUESTIONS.require(name)
    if question.kind != "quiz":
        raise LthkitError(f"{name} is a prediction: show it with predict({name!r}) before its experiment")
    return QuestionWidget(question).display()


def reveal_html(question: Question, measured, note: str = "") -> str:
    """The card :func:`reveal` shows: the prediction (or its absence) beside the measured result."""
    recorded = _RECORDED.get(question.name)
    predicted = "no prediction recorded" if recorded is None else question.show(recorded.value)
    value = question.check_value(measured) if question.choices else float(measured)
    result = question.show(value)
    verdict = ""
    if recorded is not None and question.choices:
        verdict = " ✓ as you predicted" if recorded.value == value else " ✗ not what you predicted"
    elif recorded is not None:
        verdict = f" (you were {abs(value - recorded.value):.1f} {question.unit} off)".replace("  ", " ")
    rows = [_markdown(question.prompt), f"your prediction: {html.escape(predicted)}",
            f"measured: <b>{html.escape(result)}</b>{html.escape(verdict)}"]
    if note:
        rows.append(f"<span style='color:#666'>{_markdown(note)}</span>")
    if question.explanation:
        rows.append(_markdown(question.explanation))
    return ("<div class='lthkit-reveal' style='border-left:4px solid #1f77b4;padding:4px 10px'>"
            + "<br>".join(rows) + "</div>")


def reveal(name: str, measured, note: str = "") -> None:
    """After the experiment, show prediction ``name`` beside what was measured.

    Args:
        name: the prediction.
        measured: the result in the question's terms: one of its choices (text or index) or a number.
        note: a line under the result (how it was measured; in fast mode, that it means little).

    Raises:
        LthkitError: unknown question, a question that is not a prediction, or a result that is not one of its
            answers.
    """
    question = QUESTIONS.require(name)
    if question.kind != "prediction":
        raise LthkitError(f"{name} is an end-of-notebook question; only predictions are revealed")
    card = reveal_html(question, measured, note)  # checks `measured` before anything is marked
    _REVEALED.add(question.name)
    from IPython.display import HTML, display

    display(HTML(card))
