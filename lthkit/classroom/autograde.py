"""Grade a collected class: every learner on every kata of the release, in sandboxes, resumably.

For each learner of the roster and each kata of the manifest, the file that defines the kata's
function is graded (:func:`file_for_kata`) by :func:`lthkit.grading.grader.grade_jobs`, several
sandboxes at once: a hand-in that hangs or crashes holds one worker until its own timeout, and
the others go on. Each learner's reports are written to
``CLASS/autograded/<learner>/<assignment>/grades.json`` as soon as the last of their katas is
graded, so an interrupted run resumes where it stopped: a learner is graded again only when
their files, the katas, the limits or the grader's code changed (its fingerprint is a hash of
``lthkit/grading``'s source). ``CLASS/reports/<assignment>/grades.csv`` sums up the class, one
row per learner and kata.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import hashlib
import threading
from functools import lru_cache
from pathlib import Path

from .. import __version__
from ..core.files import atomic_write_bytes, atomic_write_json, csv_text
from ..errors import LthkitError
from ..grading.sandbox import Limits
from ..grading.source import Submission, load_submission
from .layout import ClassFolder, checks_to_fix, read_json

#: The columns of ``reports/<assignment>/grades.csv``.
CLASS_CSV_COLUMNS = ("learner", "name", "kata", "file", "score", "max_score", "points", "max_points", "status",
                     "failed_checks", "mistakes", "message")


@lru_cache(maxsize=1)
def grader_fingerprint() -> str:
    """A hash of the grader's source (``lthkit/grading``, katas included): a stored grade from other code is stale."""
    root = Path(__file__).resolve().parents[1] / "grading"
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "submissions" in path.relative_to(root).parts:
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def defined_functions(submission: Submission) -> set[str]:
    """The top-level functions a loaded submission defines (what the grader would run)."""
    names = set()
    for _, source in submission.chunks:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def file_for_kata(files: list[Path], kata: str, notebook: str) -> tuple[Path | None, str]:
    """Which of a learner's files to grade on ``kata``, and a note when the choice needs one.

    The file that defines the function; of several, the one named like the kata's notebook, else
    the first by name. When none defines it: the file named like the notebook, or the only file
    (the grader then says what is missing); else None.
    """
    defining = [path for path in files if kata in defined_functions(load_submission(path, kata))]
    named = [path for path in files if path.name == notebook]
    if len(defining) == 1:
        return defining[0], ""
    if defining:
        chosen = next((path for path in defining if path in named), defining[0])
        others = ", ".join(path.name for path in defining if path != chosen)
        return chosen, f"{kata} is defined in {chosen.name} and in {others}: {chosen.name} was graded"
    if named:
        return named[0], ""
    if len(files) == 1:
        return files[0], ""
    return None, ""


def _record_key(files: dict[str, str], manifest: dict, limits: Limits) -> dict:
    return {"files": files, "katas": {entry["name"]: entry["max_score"] for entry in manifest["katas"]},
            "limits": {"timeout": limits.timeout, "memory_mb": limits.memory_mb}, "grader": grader_fingerprint()}


def _is_current(path: Path, key: dict) -> bool:
    try:
        return path.is_file() and read_json(path).get("key") == key
    except LthkitError:  # a damaged record is graded again
        return False


