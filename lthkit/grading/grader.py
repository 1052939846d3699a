"""Grade submissions: run them in the sandbox, judge what came back, and show the result.

* :func:`check` is the notebook face: ``check(find_winning_ticket_step)`` grades the function you
  just wrote and shows a table (HTML in Jupyter, text in a terminal).
* :func:`grade_function`, :func:`grade_file` and :func:`grade_paths` return
  :class:`~lthkit.grading.spec.GradeReport` objects; ``python -m lthkit grade`` uses them.

All of them run the learner's code in a sandbox process (:mod:`lthkit.grading.sandbox`) and
judge the plain tensors it returns here, in the grader's process, against the grader's own
oracle. The hidden cases' inputs are built once per process and kata.

Example:
    >>> from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step
    >>> report = grade_function(find_winning_ticket_step)  # doctest: +SKIP
    >>> report.score, report.max_score                      # doctest: +SKIP
    (10, 10)
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import LthkitError
from .gate import REFERENCE_MESSAGE
from .isolation import choose_isolation
from .katas import DEFAULT_KATA, get_kata, kata_names
from .sandbox import Limits, Outcome, run_in_sandbox
from .source import SUFFIXES, Submission, load_submission, submission_from_function
from .spec import CheckResult, Finding, GradeReport, KataSpec, Mismatch

_inputs_lock = threading.Lock()
_inputs: dict[str, list[dict]] = {}
_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


@contextlib.contextmanager
def single_threaded_torch():
    """Run torch on one thread inside the block, restoring the setting after the last user leaves.

    The grader's tensors are small: on a busy machine torch's thread pool makes them ~40x slower
    (measured: judging one submission took 7.5 s with the default threads at load 8 on 2 cores,
    0.17 s on one thread), and sandboxes graded in parallel already use the other cores.
    """
    import torch

    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_before)


def prepared_inputs(kata: KataSpec) -> list[dict]:
    """The hidden cases' inputs of ``kata``, built once per process."""
    with _inputs_lock:
        if kata.name not in _inputs:
            _inputs[kata.name] = [kata.prepare(case) for case in kata.cases]
        return _inputs[kata.name]


def _failed_report(kata: KataSpec, name: str, status: str, message: str, notes=(), seconds=0.0,
                   sandbox="") -> GradeReport:
    """A report of code that could not be graded: the message once, every check not run (no hints)."""
    checks = tuple(CheckResult(check.name, check.title, "not_run", 0, check.points, "", "", None, check.required)
                   for check in kata.checks)
    return GradeReport(kata.name, name, checks, status, message, tuple(notes), seconds, sandbox)


def _valid_error(error) -> dict | None:
    if not isinstance(error, dict):
        return None
    return {"type": str(error.get("type", "Exception")), "message": str(error.get("message", "")),
            "where": str(error.get("where", ""))}


#: What a finding of "not run" says, per case: the function raised first (the cause says what, once).
NOT_RUN = "the function raised before this could be checked"
#: ... and on a notebook's own call, when the call does not show the property (one call of a two-call check).
NOT_SHOWN = "not shown by these calls"


def _judge(check, context, error, example: bool = False) -> Finding:
    try:
        finding = check.judge(context)
    except Mismatch as mismatch:
        return Finding("fail", str(mismatch))
    except Exception as problem:  # noqa: BLE001 - malformed results must not crash the grader
        return Finding("error", f"could not be checked: the sandbox returned malformed results "
                                f"({type(problem).__name__}: {problem})"[:300])
    if finding is None:
        if error:
            return Finding("not_run", NOT_RUN)
        return Finding("not_run", NOT_SHOWN) if example else Finding(
            "error", "not checked: the function produced nothing to check")
    return finding


def _ordinal(index: int) -> str:
    return ("first", "second", "third")[index] if index < 3 else f"call {index + 1}"


