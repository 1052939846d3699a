"""The class's grades as CSV files an LMS imports: Canvas, Moodle, nbgrader's columns, and a plain one.

One registry (:data:`FORMATS`), one function per format, each writing
``CLASS/exports/<assignment>/<file>`` from the grade records and the roster (LMS ids come from the
names of the download ``collect`` read):

* ``canvas`` (``canvas.csv``): Canvas's gradebook import: ``Student, ID, SIS User ID, SIS Login ID,
  Section`` and a column for the assignment, with the ``Points Possible`` row under the header.
  Canvas matches rows by ``ID``, its user id (the first number of a Canvas download's file names);
  a column whose name Canvas does not know becomes a new assignment (``--title`` names it, e.g.
  ``"Week 1 (1234)"`` with the Canvas assignment's id to fill an existing one).
* ``moodle`` (``moodle.csv``): the assignment's offline grading worksheet, which Moodle's "Upload
  grading worksheet" reads: ``Identifier`` (``Participant 12345``, the number in a Moodle download's
  folder names), ``Full name``, ``Email address``, ``Status``, ``Grade``, ``Maximum Grade``, ``Grade
  can be changed``, ``Last modified (submission)``, ``Last modified (grade)`` and ``Feedback comments``.
* ``nbgrader`` (``nbgrader.csv``): the columns of ``nbgrader export`` (``assignment, duedate,
  timestamp, student_id, last_name, first_name, email, raw_score, late_submission_penalty,
  score, max_score``), ``student_id`` being the learner's folder name.
* ``lthkit`` (``grades.csv``): one row per learner, a column per kata (points in the gradebook),
  the total, and the LMS ids.

Gradescope takes its results from ``python -m lthkit grade --gradescope`` inside its own
autograder, one learner at a time (docs/grading.md). A learner without the id a format matches
on is still written (with an empty id) and counted in the returned warnings.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from ..core.files import csv_text
from .layout import ClassFolder, checks_to_fix


@dataclass(frozen=True)
class Format:
    """One gradebook format: its name, the file it writes, and ``write(folder, title) -> (text, warnings)``."""

    name: str
    file: str
    describe: str
    write: Callable


def _safe(text) -> str:
    """A cell a spreadsheet will not run as a formula (a name starting with ``= + - @`` gets a leading ``'``)."""
    text = str(text if text is not None else "")
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def _records(folder: ClassFolder) -> tuple[dict, dict]:
    return folder.manifest(), folder.grades()


def _feedback_comment(record: dict) -> str:
    parts = []
    for report in record["reports"]:
        if report["status"] != "graded":
            parts.append(f"{report['kata']}: {_points(report['earned'])}/{_points(report['points'])} "
                         f"({report['status']})")
        else:
            failed = [check["name"] for check in checks_to_fix(report)]
            parts.append(f"{report['kata']}: {_points(report['earned'])}/{_points(report['points'])}"
                         + (f" (to fix: {', '.join(failed)})" if failed else ""))
    return "; ".join(parts) + ". Details in your feedback file."


def canvas_csv(folder: ClassFolder, title: str | None = None) -> tuple[str, list[str]]:
    """Canvas's gradebook import CSV (see the module's docstring)."""
    manifest, grades = _records(folder)
    column = title or folder.assignment
    columns = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section", column)
    rows = [{"Student": "    Points Possible", column: _points(manifest["total_points"])}]
    missing = []
    for learner, record in grades.items():
        lms_id = record.get("lms_id") if record.get("lms") == "canvas" else None
        if not lms_id:
            missing.append(learner)
        rows.append({"Student": _safe(record["name"]), "ID": lms_id or "", column: _points(record["points"])})
    warnings = [f"canvas.csv: {len(missing)} learners have no Canvas user id (not collected from a Canvas download): "
                f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}"] if missing else []
    return csv_text(rows, columns), warnings


MOODLE_COLUMNS = ("Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments")


def _moodle_time(iso: str) -> str:
    when = datetime.datetime.fromisoformat(iso)
    return when.strftime("%Y-%m-%d %H:%M:%S %z").strip()


def moodle_csv(folder: ClassFolder, title: str | None = None) -> tuple[str, list[str]]:
    """Moodle's offline grading worksheet (see the module's docstring)."""
    manifest, grades = _records(folder)
    rows, missing = [], []
    for learner, record in grades.items():
        lms_id = record.get("lms_id") if record.get("lms") == "moodle" else None
        if not lms_id:
            missing.append(learner)
        rows.append({"Identifier": f"Participant {lms_id}" if lms_id else "", "Full name": _safe(record["name"]),
                     "Email address": "", "Status": "Submitted for grading", "Grade": _points(record["points"]),
                     "Maximum Grade": _points(manifest["total_points"]), "Grade can be changed": "Yes",
                     "Last modified (submission)": "", "Last modified (grade)": _moodle_time(record["graded_at"]),
                     "Feedback comments": _feedback_comment(record)})
    warnings = [f"moodle.csv: {len(missing)} learners have no Moodle participant id (not collected from a Moodle "
                f"download): {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}"] if missing else []
    return csv_text(rows, MOODLE_COLUMNS), warnings


NBGRADER_COLUMNS = ("assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score")


def nbgrader_csv(folder: ClassFolder, title: str | None = None) -> tuple[str, list[str]]:
    """The columns of ``nbgrader export`` (see the module's docstring)."""
    manifest, grades = _records(folder)
    rows = []
    for learner, record in grades.items():
        first, _, last = str(record["name"]).rpartition(" ")
        rows.append({"assignment": folder.assignment, "duedate": "", "timestamp": "", "student_id": learner,
                     "last_name": _safe(last), "first_name": _safe(first), "email": "",
                     "raw_score": _points(record["points"]), "late_submission_penalty": "0.0",
                     "score": _points(record["points"]), "max_score": _points(manifest["total_points"])})
    return csv_text(rows, NBGRADER_COLUMNS), []


def plain_csv(folder: ClassFolder, title: str | None = None) -> tuple[str, list[str]]:
    """One row per learner: a column per kata, the total, the LMS ids, whether the hand-in was late."""
    manifest, grades = _records(folder)
    katas = [entry["name"] for entry in manifest["katas"]]
    columns = ("learner", "name", "lms", "lms_id", "late", *katas, "total", "max_total")
    rows = []
    for learner, record in grades.items():
        earned = {report["kata"]: _points(report["earned"]) for report in record["reports"]}
        rows.append({"learner": learner, "name": _safe(record["name"]), "lms": record.get("lms") or "",
                     "lms_id": record.get("lms_id") or "", "late": int(bool(record.get("late"))), **earned,
                     "total": _points(record["points"]), "max_total": _points(manifest["total_points"])})
    return csv_text(rows, columns), []


#: The gradebook formats, in ``--format`` order.
FORMATS = {format.name: format for format in (
    Format("canvas", "canvas.csv", "Canvas's gradebook import", canvas_csv),
    Format("moodle", "moodle.csv", "Moodle's offline grading worksheet", moodle_csv),
    Format("nbgrader", "nbgrader.csv", "the columns of nbgrader export", nbgrader_csv),
    Format("lthkit", "grades.csv", "a row per learner, a column per kata", plain_csv),
)}


def export(folder: ClassFolder, formats=None, title: str | None = None) -> tuple[list, list[str]]:
    """Write the gradebook files of ``formats`` (all by default) into ``exports/<assignment>/``, as one set.

    Returns:
        ``(paths written, warnings)``.

    Raises:
        LthkitError: an unknown format, or nothing is graded yet.
    """
    from ..core.files import atomic_write_files
    from ..errors import LthkitError

    formats = list(formats or FORMATS)
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise LthkitError(f"unknown gradebook format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    files, warnings = {}, []
    for name in formats:
        text, said = FORMATS[name].write(folder, title)
        files[folder.exports / FORMATS[name].file] = text.encode()
        warnings += said
    return atomic_write_files(files), warnings