def _learner_files(folder: ClassFolder, learner: str, record: dict) -> dict[str, Path]:
    place = folder.submitted(learner)
    return {item["name"]: place / item["name"] for item in record["files"] if (place / item["name"]).is_file()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan(folder: ClassFolder, limits: Limits, regrade: bool = False) -> tuple[list, dict, dict]:
    """What to grade: ``(jobs, keys, kept)``.

    ``jobs`` are ``(learner, kata entry, submission or None, file name, note)``; ``keys`` the
    resume key of every learner; ``kept`` the learners whose stored grades are current.
    """
    manifest, roster = folder.manifest(), folder.roster()
    jobs, keys, kept = [], {}, []
    for learner, record in roster["learners"].items():
        files = _learner_files(folder, learner, record)
        keys[learner] = _record_key({name: _sha256(path) for name, path in files.items()}, manifest, limits)
        if not regrade and _is_current(folder.autograded(learner), keys[learner]):
            kept.append(learner)
            continue
        ordered = [files[name] for name in sorted(files)]
        for entry in manifest["katas"]:
            path, note = file_for_kata(ordered, entry["name"], entry["notebook"]) if ordered else (None, "")
            label = f"{learner}/{path.name}" if path else learner
            if path is not None:
                submission = dataclasses.replace(load_submission(path, entry["name"]), name=label)
                if note:
                    submission = dataclasses.replace(submission, notes=(*submission.notes, note))
            elif record.get("refused"):
                submission = Submission(label, error=("error", f"nothing of yours could be graded: "
                                                               f"{record['refused'][0]}"))
            elif ordered:
                submission = Submission(label, error=("missing", f"none of your files ({', '.join(sorted(files))}) "
                                                                 f"defines {entry['name']}"))
            elif record.get("skipped"):
                submission = Submission(label, error=("missing", f"you handed in no .py or .ipynb file "
                                                                 f"({record['skipped'][0]})"))
            else:
                submission = Submission(label, error=("missing", "nothing was handed in"))
            jobs.append((learner, entry, submission, path.name if path else "", note))
    return jobs, keys, kept


def _learner_record(folder: ClassFolder, learner: str, roster_record: dict, key: dict, done: list) -> dict:
    reports = []
    for entry, report, file_name in done:
        reports.append({**report.to_dict(), "file": file_name, "points": entry["points"],
                        "earned": round(report.score / report.max_score * entry["points"], 4)
                        if report.max_score else 0.0})
    return {"learner": learner, "name": roster_record["name"], "assignment": folder.assignment,
            "lms": roster_record.get("lms"), "lms_id": roster_record.get("lms_id"),
            "late": bool(roster_record.get("late")),
            "graded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "lthkit_version": __version__, "key": key, "reports": reports,
            "points": round(sum(item["earned"] for item in reports), 4),
            "max_points": sum(item["points"] for item in reports)}


def grade_class(folder: ClassFolder, limits: Limits = Limits(), workers: int | None = None, progress: bool = False,
                regrade: bool = False, on_learner=None) -> dict:
    """Grade every learner of the roster on every kata of the manifest (see the module's docstring).

    Args:
        folder: the class folder of the assignment (released and collected).
        limits: each sandbox's timeout and memory limit.
        workers: sandboxes at once (default: the cores, at most 4).
        progress: show a progress bar.
        regrade: grade everyone again, even where the stored grades are current.
        on_learner: ``on_learner(learner, record)``, called as each learner's grades are written.

    Returns:
        ``{"graded": [learners graded now], "kept": [learners whose grades were current], "records": {learner:
        grades.json}}``.

    Raises:
        LthkitError: the assignment is not released or collected, or a required isolation is missing.
    """
    from ..grading.grader import grade_jobs

    roster = folder.roster()
    jobs, keys, kept = plan(folder, limits, regrade)
    pending = {}
    for index, (learner, *_rest) in enumerate(jobs):
        pending.setdefault(learner, []).append(index)
    finished: dict[int, object] = {}
    lock = threading.Lock()
    records = {}

    def on_report(index, report):
        learner = jobs[index][0]
        with lock:
            finished[index] = report
            if not all(number in finished for number in pending[learner]):
                return
        done = [(jobs[number][1], finished[number], jobs[number][3]) for number in pending[learner]]
        record = _learner_record(folder, learner, roster["learners"][learner], keys[learner], done)
        atomic_write_json(folder.autograded(learner), record)
        records[learner] = record
        if on_learner is not None:
            on_learner(learner, record)

    grade_jobs([(submission, entry["name"]) for _, entry, submission, _, _ in jobs], limits, workers, progress,
               on_report=on_report)
    for learner in roster["learners"]:
        if learner not in records:
            records[learner] = read_json(folder.autograded(learner))
    atomic_write_bytes(folder.reports / "grades.csv", class_csv(records).encode())
    return {"graded": sorted(pending), "kept": kept, "records": dict(sorted(records.items()))}


def class_csv(records: dict) -> str:
    """One row per learner and kata (:data:`CLASS_CSV_COLUMNS`): what the instructor reads first."""
    rows = []
    for learner, record in sorted(records.items()):
        for report in record["reports"]:
            failed = checks_to_fix(report)
            rows.append({"learner": learner, "name": record["name"], "kata": report["kata"], "file": report["file"],
                         "score": report["score"], "max_score": report["max_score"],
                         "points": f"{report['earned']:g}", "max_points": f"{report['points']:g}",
                         "status": "pass" if report["passed"] else
                         ("fail" if report["status"] == "graded" else report["status"]),
                         "failed_checks": ";".join(check["name"] for check in failed)
                         if report["status"] == "graded" else "",
                         "mistakes": ";".join(dict.fromkeys(check["mistake"] for check in report["checks"]
                                                            if check.get("mistake"))),
                         "message": " ".join(report["message"].split())})
    return csv_text(rows, CLASS_CSV_COLUMNS)
