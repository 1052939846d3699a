"""Grade reports as text, HTML, JSON, Gradescope ``results.json`` and a CSV summary.

Every string a submission can influence (exception messages, type names) is escaped in HTML and
kept to one line in text.

What a report holds (:class:`~lthkit.grading.spec.GradeReport`, ``--json``'s :data:`JSON_SCHEMA`):
a ``status`` (``graded``, or why the code could not be graded, with a one-line ``message``); for a
graded one, a ``cause`` (the root cause, once, when the function raised on some case: exception,
call, hidden model, line) and one row per check (:class:`~lthkit.grading.spec.CheckResult`:
``status`` pass / fail / error / not_run, points, ``message``, ``hint`` and diagnosed ``mistake``;
``required`` False for an extra, reported but never counted); ``notes`` for the learner; and the
instructor-only ``sandbox`` and ``seconds``. Every renderer here shows the same rows: a check not
run shows no hint (the cause is the one thing to fix), an extra says it is not required.

Example:
    >>> from lthkit.grading.spec import CheckResult, GradeReport
    >>> report = GradeReport("find_winning_ticket_step", "alice.py",
    ...                      (CheckResult("returns_model", "returns the model", "pass", 1, 1),))
    >>> print(report_text(report))
    find_winning_ticket_step: 1/1 points (alice.py)
      PASS       1/1  returns the model
      total  1/1
"""

from __future__ import annotations

import csv
import html
import io
import textwrap

from .. import __version__

#: The MIME type of the machine-readable copy of a report in a notebook's output.
MIMETYPE = "application/vnd.lthkit.grade+json"
WIDTH = 100

_CHECK_SCHEMA = {
    "type": "object",
    "required": ["name", "title", "status", "score", "max_score", "message", "hint", "mistake", "required"],
    "properties": {
        "name": {"type": "string"}, "title": {"type": "string"},
        "status": {"enum": ["pass", "fail", "error", "not_run"]},
        "score": {"type": "number", "minimum": 0}, "max_score": {"type": "number", "minimum": 0},
        "message": {"type": "string"}, "hint": {"type": "string"},
        "mistake": {"type": ["string", "null"]}, "required": {"type": "boolean"},
    },
    "additionalProperties": False,
}
_KATA_SCHEMA = {
    "type": "object",
    "required": ["kata", "submission", "status", "message", "score", "max_score", "passed", "seconds", "notes",
                 "sandbox", "cause", "checks"],
    "properties": {
        "kata": {"type": "string"}, "submission": {"type": "string"},
        "status": {"enum": ["graded", "syntax", "import", "reference", "error", "missing", "timeout", "memory",
                            "crash", "setup"]},
        "message": {"type": "string"}, "score": {"type": "number"}, "max_score": {"type": "number"},
        "passed": {"type": "boolean"}, "seconds": {"type": "number"}, "sandbox": {"type": "string"},
        "cause": {"type": "string"}, "notes": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "array", "items": _CHECK_SCHEMA, "minItems": 1},
    },
    "additionalProperties": False,
}
#: JSON Schema of ``python -m lthkit grade --json`` output.
JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["lthkit_version", "passed", "score", "max_score", "submissions"],
    "properties": {
        "lthkit_version": {"type": "string"}, "passed": {"type": "boolean"},
        "score": {"type": "number"}, "max_score": {"type": "number"},
        "submissions": {"type": "array", "items": {
            "type": "object",
            "required": ["submission", "passed", "score", "max_score", "katas"],
            "properties": {"submission": {"type": "string"}, "passed": {"type": "boolean"},
                           "score": {"type": "number"}, "max_score": {"type": "number"},
                           "katas": {"type": "array", "items": _KATA_SCHEMA, "minItems": 1}},
            "additionalProperties": False}},
    },
    "additionalProperties": False,
}
CSV_COLUMNS = ("submission", "kata", "score", "max_score", "status", "failed_checks", "mistakes", "message")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(_one_line(text), WIDTH, initial_indent=indent, subsequent_indent=indent)


#: How each check status reads in a table.
STATUS_WORDS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "not_run": "NOT RUN"}


def status_word(check) -> str:
    """How a check's status reads: PASS, FAIL, ERROR, NOT RUN; an extra, which nothing requires, YES or NO."""
    if not check.required and check.status in ("pass", "fail"):
        return "YES" if check.status == "pass" else "NO"
    return STATUS_WORDS[check.status]


def _points(check) -> str:
    return f"{check.score}/{check.max_score}" if check.required else "extra"


def _title(check) -> str:
    return check.title if check.required else f"{check.title} (extra: reported, not required)"


