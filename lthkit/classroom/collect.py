"""Collect hand-ins: from the layouts instructors have, into one folder per learner.

``collect`` reads folders and zip files (an LMS's "download all submissions" zip as it comes) and
finds each learner's files by the layout's names:

============  ===============================================================  =========================
layout        a learner's file                                                 learner
============  ===============================================================  =========================
``canvas``    ``lastfirst_12345_67890_name.py`` (``lastfirst_late_12345_...``  Canvas user id 12345
              when late; Canvas's file-name prefix)
``moodle``    ``Full Name_12345_assignsubmission_file/name.py`` (a folder per   Moodle participant 12345
              learner; older Moodles end the folder with ``_``), or
              ``Full Name_12345_assignsubmission_file_name.py``
``folders``   ``Alice Smith/anything/name.ipynb``: a folder per learner         the folder's name
``files``     ``alice.py``: one file per learner                               the file's name
============  ===============================================================  =========================

``auto`` (the default) tells them apart by the names; a zip of a single folder is read as that
folder. Each learner's ``.py`` and ``.ipynb`` files are copied to
``CLASS/submitted/<learner>/<assignment>/`` under normalized names, and
``CLASS/reports/<assignment>/roster.json`` records who handed in what (with the LMS's ids, for
the gradebook export) and what was refused.

What cannot be taken is refused in one line each, and the rest of the batch goes on: a file
that is not UTF-8 text or not a notebook, one larger than the grader reads, two files of one
learner under the same name (neither is kept: which one counts is the instructor's call), a
name that does not follow the layout, and in zips a path that leaves the folder (zip slip), a
link, an encrypted or damaged entry, an entry that unpacks to more than it declares or past the
size limit (a zip bomb), a zip inside the zip. System files (``__MACOSX``, ``.DS_Store``,
checkpoints) are ignored; other files (a PDF, Moodle's online text) are skipped with a note.
A learner whose every file was refused stays in the roster, so that the gradebook and the
feedback still reach them.

Example:
    >>> match_canvas("doejane_late_12345_67890_week1.py")
    {'name': 'doejane', 'late': True, 'lms_id': '12345', 'submission_id': '67890', 'file': 'week1.py'}
    >>> match_moodle(["Jane Doe_4242_assignsubmission_file_", "ticket.ipynb"])
    {'name': 'Jane Doe', 'lms_id': '4242', 'plugin': 'file', 'file': 'ticket.ipynb'}
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import LthkitError
from ..grading.source import MAX_SOURCE_BYTES
from .layout import CODE_SUFFIXES, ClassFolder, learner_id, open_class

LAYOUTS = ("auto", "canvas", "moodle", "folders", "files")
#: The most a zip may unpack to in all (a zip bomb stops here), and the most entries it may hold.
MAX_TOTAL_BYTES = 512 * 2**20
MAX_ENTRIES = 50_000
#: Names that operating systems and editors leave in folders and zips: never anyone's hand-in.
IGNORED = re.compile(r"^(__MACOSX|\.DS_Store|\._.*|Thumbs\.db|desktop\.ini|__pycache__|\.ipynb_checkpoints|\.git)$",
                     re.IGNORECASE)
_CANVAS = re.compile(r"^(?P<name>.+?)_(?P<late>late_)?(?P<lms_id>[0-9]+)_(?P<submission_id>[0-9]+)_(?P<file>.+)$",
                     re.IGNORECASE)
_MOODLE = re.compile(r"^(?P<name>.+)_(?P<lms_id>[0-9]+)_assign(?:submission|feedback)_(?P<plugin>[a-z]+)"
                     r"(?:_(?P<file>.*))?$")


class Refused(Exception):
    """One file that cannot be collected, and why (one line)."""


def match_canvas(name: str) -> dict | None:
    """The parts of a Canvas download's file name, or None."""
    found = _CANVAS.match(name)
    if not found:
        return None
    return {"name": found["name"], "late": bool(found["late"]), "lms_id": found["lms_id"],
            "submission_id": found["submission_id"], "file": found["file"]}


def match_moodle(parts) -> dict | None:
    """The parts of a Moodle download's path (folder per learner, or flat), or None."""
    parts = list(parts)
    found = _MOODLE.match(parts[0]) if parts else None
    if not found:
        return None
    inner, flat = "/".join(parts[1:]), found["file"] or ""
    if flat and inner or not (flat or inner):
        return None
    return {"name": found["name"], "lms_id": found["lms_id"], "plugin": found["plugin"], "file": flat or inner}


