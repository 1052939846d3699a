"""How big the course notebooks' runs are: the mode, and the notebooks' presets.

Every notebook asks :func:`notebook_preset` for its configs; the budgets live in the one preset
registry, :mod:`lthkit.runs.presets`, beside the command line's. There are two modes:

* **full** (the default): runs a learner can afford on a laptop CPU, minutes per notebook
  (real MNIST, subsets of it where a notebook compares many runs);
* **fast** (``LTHKIT_FAST=1`` in the environment): a small subset of the *real* MNIST and
  short training budgets, so that ``make test`` can run every notebook under nbval in a couple of
  minutes. Fast mode checks that the notebooks work, not what they measure.

Presets (:data:`NOTEBOOK_PRESETS`; each a :class:`~lthkit.imp.config.LotteryConfig`):

* ``kata``: notebook 1's dense LeNet-300-100 (only its ``model``, ``train`` and ``data`` are used);
* ``imp``: notebook 2's IMP run of LeNet-300-100 (the paper's layer-wise 20%/10% rates, θ₀);
* ``imp_kata``: the budget of notebook 2's exercise, the learner's own IMP loop;
* ``explore``: the starting point of notebook 3's dashboard;
* ``rewind_lenet``, ``rewind_conv``: notebook 4's rewinding comparisons;
* ``stability``: notebook 6's instability analysis and retraining comparison.

Example:
    >>> from lthkit.course.modes import notebook_preset
    >>> config = notebook_preset("imp", fast=True)
    >>> config.model, config.rounds, config.train.iterations
    ('lenet300_100', 3, 300)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import settings
from ..core.data import REPO_ROOT
from ..core.files import atomic_write_bytes, csv_text
from ..errors import LthkitError
from ..imp.config import LotteryConfig
from ..imp.records import LotteryResult
from .modes import FAST_ENV, fast_mode

# --- the notebooks' reference runs ----------------------------------------------------------------
#
# The measured numbers a notebook states in its prose come from one committed full-mode run of that
# notebook (``results/notebooks/<notebook>/``, written by ``scripts/notebook_references.py``, which
# executes the notebook with ``$LTHKIT_RECORD_REFERENCE`` set). The notebook calls
# :func:`compare_with_reference` on its own runs: it prints them beside that reference and, while
# recording, writes them there. So the reference *is* the notebook's run, not a copy of its configs.

#: Where the notebooks' committed full-mode reference runs live.
REFERENCE_ROOT = REPO_ROOT / "results" / "notebooks"
#: Set to a folder, :func:`compare_with_reference` also writes the runs it is given under it.
RECORD_ENV = "LTHKIT_RECORD_REFERENCE"
#: The columns of a reference file, ``<notebook>/<group>.csv``: one row per (run, round).
REFERENCE_COLUMNS = ("run", "control", "seed", "round", "density", "early_stop_iter", "test_acc_early_stop",
                     "test_acc_final", "train_seconds", "config_hash")
#: The columns of ``<notebook>/<group>.connectivity.csv`` (LeNet runs): surviving first-layer weights
#: per input pixel, averaged over the image, its centre 12×12 square, its top and bottom 3 rows and the
#: pixels that are 0 in every training image of the run (``blank_pixels`` of them: their weights never
#: receive a gradient), and the most of any pixel.
CONNECTIVITY_COLUMNS = ("run", "round", "density", "pixel_mean", "pixel_centre", "pixel_border", "pixel_blank",
                        "blank_pixels", "pixel_max")


def config_hash(config: LotteryConfig) -> str:
    """A short hash of what ``config`` trains (not of the code): equal hashes, the same experiment."""
    payload = json.dumps(config.to_dict(), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def reference_rows(runs: Mapping[str, LotteryResult]) -> list[dict]:
    """One :data:`REFERENCE_COLUMNS` row per (run, round) of ``runs`` (``{label: result}``)."""
    return [{"run": label, "control": result.config.control, "seed": result.config.seed, "round": r.round,
             "density": r.density, "early_stop_iter": r.early_stop_iteration,
             "test_acc_early_stop": r.test_acc_early_stop, "test_acc_final": r.test_acc_final,
             "train_seconds": round(r.train.seconds, 2), "config_hash": config_hash(result.config)}
            for label, result in runs.items() for r in result.rounds]


def connectivity_rows(runs: Mapping[str, LotteryResult]) -> list[dict]:
    """:data:`CONNECTIVITY_COLUMNS` rows for the runs whose first layer is fully connected to the pixels."""
    from ..reporting.plots import input_connectivity  # numpy only; kept out of the module's import time

    from ..core.data import get_data

    rows = []
    for label, result in runs.items():
        blank = None
        for round_result, masks in zip(result.rounds, result.masks):
            try:
                counts = input_connectivity(masks)
            except LthkitError:  # a convolution first: no pixel-by-pixel weights
                break
            if blank is None:  # the pixels that are 0 in every training image of the run
                images = get_data(result.config.data, device="cpu").train_x[:, 0]
                blank = (images == images.min()).all(0).numpy()
            rows.append({"run": label, "round": round_result.round, "density": round_result.density,
                         "pixel_mean": float(counts.mean()), "pixel_centre": float(counts[8:20, 8:20].mean()),
                         "pixel_border": float(np.concatenate([counts[:3].ravel(), counts[-3:].ravel()]).mean()),
                         "pixel_blank": float(counts[blank].mean()) if blank.any() else float("nan"),
                         "blank_pixels": int(blank.sum()), "pixel_max": int(counts.max())})
    return rows


def _write_csv(path: Path, columns, rows) -> None:
    atomic_write_bytes(path, csv_text(rows, columns).encode())


def record_reference(runs: Mapping[str, LotteryResult], notebook: str, group: str, folder) -> Path:
    """Write ``runs`` as the reference ``<folder>/<notebook>/<group>.csv`` (and its connectivity file).

    Returns:
        The path of the CSV file.
    """
    path = Path(folder) / notebook / f"{group}.csv"
    _write_csv(path, REFERENCE_COLUMNS, reference_rows(runs))
    connectivity = connectivity_rows(runs)
    if connectivity:
        _write_csv(path.with_suffix(".connectivity.csv"), CONNECTIVITY_COLUMNS, connectivity)
    return path


_REFERENCE_TYPES = {"seed": int, "round": int, "density": float, "early_stop_iter": int,
                    "test_acc_early_stop": float, "test_acc_final": float, "train_seconds": float,
                    "pixel_mean": float, "pixel_centre": float, "pixel_border": float, "pixel_blank": float,
                    "blank_pixels": int, "pixel_max": int}


def read_reference_csv(path) -> list[dict]:
    """Read a reference (or connectivity) CSV back, numbers as numbers.

    Raises:
        LthkitError: the file is missing or unreadable, has no rows, or a cell is not a number
            where one belongs (the message names the file and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LthkitError(f"no reference file at {path}") from None
    except (OSError, UnicodeError) as error:
        raise LthkitError(f"cannot read {path} ({getattr(error, 'strerror', None) or error})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    for raw in reader:
        row = {}
        for column, value in raw.items():
            if column is None or value is None:
                raise LthkitError(f"{path} line {reader.line_num} has a different number of cells than the header")
            try:
                row[column] = _REFERENCE_TYPES[column](value) if column in _REFERENCE_TYPES else value
            except ValueError:
                raise LthkitError(f"{path} line {reader.line_num}: {column} is {value!r}, not a number") from None
        rows.append(row)
    if not rows:
        raise LthkitError(f"{path} holds no rows")
    return rows


def compare_with_reference(runs: Mapping[str, LotteryResult], notebook: str, group: str = "runs", *,
                           root=None, out=None) -> None:
    """Print a notebook's runs beside its committed full-mode reference run, round by round.

    The reference is ``<root>/<notebook>/<group>.csv`` (default root :data:`REFERENCE_ROOT`). Rows
    pair rounds of the same density; a run of yours with other densities (fast mode prunes fewer
    rounds) shows only where they meet. With ``$LTHKIT_RECORD_REFERENCE`` set to a folder, the runs
    are also written there as the new reference (what ``scripts/notebook_references.py`` does).

    Args:
        runs: ``{label: LotteryResult}``, the notebook's runs.
        notebook: the notebook's file name without ``.ipynb``.
        group: which of the notebook's sets of runs (``"lenet"``, ``"conv"``, ...).
        root: the folder of reference runs.
        out: where to print (default: stdout).

    Example:
        >>> compare_with_reference({}, "no_such_notebook", root="/nonexistent")  # doctest: +ELLIPSIS
        no reference run recorded at /nonexistent/no_such_notebook/runs.csv ...
    """
    out = out or sys.stdout
    record = settings.text(RECORD_ENV)
    if record:
        if fast_mode():
            raise LthkitError(f"{RECORD_ENV} records full-mode reference runs; unset {FAST_ENV}")
        print(f"recorded as the reference: {record_reference(runs, notebook, group, record)}", file=out)
    path = Path(REFERENCE_ROOT if root is None else root) / notebook / f"{group}.csv"
    if not path.is_file():
        print(f"no reference run recorded at {path} (scripts/notebook_references.py writes it)", file=out)
        return
    reference: dict[str, list[dict]] = {}
    for row in read_reference_csv(path):
        reference.setdefault(row["run"], []).append(row)
    same = all(label in reference and reference[label][0]["config_hash"] == config_hash(result.config)
               for label, result in runs.items())
    shown = path.relative_to(REPO_ROOT) if path.resolve().is_relative_to(REPO_ROOT) else path
    print(f"test accuracy at early stop: your run beside the reference full-mode run ({shown})", file=out)
    print("your configs are the reference's: the numbers should agree up to floating-point noise" if same else
          "your configs differ from the reference's (fast mode, or changed settings): compare shapes, not digits",
          file=out)
    labels = list(reference)
    width = max(17, *(len(label) for label in labels))
    print(f"{'':>17}  " + "  ".join(f"{label:^{width}}" for label in labels), file=out)
    print(f"{'weights remaining':>17}  " + "  ".join(f"{'yours':>{width - 9}} {'reference':>8}" for _ in labels), file=out)
    for index, row in enumerate(reference[labels[0]]):
        cells = []
        for label in labels:
            ref_row = reference[label][index] if index < len(reference[label]) else None
            mine = None
            if label in runs:  # the round of yours at this density, if you ran one
                mine = next((r for r in runs[label].rounds if abs(r.density - row["density"]) < 5e-4), None)
            yours = f"{mine.test_acc_early_stop:.2%}" if mine else "·"
            theirs = f"{ref_row['test_acc_early_stop']:.2%}" if ref_row else "·"
            cells.append(f"{yours:>{width - 9}} {theirs:>8}")
        print(f"{row['density']:>17.1%}  " + "  ".join(cells), file=out)


# --- a find_ticket search as a reference run (notebook 8) ------------------------------------------

#: The columns of ``<notebook>/<group>.csv`` for a :func:`lthkit.find_ticket` search: one row per (run, round) of
#: the ticket and of each control beside it.
TICKET_COLUMNS = ("run", "round", "density", "metric", "steps", "train_seconds", "settings_hash")


def ticket_rows(ticket) -> list[dict]:
    """:data:`TICKET_COLUMNS` rows of a :class:`~lthkit.imp.ticket.WinningTicket`: its rounds, then each control's."""
    settings_hash = hashlib.sha256(json.dumps(ticket.settings, sort_keys=True).encode()).hexdigest()[:16]
    runs = {"ticket": ticket.rounds, **ticket.controls}
    return [{"run": label, "round": r.round, "density": r.density, "metric": r.metric, "steps": r.steps,
             "train_seconds": round(r.seconds, 2), "settings_hash": settings_hash}
            for label, rounds in runs.items() for r in rounds]


def compare_ticket_with_reference(ticket, notebook: str, group: str = "ticket", *, root=None, out=None) -> None:
    """Print a :func:`lthkit.find_ticket` search beside the notebook's committed full-mode one, round by round.

    The reference is ``<root>/<notebook>/<group>.csv`` (:data:`TICKET_COLUMNS`); with
    ``$LTHKIT_RECORD_REFERENCE`` set to a folder, the search is also written there as the new reference.

    Args:
        ticket: the :class:`~lthkit.imp.ticket.WinningTicket` (its rounds and its controls' are compared).
        notebook: the notebook's file name without ``.ipynb``.
        group: which of the notebook's searches.
        root: the folder of reference runs (default :data:`REFERENCE_ROOT`).
        out: where to print (default: stdout).

    Example:
        >>> import torch
        >>> from lthkit.imp.ticket import WinningTicket
        >>> ticket = WinningTicket.from_masks(torch.nn.Linear(2, 1), {"weight": torch.ones(1, 2, dtype=torch.bool)})
        >>> compare_ticket_with_reference(ticket, "no_such_notebook", root="/nonexistent")  # doctest: +ELLIPSIS
        no reference run recorded at /nonexistent/no_such_notebook/ticket.csv ...
    """
    out = out or sys.stdout
    rows = ticket_rows(ticket)
    record = settings.text(RECORD_ENV)
    if record:
        if fast_mode():
            raise LthkitError(f"{RECORD_ENV} records full-mode reference runs; unset {FAST_ENV}")
        path = Path(record) / notebook / f"{group}.csv"
        _write_csv(path, TICKET_COLUMNS, rows)
        print(f"recorded as the reference: {path}", file=out)
    path = Path(REFERENCE_ROOT if root is None else root) / notebook / f"{group}.csv"
    if not path.is_file():
        print(f"no reference run recorded at {path} (scripts/notebook_references.py writes it)", file=out)
        return
    reference: dict[str, list[dict]] = {}
    for row in _read_ticket_csv(path):
        reference.setdefault(row["run"], []).append(row)
    theirs = {row["settings_hash"] for runs in reference.values() for row in runs}
    same = {row["settings_hash"] for row in rows} == theirs
    shown = path.relative_to(REPO_ROOT) if path.resolve().is_relative_to(REPO_ROOT) else path
    print(f"metric after each round: your search beside the reference full-mode search ({shown})", file=out)
    print("your settings are the reference's: a network and loop like the notebook's should land close" if same else
          "your settings differ from the reference's (fast mode, or changed settings): compare shapes, not digits",
          file=out)
    labels = list(reference)
    mine = {label: {round(row["density"], 3): row for row in rows if row["run"] == label} for label in labels}
    print(f"{'weights remaining':>17}  " + "  ".join(f"{label + ': yours':>16} {'reference':>9}" for label in labels),
          file=out)
    for index, row in enumerate(reference[labels[0]]):
        cells = []
        for label in labels:
            theirs = reference[label][index] if index < len(reference[label]) else None
            yours = mine[label].get(round(row["density"], 3))
            cells.append(f"{_metric_text(yours):>16} {_metric_text(theirs):>9}")
        print(f"{row['density']:>17.1%}  " + "  ".join(cells), file=out)


def _metric_text(row) -> str:
    if row is None:
        return "·"
    return "—" if row["metric"] in (None, "") else f"{float(row['metric']):.2%}"


def _read_ticket_csv(path: Path) -> list[dict]:
    """A :data:`TICKET_COLUMNS` file, numbers as numbers (a metric may be empty: no ``evaluate``)."""
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
        rows = []
        for raw in reader:
            rows.append({"run": raw["run"], "round": int(raw["round"]), "density": float(raw["density"]),
                         "metric": float(raw["metric"]) if raw["metric"] not in ("", None) else None,
                         "steps": int(raw["steps"]), "train_seconds": float(raw["train_seconds"]),
                         "settings_hash": raw["settings_hash"]})
    except (OSError, UnicodeError, KeyError, TypeError, ValueError) as error:
        raise LthkitError(f"cannot read the reference {path} ({type(error).__name__}: {error})") from None
    if not rows:
        raise LthkitError(f"{path} holds no rows")
    return rows