def describe_cause(kata: KataSpec, case, error: dict, outputs: dict) -> str:
    """The root cause of checks not run, in one line: the exception, the call, the hidden model, the line.

    Example:
        >>> from lthkit.grading.katas import get_kata
        >>> kata = get_kata("find_winning_ticket_step")
        >>> describe_cause(kata, kata.cases[4], {"type": "AttributeError", "message": "'NoneType' object has no "
        ...                "attribute 'copy_'", "where": ", line 9: module.bias.copy_(b)"},
        ...                {"calls": [{"raised": True}]})  # doctest: +NORMALIZE_WHITESPACE
        "find_winning_ticket_step raised AttributeError: 'NoneType' object has no attribute 'copy_' in its
        first call, on an MLP with its own layer names and a bias-free layer, seed 5, amount 0.2, line 9:
        module.bias.copy_(b)"
    """
    calls = outputs.get("calls") if isinstance(outputs, dict) else None
    which = ""
    if isinstance(calls, list) and calls and isinstance(calls[-1], dict) and calls[-1].get("raised"):
        which = f" in its {_ordinal(len(calls) - 1)} call"
    where = error.get("where", "")
    return " ".join(f"{kata.function} raised {error['type']}: {error['message']}{which}, on {case.label}"
                    f"{where}".split())[:400]


def _aggregate(kata: KataSpec, check, findings, cause_case=None) -> CheckResult:
    """One check over all cases: fails if any case fails, is an error if any could not be checked, is not run if
    the function raised first on any case (and it failed on none)."""
    failing = [(case, finding) for case, finding in findings if finding.status == "fail"]
    errors = [(case, finding) for case, finding in findings if finding.status == "error"]
    not_run = [(case, finding) for case, finding in findings if finding.status == "not_run"]
    if not failing and not errors and not not_run:
        return CheckResult(check.name, check.title, "pass", check.points, check.points, required=check.required)
    if not failing and not errors:
        cases = [case for case, _ in not_run]
        reason = not_run[0][1].message
        where = cases[0].label + (f" and {len(cases) - 1} more" if len(cases) > 1 else "")
        message = f"not run on {where} of the {len(findings)} cases: {reason}" if len(findings) > 1 else \
            f"not run: {reason}"
        return CheckResult(check.name, check.title, "not_run", 0, check.points, message, "", None, check.required)
    status, chosen = ("fail", failing) if failing else ("error", errors)

    def rank(item):
        mistake = item[1].mistake
        if mistake is None:
            return len(check.mistakes) + 1
        return check.mistakes.index(mistake) if mistake in check.mistakes else len(check.mistakes)

    case, finding = min(chosen, key=rank)
    message = f"on {case.label}: {finding.message}"
    if check.about_errors and cause_case is not None and finding.mistake is None:
        message = f"on {cause_case.label}: see the cause above"  # the exception is said once, in the cause
    if len(chosen) > 1:
        message += f" (and {len(chosen) - 1} more of the {len(findings)} hidden cases)"
    hint = kata.hint(finding.mistake) if finding.mistake else check.hint
    return CheckResult(check.name, check.title, status, 0, check.points, message, hint, finding.mistake,
                       check.required)


def _isolation(outcome: Outcome) -> str:
    """What isolated the sandbox: the parent's description, with the child's details when they agree."""
    told = outcome.results.get("isolation") if isinstance(outcome.results, dict) else None
    if isinstance(told, str) and outcome.isolation and told.startswith(outcome.isolation):
        return told[:600]
    return outcome.isolation


def judge_cases(kata: KataSpec, cases, inputs, records, watched=None, *, example: bool = False):
    """Judge what the function left on each case: ``(checks, cause)``, the check results and the root cause.

    Args:
        kata: the kata.
        cases: its hidden cases, or a notebook's calls as cases (``example=True``).
        inputs: each case's inputs, in ``kata.prepare``'s format.
        records: what ``run`` recorded per case: ``{"outputs": dict, "error": dict | None}``.
        watched: per case, the watched inputs as the grader read them back, or None.
        example: the cases are a notebook's own calls: checks that only hidden cases can show
            (``hidden_only``) and checks the calls do not show are ``"not_run"``, not errors.

    Returns:
        One :class:`CheckResult` per check of ``kata``, and the cause ("" when nothing raised).
    """
    findings = {check.name: [] for check in kata.checks}
    cause, cause_case = "", None
    for index, (case, case_inputs, record) in enumerate(zip(cases, inputs, records)):
        record = record if isinstance(record, dict) else {}
        error = _valid_error(record.get("error"))
        outputs = dict(record.get("outputs")) if isinstance(record.get("outputs"), dict) else {}
        outputs.pop("inputs_after", None)  # only the grader says what the shared memory holds
        if watched is not None:
            outputs["inputs_after"] = watched[index]
        if error and not cause:
            cause, cause_case = describe_cause(kata, case, error, outputs), case
        try:
            context = kata.context(case, case_inputs, outputs, error)
        except Exception as problem:  # noqa: BLE001
            context, broken = None, f"{type(problem).__name__}: {problem}"
        for check in kata.checks:
            if example and check.hidden_only:
                finding = Finding("not_run", "the grader checks it on its hidden models")
            elif context is None:
                finding = Finding("error", f"could not be checked: malformed results ({broken})"[:300])
            elif error and not check.about_errors:
                finding = _judge(check, context, error, example)
                if finding.status in ("pass", "error"):  # it held as far as the function got, but it did not finish
                    finding = Finding("not_run", NOT_RUN)
            else:
                finding = _judge(check, context, error, example)
            findings[check.name].append((case, finding))
    checks = tuple(_aggregate(kata, check, findings[check.name], cause_case) for check in kata.checks)
    return checks, cause


