"""Declarative kata specs and the grade they produce.

A kata is a :class:`KataSpec`: the function the learner writes, the hidden cases it is called on,
the checks (points, a generic hint, the known mistakes that explain a failure, and a judge) and
the hint for every known mistake. Three small functions connect a spec to the sandbox:

* ``prepare(case) -> dict`` runs in the grader's process and builds the case's inputs as plain
  tensors (a hidden model's θ₀ and trained weights, say);
* ``run(function, case, inputs, outputs)`` runs in the sandbox: it calls the learner's function
  and records what came out into ``outputs`` as plain tensors, bools, numbers and strings;
* every check's ``judge(context) -> Finding | None`` runs back in the grader's process, on those
  plain values and the grader's own oracle; ``None`` means "could not be judged on this case".

Adding a kata is writing those three pieces and listing the checks: see
:mod:`lthkit.grading.katas.find_winning_ticket_step.spec` for a complete example.

Example:
    >>> from lthkit.grading.katas import get_kata
    >>> spec = get_kata("find_winning_ticket_step")
    >>> spec.max_score, [check.name for check in spec.checks][:2]
    (10, ['runs_on_any_model', 'prunes_every_layer'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

#: Outcomes of one check: it held, it did not, it could not be judged (malformed results), or it was not run
#: because the function raised before producing what the check looks at (the report says why once, in its
#: ``cause``).
STATUSES = ("pass", "fail", "error", "not_run")


@dataclass(frozen=True)
class Mistake:
    """A known wrong way to solve a kata, and what to tell a learner who made it.

    Attributes:
        name: identifier used in reports and tests (``"per_layer"``).
        hint: what the learner did and how to fix it, in one or two sentences.
    """

    name: str
    hint: str


@dataclass(frozen=True)
class Finding:
    """The verdict of one check on one hidden case.

    Attributes:
        status: ``"pass"``, ``"fail"`` or ``"error"`` (could not be checked).
        message: what was observed, for a failure (``"fc2: 12 weights differ ..."``).
        mistake: the name of the known mistake the evidence points to, if any.
    """

    status: str
    message: str = ""
    mistake: str | None = None


PASS = Finding("pass")


class Mismatch(Exception):
    """Raised by a judge when a submission left something of the wrong kind (a weight_mask of the
    wrong shape, a list where a tensor belongs): the check fails with this message."""


def fail(message: str, mistake: str | None = None) -> Finding:
    """A failing :class:`Finding`."""
    return Finding("fail", message, mistake)


@dataclass(frozen=True)
class Check:
    """One graded property of a kata.

    Attributes:
        name: identifier (``"global_magnitude"``).
        title: what is checked, for the learner (``"one global threshold on the trained weights"``).
        points: what it is worth.
        hint: advice for a failure that no known mistake explains.
        judge: ``judge(context) -> Finding | None``, run in the grader's process; ``None`` when
            the case could not be judged (the function raised before producing what it needs).
        mistakes: the mistakes that explain a failure of this check, most specific first; a
            failure reports the first one the evidence points to.
        about_errors: the check is about running at all: a case where the function raised
            fails it (instead of leaving it unchecked).
        required: the kata's statement asks for it. An extra (``required=False``, 0 points) is
            reported, with its hint, but never changes the score or whether the submission passed
            (notebook 1's "biases back at θ₀ too", which the paper's IMP does and the kata does not ask).
        hidden_only: only the hidden cases can show it (it works on any model; it does without
            ``torch.nn.utils.prune``): a notebook's own example (:mod:`lthkit.grading.example`) does
            not judge it.
    """

    name: str
    title: str
    points: int
    hint: str
    judge: Callable[[Any], Finding | None]
    mistakes: tuple[str, ...] = ()
    about_errors: bool = False
    required: bool = True
    hidden_only: bool = False

    def __post_init__(self):
        if not self.required and self.points:
            raise ValueError(f"check {self.name}: an extra (required=False) is worth no points")


@dataclass(frozen=True)
class Case:
    """One hidden input of a kata: a hidden model, a seed and a pruning amount.

    Attributes:
        model: a name from :data:`lthkit.grading.hidden.HIDDEN_MODELS`.
        seed: seed of its initialization and of its stand-in training.
        amount: the fraction passed to the learner's function.
        variant: a kata-specific flavour of the case (``""`` for none).
        about: how the label names ``amount`` when it is not a pruning amount (``"alpha"``), or
            ``"-"`` for a case without a model, seed or amount to name (the label is then ``variant``).
    """

    model: str
    seed: int
    amount: float
    variant: str = ""
    about: str = "amount"

    @property
    def label(self) -> str:
        from .hidden import describe

        if self.about == "-":
            return self.variant
        extra = f", {self.variant}" if self.variant else ""
        return f"{describe(self.model)}, seed {self.seed}, {self.about} {self.amount:g}{extra}"


@dataclass(frozen=True)
class KataSpec:
    """Everything the grader knows about one kata.

    Attributes:
        name: the kata's name, also the name of the function the learner defines.
        title: one line for reports.
        cases: the hidden cases.
        checks: the graded checks, in report order.
        mistakes: the known mistakes and their hints.
        prepare: ``prepare(case) -> dict`` of plain inputs (grader's process).
        run: ``run(function, case, inputs, outputs)`` (sandbox).
        context: ``context(case, inputs, outputs, error) -> object`` handed to every judge.
        watched_inputs: keys of ``prepare``'s dicts of tensors the learner's function must only
            read: the sandbox hands them over as tensors on memory it shares with the grader,
            which reads them back after the run (``outputs["inputs_after"]`` in ``context``).
        by_hand: the kata is done without ``torch.nn.utils.prune``: the sandbox has none.
        example: ``example(arguments) -> (case, inputs)``: a call the learner made in a notebook
            (its arguments by parameter name, live objects) as a case and its inputs in
            ``prepare``'s format, so that the same ``run``-side recorder and the same judges check it
            (:mod:`lthkit.grading.example`).
        call: ``call(function, arguments, inputs, outputs)``: the ``run``-side recorder of one call
            (``run`` uses it on the hidden cases, :mod:`lthkit.grading.example` on a notebook's call);
            returns what the function returned.
        chained: the calls a notebook makes on the object its previous call returned belong to one
            case (find_winning_ticket_step's second pruning step), instead of one case per call.
        same_case: ``same_case(previous, inputs) -> bool``: whether a notebook's call, its inputs
            in ``example``'s format, repeats the previous call (``previous``: that call's case's
            inputs) and so belongs to its case (train_loop: a second run from the same weights
            with the same seed, as find_ticket's next round, shows whether the seed fixes the
            result); ``None``: every call is a case of its own.
    """

    name: str
    title: str
    cases: tuple[Case, ...]
    checks: tuple[Check, ...]
    mistakes: tuple[Mistake, ...]
    prepare: Callable[[Case], dict]
    run: Callable[..., None]
    context: Callable[..., Any]
    watched_inputs: tuple[str, ...] = ()
    by_hand: bool = False
    example: Callable[[dict], tuple] | None = None
    call: Callable[..., Any] | None = None
    chained: bool = False
    same_case: Callable[[dict, dict], bool] | None = None

    def __post_init__(self):
        known = {mistake.name for mistake in self.mistakes}
        for check in self.checks:
            unknown = set(check.mistakes) - known
            if unknown:
                raise ValueError(f"kata {self.name}: check {check.name} names unknown mistakes {sorted(unknown)}")
        if len({check.name for check in self.checks}) != len(self.checks):
            raise ValueError(f"kata {self.name}: check names repeat")

    @property
    def function(self) -> str:
        """The name of the function the learner writes."""
        return self.name

    @property
    def max_score(self) -> int:
        return sum(check.points for check in self.checks)

    def check(self, name: str) -> Check:
        """The check called ``name``."""
        return {check.name: check for check in self.checks}[name]

    def hint(self, mistake: str) -> str:
        """The hint of a known mistake."""
        return {m.name: m.hint for m in self.mistakes}[mistake]


@dataclass(frozen=True)
class CheckResult:
    """The graded outcome of one check over all hidden cases.

    Attributes:
        name, title: the check's.
        status: ``"pass"``, ``"fail"``, ``"error"`` (could not be judged: malformed results) or
            ``"not_run"`` (the function raised before producing what the check looks at, on at least
            one case, and failed it nowhere: the report's ``cause`` says what happened, once).
        score: points earned (all or nothing; 0 unless ``"pass"``).
        max_score: the check's points (0 for an extra).
        message: what was observed, naming the first hidden case where it went wrong ("" for a pass;
            for ``"not_run"``, on which cases it could not run).
        hint: what to do about it (the mistake's hint, or the check's generic hint); "" for a pass
            and for ``"not_run"`` (the cause has the only hint that applies).
        mistake: the known mistake diagnosed, or None.
        required: False for an extra: reported, never counted (see :class:`Check`).
    """

    name: str
    title: str
    status: str
    score: int
    max_score: int
    message: str = ""
    hint: str = ""
    mistake: str | None = None
    required: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GradeReport:
    """The grade of one submission on one kata.

    Attributes:
        kata: the kata's name.
        submission: where the code came from (a path, or ``"find_winning_ticket_step (notebook)"``).
        checks: one :class:`CheckResult` per check.
        status: ``"graded"``, or why the submission could not be graded at all (``"syntax"``,
            ``"import"``, ``"reference"`` (it uses the kit's library or a reference solution), ``"timeout"``,
            ``"memory"``, ``"crash"``, ``"missing"``, ``"error"``, or ``"setup"``: the grader's own set-up
            failed, which is never the learner's doing).
        message: for a submission that could not be graded, what happened, in one line.
        notes: remarks that do not change the score (skipped notebook cells, ...).
        seconds: wall time of the grading, sandbox included.
        sandbox: what isolated and confined the sandbox (see :mod:`lthkit.grading.isolation`).
        cause: for a graded submission whose function raised on some hidden case, the root cause,
            once, in one line: the exception, the hidden model, and the line of the learner's code
            (the checks it kept from running are ``"not_run"``); "" otherwise.

    Instructor-only details are ``sandbox`` and ``seconds``: Gradescope's results keep them out of
    what students see (:func:`lthkit.grading.report.gradescope_results`).
    """

    kata: str
    submission: str
    checks: tuple[CheckResult, ...]
    status: str = "graded"
    message: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0
    sandbox: str = ""
    cause: str = ""

    @property
    def score(self) -> int:
        return sum(check.score for check in self.checks)

    @property
    def max_score(self) -> int:
        return sum(check.max_score for check in self.checks)

    @property
    def passed(self) -> bool:
        """Every required check passed (extras never count)."""
        return self.status == "graded" and all(check.status == "pass" for check in self.checks if check.required)

    @property
    def mistakes(self) -> list[str]:
        """The mistakes diagnosed, in check order, without repeats."""
        return list(dict.fromkeys(check.mistake for check in self.checks if check.mistake))

    def to_dict(self) -> dict:
        return {"kata": self.kata, "submission": self.submission, "status": self.status, "message": self.message,
                "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "seconds": round(self.seconds, 3), "notes": list(self.notes), "sandbox": self.sandbox,
                "cause": self.cause, "checks": [check.to_dict() for check in self.checks]}

    def to_text(self) -> str:
        from .report import report_text

        return report_text(self)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        from .report import report_html

        return report_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .report import MIMETYPE

        return {"text/plain": self.to_text(), "text/html": self._repr_html_(), MIMETYPE: self.to_dict()}
