"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every cache entry and saved result goes through here, so an interrupted run (Ctrl-C, a killed
kernel, a full disk) cannot leave a truncated file that a later run would trust.

* :func:`atomic_write_files` writes several files as a set (a run's results, CSV and figures):
  every payload goes to a temporary file first, and only when all of them are on disk are they
  renamed into place, so a failure leaves the old set, not a mix.
* Files get the mode a plain ``open(path, "w")`` would give them: an existing file keeps its
  mode, a new one gets ``0o666`` less the user's umask.
* Temporary names carry the writer's process id (``.results.json.<pid>.<random>.tmp``); a write
  into a folder first removes the temporary files there whose process is gone (left by a
  ``kill -9``).
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tempfile
from pathlib import Path

import torch

from ..errors import LthkitError

# ".<name>.<pid>.<random>.tmp": the pid says whether the writer may still be running.
_TEMP_PATTERN = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and set it straight back
    os.umask(mask)
    return mask


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process (or an unknown answer): leave its file alone
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writing process no longer exists.

    Returns:
        The paths removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_PATTERN.match(name)
        if match and not _process_alive(int(match.group(1))):
            path = Path(folder) / name
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _write_temporary(path: Path, payload: bytes, umask: int) -> Path:
    """``payload`` in a temporary file beside ``path``, with the mode ``path`` will have."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fchmod(file.fileno(), mode)  # mkstemp makes 0600; a result file is as readable as any other
            os.fsync(file.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def atomic_write_files(files) -> list[Path]:
    """Write several files as one set: all of them replaced, or (on any failure) none.

    Each payload first goes to a temporary file beside its target; once every one is written and
    synced they are renamed into place. On a failure (an exception, Ctrl-C) the temporary files
    are removed, the targets keep their old content and any folder this call created is removed
    again. Missing parent folders are created; a target that is a folder is refused before
    anything is written.

    Args:
        files: ``{path: bytes}`` or an iterable of ``(path, bytes)`` pairs.

    Returns:
        The paths written, in order.

    Raises:
        LthkitError: a target is a folder.
        OSError: a folder cannot be created or written (nothing was changed).

    Example:
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     written = atomic_write_files({Path(folder, "a.txt"): b"one", Path(folder, "b.txt"): b"two"})
        ...     print([path.name for path in written], written[1].read_bytes())
        ['a.txt', 'b.txt'] b'two'
    """
    items = [(Path(path), payload) for path, payload in (files.items() if isinstance(files, dict) else files)]
    for path, _ in items:
        if path.is_dir():
            raise LthkitError(f"cannot write {path}: it is a folder")
    umask = current_umask()
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    try:
        for folder in dict.fromkeys(path.parent for path, _ in items):
            created += _make_folders(folder)
            remove_stale_temporaries(folder)
        for path, payload in items:
            staged.append((_write_temporary(path, payload, umask), path))
        for temporary, path in staged:
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()  # only if still empty: nothing of anyone else's is removed
            except OSError:
                pass
        raise
    return [path for path, _ in items]


def check_writable_folder(folder, what: str, names=()) -> Path:
    """Check, changing nothing, that files can be written into ``folder`` (created if missing).

    Run before any work starts, so that an unusable output folder is found in a second, not after
    an hour of training. The nearest existing folder on the way is probed with a temporary file
    (removed at once): permission bits alone do not tell (root, read-only mounts).

    Args:
        folder: the folder the files will go to; it, or some of its parents, may not exist yet.
        what: how the message names it (``"--out runs/x"``).
        names: the files that will be written inside it; none may be a folder.

    Returns:
        ``folder`` as a :class:`~pathlib.Path`.

    Raises:
        LthkitError: the folder (or a parent) is a file, a target file is a folder, or the folder
            cannot be written.
    """
    folder = Path(folder).expanduser()
    existing = folder
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        kind = "a file" if existing.exists() else "a broken link"
        raise LthkitError(f"{what}: {existing} is {kind}, not a folder")
    for name in names if existing == folder else ():
        if (folder / name).is_dir():
            raise LthkitError(f"{what}: {folder / name} is a folder, so the file cannot be written")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=f".lthkit-probe.{os.getpid()}.", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise LthkitError(f"{what}: cannot write in {existing} ({error.strerror or error})") from None
    return folder


def atomic_write_bytes(path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file renamed into place."""
    atomic_write_files([(path, payload)])


def json_bytes(data) -> bytes:
    """``data`` as indented JSON text, the format of every JSON file lthkit writes."""
    return (json.dumps(data, indent=1) + "\n").encode()


def csv_text(rows, columns) -> str:
    """``rows`` (dicts) as CSV text with ``columns``, header first: the one CSV format of lthkit's results.

    Keys of a row that are not columns are left out; a column a row lacks is empty.

    Example:
        >>> print(csv_text([{"round": 0, "density": 1.0, "note": "x"}], ["round", "density"]), end="")
        round,density
        0,1.0
    """
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_typed_csv(path, types: dict, what: str, *, blank_is_none: bool = False) -> list[dict]:
    """A CSV that lthkit wrote, read back with its typed columns converted (``types``: column → ``int``,
    ``float`` or ``bool``, the others kept as text).

    Args:
        path: the CSV file.
        types: how to convert each typed column (``bool`` reads ``"True"`` as True, anything else False).
        what: what the file should be, for the error (``"a results CSV of lthkit.studies.stability"``).
        blank_is_none: an empty typed cell reads as None (otherwise it is an error).

    Returns:
        The rows, as dicts in the header's order.

    Raises:
        LthkitError: the file is missing, or is not such a CSV (a row of the wrong length, a cell that is
            not its column's type).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "rows.csv"
        >>> _ = path.write_text("round,density,stable,note\\n1,0.8,True,x\\n")
        >>> read_typed_csv(path, {"round": int, "density": float, "stable": bool}, "a test CSV")
        [{'round': 1, 'density': 0.8, 'stable': True, 'note': 'x'}]
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise LthkitError(f"no results file at {path}")
    rows = []
    try:
        for raw in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            row = {}
            for key, value in raw.items():
                if key is None or value is None:
                    raise ValueError("a row has more or fewer fields than the header")
                kind = types.get(key)
                if kind is None:
                    row[key] = value
                elif value == "" and blank_is_none:
                    row[key] = None
                elif kind is bool:
                    row[key] = value == "True"
                else:
                    row[key] = kind(value)
            rows.append(row)
    except (ValueError, UnicodeError, csv.Error) as error:
        raise LthkitError(f"{path} is not {what} ({error})") from None
    return rows


def atomic_write_json(path, data) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_bytes(path, json_bytes(data))


def tensor_bytes(obj) -> bytes:
    """``torch.save`` of ``obj`` into bytes (read back with ``torch.load(..., weights_only=True)``)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_save_tensors(path, obj) -> None:
    """``torch.save`` ``obj`` (tensors in dicts and lists) to ``path``, atomically.

    Read it back with ``torch.load(path, weights_only=True)``: nothing but tensors and plain
    containers is ever unpickled.
    """
    atomic_write_bytes(path, tensor_bytes(obj))


def figure_png(figure, dpi: int) -> bytes:
    """A matplotlib figure as PNG bytes (to be written with the other files of a set)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


#: A generated report keeps the hand-written text between these markers when it is written again.
NOTES_BEGIN, NOTES_END = "<!-- notes:begin -->", "<!-- notes:end -->"


def with_kept_notes(readme, text: str) -> str:
    """``text`` (a generated report) with the notes block of the report already at ``readme``, if any.

    The notes block, from :data:`NOTES_BEGIN` to :data:`NOTES_END`, is what a person wrote about the
    measurement; regenerating the tables must not lose it. It is put back at the end of ``text``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "README.md"
        >>> _ = path.write_text("# old\\n<!-- notes:begin -->\\nwhy\\n<!-- notes:end -->\\n")
        >>> with_kept_notes(path, "# new\\n").splitlines()
        ['# new', '', '<!-- notes:begin -->', 'why', '<!-- notes:end -->']
    """
    try:
        old = Path(readme).read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return text
    begin, end = old.find(NOTES_BEGIN), old.find(NOTES_END)
    if begin < 0 or end < begin:
        return text
    return text.rstrip("\n") + "\n\n" + old[begin:end + len(NOTES_END)] + "\n"


def read_json_record(path, *, required: bool = False) -> dict:
    """A run record (``run_info.json``) as a dict: ``{}`` when it is absent and not ``required``.

    Raises:
        LthkitError: it cannot be read, is not JSON, or is missing while ``required``.
    """
    import json

    from ..errors import LthkitError

    path = Path(path)
    if not required and not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeError) as error:
        raise LthkitError(f"cannot read {path} ({getattr(error, 'strerror', None) or error})") from None
