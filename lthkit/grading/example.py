"""The grader's checks on a notebook's own calls: what a notebook asserts is what the grader scores.

A notebook's check cell wraps the learner's function in :func:`watch`, calls it as it would the
function itself, and ends with :meth:`Watched.check`::

    from lthkit.grading import watch

    step = watch(find_winning_ticket_step)        # the same function; each call is recorded
    ticket = step(copy.deepcopy(model), initial_state_dict, prune_amount=0.2)
    step.check()                                  # the grader's checks on that call: a table, and an
                                                  # AssertionError naming each required check that failed

Each call is recorded by the kata's own ``run``-side recorder (``KataSpec.call``, the function the
sandbox uses on the hidden models) and judged by the kata's own judges, through the grader's own
:func:`lthkit.grading.grader.judge_cases`: the notebook asserts exactly the grader's checks, by
construction. What one example cannot show is said, not failed: checks only hidden models test
(``hidden_only``: it runs on any model; it is done by hand) and checks the calls do not show (the
second pruning step of a ticket, before it is taken) are "not run". Extras (``required=False``) are
reported and never fail the cell.

The learner's function runs here, in the notebook's own kernel (it is the learner's own code, in
the learner's own process): for grading other people's code, use :func:`lthkit.grading.check` or
``python -m lthkit grade``, which run it in a sandbox.

Example:
    >>> from lthkit.grading.katas.error_barrier.reference import error_barrier
    >>> barrier = watch(error_barrier)
    >>> barrier([0.02, 0.10, 0.04])
    0.07
    >>> barrier.check()  # doctest: +NORMALIZE_WHITESPACE
    error_barrier: the grader's checks on your calls in this notebook
      PASS            returns one number
      PASS            max(errors) − the mean of the two endpoints, on every path
      PASS            a flat path (a network with itself) has barrier 0
      PASS            leaves the list of errors unchanged
      4 of the grader's 4 checks passed on your calls
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

from ..errors import LthkitError
from .katas import get_kata, get_reference, kata_names
from .spec import GradeReport, KataSpec

#: The ``submission`` a report of a notebook's own calls names.
SUBMISSION = "your calls in this notebook"


class ExampleReport:
    """What :meth:`Watched.check` shows: the report, rendered without points (a notebook's calls earn none)."""

    def __init__(self, report: GradeReport):
        self.report = report

    def __str__(self) -> str:
        from .report import report_text

        return report_text(self.report, points=False)

    def _repr_html_(self) -> str:
        from .report import report_html

        return report_html(self.report, points=False)

    def __repr__(self) -> str:
        return str(self)


class Watched:
    """A learner's kata function, unchanged when called, whose calls the grader's checks judge.

    Attributes:
        function: the learner's function.
        kata: the :class:`~lthkit.grading.spec.KataSpec`.
        cases, inputs, records: one entry per recorded case (a call, or for a chained kata the
            calls on one model, or the calls ``KataSpec.same_case`` finds repeated), as the grader's
            judges take them.
    """

    def __init__(self, function, kata: KataSpec):
        self.function, self.kata = function, kata
        self.signature = inspect.signature(get_reference(kata.name))
        self.cases: list = []
        self.inputs: list[dict] = []
        self.records: list[dict] = []
        self._chain_subject = None
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{self.kata.function}{self.signature}: {error}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        subject = next(iter(arguments.values()))
        if self.kata.chained and self.records and subject is self._chain_subject:
            record, inputs = self.records[-1], self.inputs[-1]  # the next step on the same model: one case
        else:
            case, inputs = self.kata.example(arguments)
            if self.records and self.kata.same_case is not None and self.kata.same_case(self.inputs[-1], inputs):
                record, inputs = self.records[-1], self.inputs[-1]  # the previous call again: one case
            else:
                number = len(self.cases) + 1
                self.cases.append(dataclasses.replace(case, variant=f"your call {number}"
                                                      + (f" ({case.variant})" if case.variant else "")))
                record = {"outputs": {}, "error": None}
                self.inputs.append(inputs)
                self.records.append(record)
        try:
            returned = self.kata.call(self.function, arguments, inputs, record["outputs"])
        except BaseException as error:
            record["error"] = {"type": type(error).__name__, "message": str(error)[:300], "where": ""}
            raise
        self._chain_subject = returned if returned is not None else subject
        return returned

    def report(self) -> GradeReport:
        """The grader's checks on the calls made so far, as a :class:`~lthkit.grading.spec.GradeReport`."""
        from .grader import judge_cases, single_threaded_torch

        if not self.cases:
            raise LthkitError(f"{self.kata.function} has not been called yet: call it through this wrapper first")
        with single_threaded_torch():
            checks, cause = judge_cases(self.kata, self.cases, self.inputs, self.records, example=True)
        return GradeReport(self.kata.name, SUBMISSION, checks, "graded", cause=cause)

    def failures(self, report: GradeReport | None = None) -> list:
        """The required checks that failed (or could not be judged) on the calls so far."""
        report = self.report() if report is None else report
        return [check for check in report.checks if check.required and check.status in ("fail", "error")]

    def check(self, show: bool = True) -> None:
        """Show the grader's checks on the calls so far, and stop the notebook if a required one failed.

        Args:
            show: display the table (HTML in Jupyter, text elsewhere) before raising or returning.

        Returns nothing (a cell that ends with it shows the table once); :meth:`report` gives the report.

        Raises:
            AssertionError: naming each failed check, what went wrong and the hint.
        """
        shown = ExampleReport(self.report())
        if show:
            _display(shown)
        failed = self.failures(shown.report)
        if failed:
            raise AssertionError("; ".join(f"{check.name} ({check.title}): {check.message} Hint: {check.hint}"
                                           for check in failed))


def _display(shown: ExampleReport) -> None:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import display

        display(shown)
    else:
        print(shown)


def watch(function, kata: str | None = None) -> Watched:
    """Wrap a kata function so that the grader's own checks can judge the calls a notebook makes with it.

    Args:
        function: the learner's function (``find_winning_ticket_step``, ...).
        kata: the kata's name, if the function is called differently.

    Returns:
        A :class:`Watched`: call it like the function, then :meth:`Watched.check`.

    Raises:
        LthkitError: the name is not a kata's.
    """
    name = kata or getattr(function, "__name__", "")
    if name not in kata_names():
        raise LthkitError(f"{getattr(function, '__name__', function)!r} is not a graded kata; pass kata= one of "
                          f"{', '.join(kata_names())}")
    spec = get_kata(name)
    if spec.example is None or spec.call is None:
        raise LthkitError(f"kata {name} has no notebook checks (its spec sets no example and call)")
    return Watched(function, spec)