def example_summary(report) -> str:
    """The last line of a report on a notebook's own calls (:mod:`lthkit.grading.example`), instead of points."""
    required = [check for check in report.checks if check.required]
    passed = sum(check.status == "pass" for check in required)
    not_run = sum(check.status == "not_run" for check in required)
    text = f"{passed} of the grader's {len(required)} checks passed on your calls"
    if not_run:
        text += f"; {not_run} not shown by them (check() grades every check on hidden models)"
    return text


def report_text(report, *, sandbox: bool = True, points: bool = True) -> str:
    """A report as a plain-text table: each check, its status, points, what went wrong and the hint.

    Args:
        report: a :class:`~lthkit.grading.spec.GradeReport`.
        sandbox: include the isolation line (instructor-only detail; Gradescope's visible output leaves it out).
        points: show points and the total; False for a notebook's own calls, which earn none.
    """
    lines = [f"{report.kata}: {report.score}/{report.max_score} points ({report.submission})" if points
             else f"{report.kata}: the grader's checks on {report.submission}"]
    if report.status != "graded":
        lines += _wrapped(f"ERROR  {report.message}", "  ")
    else:
        if report.cause:
            lines += _wrapped(f"cause: {report.cause}", "  ")
        for check in report.checks:
            shown = _points(check) if points else ("" if check.required else "extra")
            lines.append(f"  {status_word(check):<7}  {shown:>5}  {_title(check)}")
            if check.status != "pass":
                lines += _wrapped(check.message, " " * 18)
                if check.hint:
                    lines += _wrapped(f"hint: {check.hint}", " " * 18)
    for note in report.notes:
        lines += _wrapped(f"note: {note}", "  ")
    if report.sandbox and sandbox:
        lines += _wrapped(f"isolation: {isolation_summary(report.sandbox)}", "  ")
    lines.append(f"  total  {report.score}/{report.max_score}" if points else f"  {example_summary(report)}")
    return "\n".join(lines)


def isolation_summary(sandbox: str) -> str:
    """The first part of a report's ``sandbox`` line: which isolation, in a few words."""
    return sandbox.split(";")[0].split(" (")[0] if sandbox else "unknown"


_COLORS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#9a6700", "not_run": "#6e7781"}


def report_html(report, *, points: bool = True) -> str:
    """A report as an HTML table for a notebook (everything escaped); ``points=False`` as :func:`report_text`."""
    escape = html.escape
    head = (f"<div class='lthkit-grade'><p><b>{escape(report.kata)}</b>: <b>{report.score}/{report.max_score}</b> "
            f"points <span style='color:#666'>({escape(report.submission)})</span></p>") if points else (
        f"<div class='lthkit-grade'><p><b>{escape(report.kata)}</b>: the grader's checks on "
        f"{escape(report.submission)}</p>")
    if report.status != "graded":
        body = (f"<p style='color:{_COLORS['error']}'><b>{escape(report.status.upper())}</b>: "
                f"{escape(report.message)}</p>")
    else:
        rows = []
        for check in report.checks:
            details = "" if check.status == "pass" else escape(check.message) + (
                f"<br><i>hint:</i> {escape(check.hint)}" if check.hint else "")
            rows.append(f"<tr><td style='text-align:left'>{escape(_title(check))}</td>"
                        f"<td style='color:{_COLORS[check.status] if check.required else _COLORS['not_run']};"
                        f"font-weight:bold'>{status_word(check)}</td>"
                        f"<td>{_points(check) if points or not check.required else ''}</td>"
                        f"<td style='text-align:left'>{details}</td></tr>")
        cause = (f"<p style='color:{_COLORS['fail']}'><b>cause:</b> {escape(report.cause)}</p>"
                 if report.cause else "")
        body = (cause + "<table><thead><tr><th style='text-align:left'>check</th><th>result</th><th>points</th>"
                "<th style='text-align:left'>what went wrong, and a hint</th></tr></thead><tbody>"
                + "".join(rows)
                + (f"<tr><td style='text-align:left'><b>total</b></td><td></td><td><b>{report.score}/"
                   f"{report.max_score}</b></td><td></td></tr>" if points else
                   f"<tr><td colspan='4' style='text-align:left'>{escape(example_summary(report))}</td></tr>")
                + "</tbody></table>")
    notes = "".join(f"<p style='color:#666'>note: {escape(note)}</p>" for note in report.notes)
    return head + body + notes + "</div>"


def _by_submission(reports) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for report in reports:
        grouped.setdefault(report.submission, []).append(report)
    return grouped