def evaluate(kata: KataSpec, name: str, outcome: Outcome, inputs: list[dict], notes=()) -> GradeReport:
    """Judge a sandbox :class:`~lthkit.grading.sandbox.Outcome` into a :class:`GradeReport`."""
    notes = list(notes)
    if outcome.status != "ok":
        return _failed_report(kata, name, outcome.status, outcome.message, notes, outcome.seconds,
                              outcome.isolation)
    results = outcome.results
    told = results.get("notes")
    if isinstance(told, list):
        notes += [str(note)[:300] for note in told[:20] if isinstance(note, str)]
    cases = results.get("cases")
    if not isinstance(cases, list) or len(cases) != len(kata.cases):
        return _failed_report(kata, name, "crash", "the sandbox returned results for the wrong number of cases",
                              notes, outcome.seconds, outcome.isolation)
    raised = [_valid_error(record.get("error")) if isinstance(record, dict) else None for record in cases]
    if raised and all(error and error["type"] in ("ImportError", "ModuleNotFoundError")
                      and REFERENCE_MESSAGE in error["message"] for error in raised):
        return _failed_report(kata, name, "reference", f"calls the kit's library{raised[0]['where']}: "
                              f"{REFERENCE_MESSAGE}", notes, outcome.seconds, outcome.isolation)
    if raised and all(error and error["type"] == "NotImplementedError" for error in raised):
        # An exercise placeholder: say so once, instead of once per check.
        return _failed_report(kata, name, "missing", f"{kata.function} is not written yet: it raises "
                              f"NotImplementedError (write your code where it says # YOUR CODE HERE)",
                              notes, outcome.seconds, outcome.isolation)
    watched = outcome.watched if isinstance(outcome.watched, list) and len(outcome.watched) == len(cases) else None
    checks, cause = judge_cases(kata, kata.cases, inputs, cases, watched)
    return GradeReport(kata.name, name, checks, "graded", "", tuple(dict.fromkeys(notes)), outcome.seconds,
                       _isolation(outcome), cause)


def grade_submission(submission: Submission, kata: str | KataSpec = DEFAULT_KATA,
                     limits: Limits = Limits()) -> GradeReport:
    """Grade one :class:`~lthkit.grading.source.Submission` on one kata. Never raises for the submission."""
    kata = get_kata(kata) if isinstance(kata, str) else kata
    started = time.monotonic()
    if submission.error:
        status, message = submission.error
        return _failed_report(kata, submission.name, status, message, submission.notes)
    with single_threaded_torch():
        inputs = prepared_inputs(kata)
        outcome = run_in_sandbox(submission, kata, limits, inputs)  # LthkitError: isolation required, missing
        try:
            report = evaluate(kata, submission.name, outcome, inputs, submission.notes)
        except Exception as error:  # noqa: BLE001 - one submission's trouble never stops the grader
            report = _failed_report(kata, submission.name, "crash", f"the grader could not judge the results "
                                    f"({type(error).__name__}: {str(error)[:200]})", submission.notes,
                                    outcome.seconds, outcome.isolation)
    return _with_seconds(report, time.monotonic() - started)


