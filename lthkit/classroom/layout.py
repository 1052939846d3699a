"""The class folder: where each step of an instructor's week reads and writes.

One folder holds a course's assignments, with nbgrader's folder names where they mean the same
thing (``release``, ``submitted``, ``autograded``, ``feedback``)::

    CLASS/
      release/<assignment>/                       the hand-out: learner notebooks, README.md, manifest.json
      submitted/<learner>/<assignment>/           what ``collect`` kept of a learner's hand-in
      autograded/<learner>/<assignment>/grades.json   each learner's grade reports (``grade``)
      feedback/<learner>/<assignment>/            feedback.html and feedback.md (``feedback``)
      reports/<assignment>/                       roster.json (``collect``), grades.csv (``grade``),
                                                  similarity/ (``similarity``): for the instructor only
      exports/<assignment>/                       gradebook CSVs for Canvas, Moodle, nbgrader (``export``)

A learner's folder name is a normalized name (:func:`learner_id`): lower-case ASCII letters,
digits and dashes, with the LMS's id appended where the hand-in came from an LMS download, so
that two learners with the same name never share a folder.

Example:
    >>> learner_id("Zoë Núñez-García")
    'zoe-nunez-garcia'
    >>> learner_id("Jane Doe", "12345")
    'jane-doe-12345'
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import LthkitError

#: What an assignment may be called: it names folders and gradebook columns.
ASSIGNMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: The suffixes of graded files.
CODE_SUFFIXES = (".py", ".ipynb")


def learner_id(name: str, lms_id: str | None = None) -> str:
    """A learner's folder name: ``name`` as lower-case ASCII (accents dropped, other characters as dashes).

    Args:
        name: the learner's name as the hand-in gives it (a file or folder name, an LMS's name prefix).
        lms_id: the LMS's number for the learner (Canvas's user id, Moodle's participant id), appended.

    Returns:
        At most 80 characters of ``[a-z0-9-]``; a name with no Latin letter or digit becomes
        ``learner-<8 hex digits of its hash>``.
    """
    slug = _ascii_slug(name)[:64].strip("-")
    number = _ascii_slug(lms_id or "")[:15].strip("-")
    if not slug:
        slug = "learner" if number else f"learner-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return f"{slug}-{number}" if number else slug


def _ascii_slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def check_assignment(name: str) -> str:
    """``name`` if it can name an assignment (letters, digits, ``_ . -``, at most 64), else an error."""
    if not isinstance(name, str) or not ASSIGNMENT_NAME.fullmatch(name):
        raise LthkitError(f"assignment name {name!r}: use letters, digits, '_', '.' and '-' (at most 64, "
                          f"starting with a letter or digit)")
    return name


@dataclass(frozen=True)
class ClassFolder:
    """The paths of one assignment in a class folder (see the module's docstring).

    Attributes:
        root: the class folder.
        assignment: the assignment's name.
    """

    root: Path
    assignment: str

    @property
    def release(self) -> Path:
        return self.root / "release" / self.assignment

    @property
    def manifest_path(self) -> Path:
        return self.release / "manifest.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports" / self.assignment

    @property
    def roster_path(self) -> Path:
        return self.reports / "roster.json"

    @property
    def exports(self) -> Path:
        return self.root / "exports" / self.assignment

    @property
    def similarity(self) -> Path:
        return self.reports / "similarity"

    def submitted(self, learner: str) -> Path:
        return self.root / "submitted" / learner / self.assignment

    def autograded(self, learner: str) -> Path:
        return self.root / "autograded" / learner / self.assignment / "grades.json"

    def feedback(self, learner: str) -> Path:
        return self.root / "feedback" / learner / self.assignment

    def manifest(self) -> dict:
        """The release's manifest (``release`` writes it).

        Raises:
            LthkitError: the assignment was never released here, or its manifest is unreadable.
        """
        if not self.manifest_path.is_file():
            raise LthkitError(f"{self.release} has no manifest.json: release the assignment first "
                              f"(python -m lthkit course release {self.root} --assignment {self.assignment})")
        return read_json(self.manifest_path)

    def roster(self) -> dict:
        """The roster ``collect`` wrote: every learner, their files, what was refused.

        Raises:
            LthkitError: nothing was collected for this assignment yet, or the roster is unreadable.
        """
        if not self.roster_path.is_file():
            raise LthkitError(f"nothing collected for {self.assignment} yet: run python -m lthkit course collect "
                              f"{self.root} SOURCE --assignment {self.assignment}")
        return read_json(self.roster_path)

    def grades(self) -> dict[str, dict]:
        """``{learner: their grades.json}`` for every learner of the roster who has been graded.

        Raises:
            LthkitError: nothing was graded yet.
        """
        records = {}
        for learner in self.roster()["learners"]:
            path = self.autograded(learner)
            if path.is_file():
                records[learner] = read_json(path)
        if not records:
            raise LthkitError(f"nobody's hand-in of {self.assignment} is graded yet: run python -m lthkit course "
                              f"grade {self.root} --assignment {self.assignment}")
        return records


def checks_to_fix(report: dict) -> list[dict]:
    """The checks of a saved grade report (``report["checks"]``) that a learner must still fix: not passed and
    required (a 0-point extra the kata's text does not ask for never counts)."""
    return [check for check in report["checks"] if check["status"] != "pass" and check.get("required", True)]


def read_json(path: Path) -> dict:
    """A JSON file of the class folder as a dict; a one-line error when it is unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeError) as error:
        raise LthkitError(f"cannot read {path} ({getattr(error, 'strerror', None) or error})") from None
    if not isinstance(data, dict):
        raise LthkitError(f"{path} does not hold a JSON object")
    return data


def assignments(root) -> list[str]:
    """The assignments released in the class folder ``root``, sorted."""
    folder = Path(root) / "release"
    return sorted(path.parent.name for path in folder.glob("*/manifest.json")) if folder.is_dir() else []


def open_class(root, assignment: str | None = None) -> ClassFolder:
    """The :class:`ClassFolder` of ``assignment`` in ``root``; without one, the folder's only assignment.

    Raises:
        LthkitError: ``root`` is not a folder, or no assignment is given and the folder holds none or several.
    """
    root = Path(root)
    if not root.is_dir():
        raise LthkitError(f"no such class folder: {root}")
    if assignment is not None:
        return ClassFolder(root, check_assignment(assignment))
    found = assignments(root)
    if len(found) != 1:
        listing = f"it holds {', '.join(found)}" if found else "none is released there yet"
        raise LthkitError(f"{root}: name the assignment with --assignment ({listing})")
    return ClassFolder(root, found[0])