def reports_json(reports) -> dict:
    """The ``--json`` document (see :data:`JSON_SCHEMA`)."""
    submissions = []
    for name, group in _by_submission(reports).items():
        submissions.append({"submission": name, "passed": all(r.passed for r in group),
                            "score": sum(r.score for r in group), "max_score": sum(r.max_score for r in group),
                            "katas": [r.to_dict() for r in group]})
    return {"lthkit_version": __version__, "passed": all(r.passed for r in reports),
            "score": sum(r.score for r in reports), "max_score": sum(r.max_score for r in reports),
            "submissions": submissions}


def gradescope_results(reports) -> dict:
    """Gradescope's ``results.json`` for one student's reports: one test per check.

    Follows https://gradescope-autograders.readthedocs.io/en/latest/specs/ : a top-level score, a
    visible ``output`` (each kata's score, the cause or message, notes) and ``tests`` with ``name``,
    ``score``, ``max_score``, ``status`` (``passed``/``failed``), ``output`` and ``visibility``.
    Instructor-only details (the sandbox's isolation, the grading time) go into one more test with
    ``visibility: hidden``, which students never see; the top level has no ``execution_time``.
    """
    several = len(reports) > 1
    tests, output, details = [], [], []
    for index, report in enumerate(reports, 1):
        summary = f"{report.kata}: {report.score}/{report.max_score} points"
        output.append(f"{summary}: {report.message}" if report.status != "graded" else summary)
        if report.cause:
            output.append(f"cause: {_one_line(report.cause)}")
        for number, check in enumerate(report.checks, 1):
            text = ""
            if check.status != "pass":
                text = _one_line(check.message) + (f"\nHint: {_one_line(check.hint)}" if check.hint else "")
            title = _title(check)
            test = {"name": f"{report.kata}: {title}" if several else title,
                    "number": f"{index}.{number}" if several else str(number),
                    "score": check.score, "max_score": check.max_score,
                    "status": "passed" if check.status == "pass" else "failed",
                    "output": text, "output_format": "text", "visibility": "visible"}
            if not check.required and check.status != "pass":
                del test["status"]  # an extra not done is not a failure: no red mark
            tests.append(test)
        output.extend(f"note: {note}" for note in report.notes)
        details.append(f"{report.kata}: graded in {report.seconds:.2f} s; isolation: {report.sandbox or 'unknown'}")
    tests.append({"name": "grader details (instructors only)", "score": 0, "max_score": 0, "status": "passed",
                  "output": "\n".join(details), "output_format": "text", "visibility": "hidden"})
    return {"score": sum(r.score for r in reports), "output": "\n".join(output), "stdout_visibility": "hidden",
            "tests": tests}


def _csv_row(report) -> dict:
    failed = [check for check in report.checks if check.status != "pass" and check.required]
    return {"submission": report.submission, "kata": report.kata, "score": report.score,
            "max_score": report.max_score, "status": "pass" if report.passed else
            ("fail" if report.status == "graded" else report.status),
            "failed_checks": ";".join(check.name for check in failed) if report.status == "graded" else "",
            "mistakes": ";".join(report.mistakes),
            "message": _one_line(report.message) if report.status != "graded" else ""}


def summary_csv(reports) -> str:
    """One CSV row per submission and kata (:data:`CSV_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        writer.writerow(_csv_row(report))
    return buffer.getvalue()


def summary_table(reports) -> str:
    """A plain-text table of scores: one row per submission and kata."""
    rows = [_csv_row(report) for report in reports]
    name_width = max([len("submission")] + [len(row["submission"]) for row in rows])
    kata_width = max([len("kata")] + [len(row["kata"]) for row in rows])
    lines = [f"{'submission':<{name_width}}  {'kata':<{kata_width}}  {'score':>7}  {'status':<7}  "
             "failed checks (diagnosed mistakes) / message"]
    for row in rows:
        detail = row["message"] or row["failed_checks"].replace(";", ", ")
        if row["mistakes"]:
            detail += f" ({row['mistakes'].replace(';', ', ')})"
        score = f"{row['score']}/{row['max_score']}"
        lines.append(f"{row['submission']:<{name_width}}  {row['kata']:<{kata_width}}  {score:>7}  "
                     f"{row['status']:<7}  {detail}".rstrip())
    passed = sum(1 for report in reports if report.passed)
    lines.append(f"{passed} of {len(reports)} passed every check")
    used = sorted({isolation_summary(report.sandbox) for report in reports if report.sandbox})
    if used:
        lines.append(f"isolation: {', '.join(used)}")
    return "\n".join(lines)