@dataclass
class Entry:
    """One file of a source: its path inside the source, and how to read it."""

    parts: tuple[str, ...]
    origin: str
    read: object  # () -> bytes, raising Refused


@dataclass
class Collected:
    """What :func:`collect` found.

    Attributes:
        learners: ``{learner id: record}`` (the roster's ``learners``).
        refused: one line per file or name that was refused.
        skipped: one line per file that is not a hand-in (not ``.py``/``.ipynb``).
        layouts: ``{source: layout used}``.
    """

    learners: dict = field(default_factory=dict)
    refused: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    layouts: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------- reading sources

def _read_limited(handle, origin: str, declared: int | None = None) -> bytes:
    data = handle.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise Refused(f"{origin}: larger than {MAX_SOURCE_BYTES:,} bytes, more than the grader reads")
    if declared is not None and len(data) != declared:
        raise Refused(f"{origin}: unpacks to {len(data):,} bytes but declares {declared:,} (a damaged zip, or a "
                      f"zip bomb)")
    return data


def zip_entries(path: Path, budget: list[int]) -> tuple[list[Entry], list[str]]:
    """The files of a zip, each read only when asked, and the lines for entries refused on sight.

    Raises:
        LthkitError: the file is not a zip that can be opened.
    """
    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise LthkitError(f"{path}: not a readable zip file ({error})") from None
    entries, refused = [], []
    for number, info in enumerate(infos):
        origin = f"{path.name}:{info.filename}"
        if number >= MAX_ENTRIES:
            refused.append(f"{path.name}: {len(infos) - MAX_ENTRIES:,} entries past the first {MAX_ENTRIES:,} not "
                           f"read")
            break
        name = info.filename.replace("\\", "/")
        parts = tuple(part for part in name.split("/") if part not in ("", "."))
        if name.startswith("/") or ".." in parts or any(re.match(r"^[A-Za-z]:", part) for part in parts):
            refused.append(f"{origin}: its path leaves the folder (zip slip)")
            continue
        if info.is_dir() or not parts or any(IGNORED.match(part) for part in parts):
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            refused.append(f"{origin}: a link, not a file")
            continue
        if info.flag_bits & 0x1:
            refused.append(f"{origin}: encrypted")
            continue

        def read(info=info, origin=origin):
            if info.file_size > MAX_SOURCE_BYTES:
                raise Refused(f"{origin}: declares {info.file_size:,} bytes, more than the grader reads "
                              f"({MAX_SOURCE_BYTES:,})")
            if budget[0] - info.file_size < 0:
                raise Refused(f"{origin}: not unpacked: the zip unpacks to more than {MAX_TOTAL_BYTES:,} bytes in all")
            try:
                with archive.open(info) as handle:
                    data = _read_limited(handle, origin, info.file_size)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as error:
                raise Refused(f"{origin}: damaged in the zip ({str(error)[:80]})") from None
            budget[0] -= len(data)
            return data

        entries.append(Entry(parts, origin, read))
    return entries, refused


def folder_entries(path: Path) -> tuple[list[Entry], list[str]]:
    """The files under a folder (links refused, never followed), each read only when asked."""
    entries, refused = [], []
    for directory, subfolders, names in os.walk(path, followlinks=False):
        subfolders[:] = sorted(sub for sub in subfolders if not IGNORED.match(sub))
        for sub in list(subfolders):
            if os.path.islink(os.path.join(directory, sub)):
                refused.append(f"{os.path.relpath(os.path.join(directory, sub), path.parent)}: a link, not a "
                               f"folder")
                subfolders.remove(sub)
        for name in sorted(names):
            if IGNORED.match(name):
                continue
            full = Path(directory, name)
            relative = full.relative_to(path)
            origin = str(Path(path.name, relative))
            if full.is_symlink() or not full.is_file():
                refused.append(f"{origin}: {'a link' if full.is_symlink() else 'not a plain file'}")
                continue

            def read(full=full, origin=origin):
                try:
                    with open(full, "rb") as handle:
                        return _read_limited(handle, origin)
                except OSError as error:
                    raise Refused(f"{origin}: unreadable ({error.strerror or error})") from None

            entries.append(Entry(relative.parts, origin, read))
    return entries, refused