def grade_in_process(function, kata: str | KataSpec) -> GradeReport:
    """Grade *trusted* code (a reference solution, a function of the library) in this process, without a sandbox.

    The same cases, harness and judges as :func:`grade_submission`, for the tests: the reference
    solutions must pass every check, and no function the sandbox leaves reachable may (see
    :mod:`lthkit.grading.gate`). Never call it on a learner's code.
    """
    import copy
    import importlib

    from .katas import run_module
    from .sandbox import _describe

    kata = get_kata(kata) if isinstance(kata, str) else kata
    run = importlib.import_module(run_module(kata.name)).run
    started = time.monotonic()
    with single_threaded_torch():
        inputs = prepared_inputs(kata)
        cases, watched = [], []
        for case, case_inputs in zip(kata.cases, inputs):
            given, outputs, error = copy.deepcopy(case_inputs), {}, None
            try:
                run(function, case, given, outputs)
            except Exception as raised:  # noqa: BLE001 - reported per case, as the sandbox does
                error = _describe(raised, {})
            cases.append({"outputs": outputs, "error": error})
            watched.append({key: given[key] for key in kata.watched_inputs if key in given})
        outcome = Outcome("ok", "", {"cases": cases, "notes": [], "isolation": "none: trusted code, in process"},
                          time.monotonic() - started, watched=watched if kata.watched_inputs else None,
                          isolation="none: trusted code, in process")
        return evaluate(kata, getattr(function, "__qualname__", str(function)), outcome, inputs)


def _with_seconds(report: GradeReport, seconds: float) -> GradeReport:
    import dataclasses

    return dataclasses.replace(report, seconds=seconds)


def grade_file(path, kata: str = DEFAULT_KATA, limits: Limits = Limits()) -> GradeReport:
    """Grade a ``.py`` or ``.ipynb`` submission on ``kata``."""
    spec = get_kata(kata)
    return grade_submission(load_submission(path, spec.function), spec, limits)


def grade_function(function, kata: str | None = None, limits: Limits = Limits()) -> GradeReport:
    """Grade a function object (from a notebook, a module or the reference) in the sandbox.

    Args:
        function: the learner's function.
        kata: the kata's name; by default the function's own name.
        limits: timeout and memory limit.

    Raises:
        LthkitError: the kata is unknown, or the function's source cannot be sent.
    """
    name = kata or getattr(function, "__name__", "")
    if name not in kata_names():
        raise LthkitError(f"{getattr(function, '__name__', function)!r} is not a graded kata; pass kata= one of "
                          f"{', '.join(kata_names())}")
    spec = get_kata(name)
    submission = submission_from_function(function)
    if submission.chunks and function.__name__ != spec.function:
        # The sandbox looks the function up by the kata's name.
        submission = Submission(submission.name, submission.chunks + (
            ("alias", f"{spec.function} = {function.__name__}\n"),), submission.notes)
    return grade_submission(submission, spec, limits)


def find_submissions(paths) -> list[Path]:
    """Expand files and folders into ``.py``/``.ipynb`` submissions (folders recursively, sorted).

    Raises:
        LthkitError: a path does not exist, is not a .py/.ipynb file, or a folder holds none.
    """
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                            and not any(part.startswith(".") or part == "__pycache__"
                                        for part in p.relative_to(path).parts))
            if not inside:
                raise LthkitError(f"{path} holds no .py or .ipynb submissions")
            found.extend(inside)
        elif path.is_file():
            if path.suffix not in SUFFIXES:
                raise LthkitError(f"{path} is not a .py or .ipynb file")
            found.append(path)
        else:
            raise LthkitError(f"no such file or folder: {path}")
    return list(dict.fromkeys(found))


def grade_paths(paths, katas=(DEFAULT_KATA,), limits: Limits = Limits(), workers: int | None = None,
                progress: bool = False) -> list[GradeReport]:
    """Grade every submission under ``paths`` on every kata in ``katas``, several sandboxes at once.

    Args:
        paths: files and folders (see :func:`find_submissions`).
        katas: kata names, and ``"questions"`` for a notebook's recorded answers
            (:func:`lthkit.grading.questions.grade_notebook_questions`).
        limits: timeout and memory limit of each sandbox.
        workers: sandboxes run at once (default: the number of CPU cores, at most 4).
        progress: show a progress bar.

    Returns:
        One report per submission and kata, in the order of the submissions.
    """
    return grade_jobs([(path, kata) for path in find_submissions(paths) for kata in katas], limits, workers,
                      progress)


