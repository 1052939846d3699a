"""The summary CSV of IMP runs (one row per control, trial and round): write and read it.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..core.files import atomic_write_bytes, csv_text
from ..errors import LthkitError
from ..imp.branches import BRANCHES

# --- summaries ------------------------------------------------------------------------------------

#: Columns of ``summary.csv``: one row per (control, trial, round); accuracies as fractions.
SUMMARY_COLUMNS = ("control", "trial", "round", "density", "early_stop_iter", "test_acc_early_stop",
                   "test_acc_final")


def summary_rows(results) -> list[dict]:
    """One row per (control, trial, round) of the given results, with :data:`SUMMARY_COLUMNS`.

    The trial is the config's seed.
    """
    rows = []
    for result in results:
        for round_result in result.rounds:
            rows.append({"control": result.config.control, "trial": result.config.seed, "round": round_result.round,
                         "density": round_result.density, "early_stop_iter": round_result.early_stop_iteration,
                         "test_acc_early_stop": round_result.test_acc_early_stop,
                         "test_acc_final": round_result.test_acc_final})
    return rows


def summary_csv_text(results) -> str:
    """:func:`summary_rows` of ``results`` as CSV text (header first)."""
    return csv_text(summary_rows(results), SUMMARY_COLUMNS)


def write_summary_csv(path, results) -> Path:
    """Write :func:`summary_rows` of ``results`` to ``path`` (atomically)."""
    atomic_write_bytes(path, summary_csv_text(results).encode())
    return Path(path)


def _summary_integer(text: str, low: int | None = 0) -> int:
    value = int(text)  # "3", not "3.0": the writer never writes a float here
    if low is not None and value < low:
        raise ValueError(f"must be at least {low}")
    return value


def _summary_fraction(text: str, *, zero_allowed: bool = True) -> float:
    value = float(text)
    if not math.isfinite(value) or value > 1 or value < 0 or (value == 0 and not zero_allowed):
        raise ValueError("must be in (0, 1]" if not zero_allowed else "must be in [0, 1]")
    return value


_SUMMARY_CONVERTERS = {
    "control": None, "trial": lambda text: _summary_integer(text, low=None), "round": _summary_integer,
    "density": lambda text: _summary_fraction(text, zero_allowed=False), "early_stop_iter": _summary_integer,
    "test_acc_early_stop": _summary_fraction, "test_acc_final": _summary_fraction}


def read_summary_csv(path) -> list[dict]:
    """Read a ``summary.csv`` back, with numbers as numbers, checking every cell.

    Args:
        path: a file written by :func:`write_summary_csv`.

    Returns:
        One dict per row with the :data:`SUMMARY_COLUMNS` (extra columns are dropped): ``control``
        a str, ``trial``, ``round`` and ``early_stop_iter`` ints, the others floats.

    Raises:
        LthkitError: the file is missing, a folder, not UTF-8 text, lacks a column or has no rows,
            or a row is malformed (wrong number of cells, an unknown control, a non-number, a
            density outside (0, 1], an accuracy outside [0, 1], a negative round or iteration, a
            repeated (control, trial, round)); the message names the file and the line.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "summary.csv").write_text(",".join(SUMMARY_COLUMNS) + "\\nticket,0,0,1.0,300,0.97,0.96\\n")
        >>> read_summary_csv(folder / "summary.csv")[0]["early_stop_iter"]
        300
    """
    path = Path(path)
    if path.is_dir():
        raise LthkitError(f"{path} is a folder, not a summary CSV file")
    if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
        raise LthkitError(f"{path} is not a regular file")
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise LthkitError(f"no summary file at {path}") from None
    except OSError as error:
        raise LthkitError(f"cannot read {path} ({error.strerror or error})") from None
    try:
        if b"\0" in payload:
            raise UnicodeError
        text = payload.decode("utf-8-sig")
    except UnicodeError:
        raise LthkitError(f"{path} is not a text CSV file (it holds binary data)") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in SUMMARY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise LthkitError(f"{path} lacks the column(s) {', '.join(missing)}")
        rows, seen = [], {}
        for raw in reader:
            line = reader.line_num
            if None in raw or None in raw.values():
                cells = sum(v is not None for k, v in raw.items() if k is not None) + len(raw.get(None) or [])
                raise LthkitError(f"{path} line {line} has {cells} cells, the header has {len(reader.fieldnames)}")
            row = {}
            for column, convert in _SUMMARY_CONVERTERS.items():
                value = raw[column].strip()
                try:
                    row[column] = value if convert is None else convert(value)
                except ValueError as error:
                    reason = str(error) if str(error).startswith("must") else "is not a number"
                    raise LthkitError(f"{path} line {line}: {column} {value!r} {reason}") from None
            if row["control"] not in BRANCHES:
                raise LthkitError(f"{path} line {line}: unknown control {row['control']!r} "
                                  f"(expected a registered branch: {', '.join(BRANCHES)})")
            key = (row["control"], row["trial"], row["round"])
            if key in seen:
                raise LthkitError(f"{path} line {line} repeats control {key[0]}, trial {key[1]}, round {key[2]} "
                                  f"(first on line {seen[key]})")
            seen[key] = line
            rows.append(row)
    except csv.Error as error:
        raise LthkitError(f"{path} is not a readable CSV file (line {reader.line_num}: {error})") from None
    if not rows:
        raise LthkitError(f"{path} has a header but no rows (no finished round to report)")
    return rows