def _without_common_folder(entries: list[Entry], layout: str) -> list[Entry]:
    """Entries all inside one folder (a zip of ``submissions/``) read as that folder's content.

    Not when that folder is itself a learner's: a Moodle learner folder, or (with ``auto``) a folder
    that holds only files whose names follow no LMS (one learner's folder; ``--layout files`` says
    otherwise).
    """
    while entries and all(len(entry.parts) > 1 for entry in entries) \
            and len({entry.parts[0] for entry in entries}) == 1 and not match_moodle(entries[0].parts):
        inner = [Entry(entry.parts[1:], entry.origin, entry.read) for entry in entries]
        if layout == "folders" and not all(len(entry.parts) > 1 for entry in inner):
            break
        if layout == "auto" and detect_layout(inner) == "files" and not any(
                match_canvas(entry.parts[0]) for entry in inner):
            break
        entries = inner
    return entries


def detect_layout(entries: list[Entry]) -> str:
    """``canvas``, ``moodle``, ``folders`` or ``files``, from the entries' names."""
    if not entries:
        return "files"
    moodle = sum(1 for entry in entries if match_moodle(entry.parts))
    canvas = sum(1 for entry in entries if len(entry.parts) == 1 and match_canvas(entry.parts[0]))
    if moodle * 2 >= len(entries):
        return "moodle"
    if canvas * 2 >= len(entries):
        return "canvas"
    return "folders" if any(len(entry.parts) > 1 for entry in entries) else "files"


# --------------------------------------------------------------------------------------------- learners

def _file_name(name: str) -> str:
    """A hand-in's file name as stored: its last part, NFC, safe characters only, suffix in lower case."""
    base = unicodedata.normalize("NFC", PurePosixPath(name).name)
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "submission"
    return f"{stem[:100]}{suffix.lower()}"


def _who(entry: Entry, layout: str) -> tuple[dict | None, str | None, str]:
    """``(identity, file name inside the hand-in, why not)`` of an entry under a layout."""
    if layout == "canvas":
        found = match_canvas(entry.parts[-1]) if len(entry.parts) == 1 else None
        if not found:
            return None, None, "does not follow Canvas's file names (lastfirst_userid_submissionid_file)"
        return ({"name": found["name"], "lms": "canvas", "lms_id": found["lms_id"],
                 "submission_id": found["submission_id"], "late": found["late"]}, found["file"], "")
    if layout == "moodle":
        found = match_moodle(entry.parts)
        if not found:
            return None, None, "does not follow Moodle's names (Full Name_id_assignsubmission_file_...)"
        if found["plugin"] != "file":
            return None, None, f"skip:Moodle's {found['plugin']} (only uploaded files are graded)"
        return {"name": found["name"], "lms": "moodle", "lms_id": found["lms_id"]}, found["file"], ""
    if layout == "folders":
        if len(entry.parts) < 2:
            return None, None, "is not inside a learner's folder"
        return {"name": entry.parts[0], "lms": None, "lms_id": None}, entry.parts[-1], ""
    if len(entry.parts) != 1:
        return None, None, "is inside a folder, but the layout is one file per learner"
    return {"name": os.path.splitext(entry.parts[0])[0], "lms": None, "lms_id": None}, entry.parts[0], ""


def _check_content(data: bytes, suffix: str, origin: str) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Refused(f"{origin}: not UTF-8 text (byte {error.start})") from None
    if "\x00" in text:
        raise Refused(f"{origin}: not text (it holds NUL bytes)")
    if suffix == ".ipynb":
        try:
            notebook = json.loads(text)
        except ValueError as error:
            raise Refused(f"{origin}: not a notebook (invalid JSON: {str(error)[:80]})") from None
        if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
            raise Refused(f"{origin}: not a notebook (no list of cells)")