def grade_jobs(jobs, limits: Limits = Limits(), workers: int | None = None, progress: bool = False,
               on_report=None) -> list[GradeReport]:
    """Grade ``(submission, kata)`` pairs, several sandboxes at once; the batch always finishes.

    A submission that hangs or crashes holds one worker until its own timeout and no longer: the
    others go on in the other workers, and a report comes back for every job.

    Args:
        jobs: ``(path, kata)`` pairs: a ``.py`` or ``.ipynb`` file, or a
            :class:`~lthkit.grading.source.Submission`, and a kata's name (``"questions"``: a saved
            notebook's predictions and answers).
        limits: timeout and memory limit of each sandbox.
        workers: sandboxes run at once (default: the number of CPU cores, at most 4).
        progress: show a progress bar.
        on_report: ``on_report(index, report)``, called (from a worker thread) as each job finishes, to keep
            results as they come (a resumable batch).

    Returns:
        One report per job, in the order of ``jobs``.

    Raises:
        LthkitError: an unknown kata, or an isolation that ``limits`` requires is missing (before any job runs).
    """
    from .questions import QUESTIONS_KATA, grade_notebook_questions

    # A kata of None: a notebook's recorded predictions and answers ("questions"), read, not run.
    jobs = [(path, None if kata == QUESTIONS_KATA else get_kata(kata) if isinstance(kata, str) else kata)
            for path, kata in jobs]
    with single_threaded_torch():
        for spec in {spec.name: spec for _, spec in jobs if spec is not None}.values():
            prepared_inputs(spec)  # once, before the threads start
    workers = workers or min(4, os.cpu_count() or 1)
    bar = None
    if progress and len(jobs) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="grading", unit="submission")

    choose_isolation(limits.isolation)  # a required isolation that is missing stops the batch before it starts

    def grade_one(source, spec) -> GradeReport:
        if spec is None:  # a notebook's recorded answers: read, not run
            return grade_notebook_questions(source)
        try:
            submission = source if isinstance(source, Submission) else load_submission(source, spec.function)
            return grade_submission(submission, spec, limits)
        except LthkitError:
            raise
        except Exception as error:  # noqa: BLE001 - the batch always finishes, with this one as a crash
            return _failed_report(spec, str(getattr(source, "name", source)), "crash", f"the grader failed on "
                                  f"this submission ({type(error).__name__}: {str(error)[:200]})")

    def work(index):
        report = grade_one(*jobs[index])
        if on_report is not None:
            on_report(index, report)
        if bar is not None:
            bar.update(1)
        return report

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        reports = list(pool.map(work, range(len(jobs))))
    except BaseException:
        # An interrupt (or the grader's own failure): the sandboxes running now finish, within their timeout;
        # the jobs not started are dropped instead of run.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        if bar is not None:
            bar.close()
    return reports


def show(report: GradeReport) -> None:
    """Display a report: an HTML table in a Jupyter kernel, text elsewhere."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import display

        display(report)
    else:
        print(report.to_text())


def check(function, kata: str | None = None, *, timeout: float = Limits.timeout,
          memory_mb: int = Limits.memory_mb) -> None:
    """Grade your kata function and show each check, its points, a hint for a failure, and the total.

    The function runs in a separate sandbox process, on hidden models you never see, with a
    time and memory limit; your notebook's state is never touched. Given a notebook's answer sheet
    (``check(answer_sheet("02"))``, :mod:`lthkit.course.predictions`), it grades the predictions and
    questions answered in this kernel instead.

    Args:
        function: the function you wrote, e.g. ``find_winning_ticket_step``, or an answer sheet.
        kata: the kata's name, if your function is called differently.
        timeout: seconds your code may run.
        memory_mb: memory your code may allocate, in MiB.

    Example:
        >>> from lthkit.grading import check        # doctest: +SKIP
        >>> check(find_winning_ticket_step)          # doctest: +SKIP
        find_winning_ticket_step: 10/10 points (find_winning_ticket_step (notebook))
        ...
    """
    from .questions import AnswerSheet

    if isinstance(function, AnswerSheet):  # check(answer_sheet("02")): the notebook's questions, no sandbox
        show(function.grade())
        return
    show(grade_function(function, kata, Limits(timeout=timeout, memory_mb=memory_mb)))