def gather(sources, layout: str = "auto") -> tuple[Collected, dict]:
    """Read every source and sort its files by learner, changing nothing on disk.

    Returns:
        ``(collected, files)``: the roster's content, and ``{learner: {file name: bytes}}``.

    Raises:
        LthkitError: a source is missing or unreadable as a whole, or an unknown layout.
    """
    if layout not in LAYOUTS:
        raise LthkitError(f"--layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    collected, files = Collected(), {}
    seen: dict[tuple[str, str], list[str]] = {}
    budget = [MAX_TOTAL_BYTES]
    for source in map(Path, sources):
        if source.is_dir():
            entries, refused = folder_entries(source)
        elif source.is_file() and zipfile.is_zipfile(source):
            entries, refused = zip_entries(source, budget)
        elif source.is_file():
            raise LthkitError(f"{source}: not a folder or a zip file (a single learner's file goes in a folder)")
        else:
            raise LthkitError(f"no such file or folder: {source}")
        collected.refused += refused
        entries = _without_common_folder(entries, layout)
        used = detect_layout(entries) if layout == "auto" else layout
        collected.layouts[str(source)] = used
        for entry in entries:
            identity, name, why = _who(entry, used)
            if identity is None:
                if why.startswith("skip:"):
                    collected.skipped.append(f"{entry.origin}: {why[5:]}")
                elif entry.parts[-1].lower().endswith(CODE_SUFFIXES) or used in ("canvas", "moodle"):
                    collected.refused.append(f"{entry.origin}: {why}")
                else:
                    collected.skipped.append(f"{entry.origin}: not a .py or .ipynb file")
                continue
            learner = learner_id(identity["name"], identity["lms_id"])
            record = collected.learners.setdefault(learner, {**identity, "files": [], "refused": [], "skipped": []})
            stored = _file_name(name)
            suffix = os.path.splitext(stored)[1]
            if suffix == ".zip":
                line = f"{entry.origin}: a zip inside the hand-in is not unpacked (hand in the .py or .ipynb)"
                collected.refused.append(line)
                record["refused"].append(line)
                continue
            if suffix not in CODE_SUFFIXES:
                line = f"{entry.origin}: not a .py or .ipynb file"
                collected.skipped.append(line)
                record["skipped"].append(line)
                continue
            try:
                data = entry.read()
                _check_content(data, suffix, entry.origin)
            except Refused as refusal:
                collected.refused.append(str(refusal))
                record["refused"].append(str(refusal))
                continue
            seen.setdefault((learner, stored.lower()), []).append(entry.origin)
            files.setdefault(learner, {})[stored] = data
            record["files"].append({"name": stored, "from": entry.origin,
                                    "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    for (learner, stored), origins in seen.items():
        if len(origins) > 1:  # which one counts is the instructor's call: neither is kept
            record = collected.learners[learner]
            line = (f"{learner}: {len(origins)} files named {stored} ({', '.join(origins)}): duplicates, neither "
                    f"kept")
            collected.refused.append(line)
            record["refused"].append(line)
            record["files"] = [item for item in record["files"] if item["name"].lower() != stored]
            files[learner] = {name: data for name, data in files[learner].items() if name.lower() != stored}
    collected.learners = dict(sorted(collected.learners.items()))
    return collected, files


def collect(root, sources, assignment: str | None = None, layout: str = "auto") -> tuple[ClassFolder, Collected]:
    """Collect the hand-ins of ``sources`` (folders, zips) for an assignment of the class folder ``root``.

    The assignment's ``submitted`` folders are rebuilt from exactly these sources (pass every
    source together, late hand-ins included), and ``reports/<assignment>/roster.json`` is written
    last, so a reader sees the old roster or the new one.

    Raises:
        LthkitError: the assignment is not released, a source is unreadable as a whole, or no source
            holds any hand-in.
    """
    folder = open_class(root, assignment)
    folder.manifest()  # released?
    collected, files = gather(sources, layout)
    if not collected.learners:
        raise LthkitError(f"no hand-ins found in {', '.join(map(str, sources))} "
                          f"({len(collected.refused)} refused, {len(collected.skipped)} skipped)")
    staging = folder.root / "submitted" / f".collect-{os.getpid()}"
    try:
        for learner, named in files.items():
            for name, data in named.items():
                target = staging / learner / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        previous = folder.roster()["learners"] if folder.roster_path.is_file() else {}
        for learner in set(previous) | set(collected.learners):
            place = folder.submitted(learner)
            if place.exists():
                shutil.rmtree(place)
            if files.get(learner):
                place.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / learner, place)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    roster = {"assignment": folder.assignment,
              "collected_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "sources": collected.layouts, "learners": collected.learners,
              "refused": collected.refused, "skipped": collected.skipped}
    from ..core.files import atomic_write_json

    atomic_write_json(folder.roster_path, roster)
    return folder, collected
