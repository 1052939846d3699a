"""The one shape of a study: configs → rows (a CSV) → figures → a report, with its provenance.

A study is a module of :mod:`lthkit.studies` that runs IMP configs through the one driver
(:func:`lthkit.runs.experiments.run_experiments`), turns the results into rows of a CSV, draws
figures from the rows and writes a ``README.md`` report from the folder's files, with a
``run_info.json`` of one schema (:func:`lthkit.reporting.provenance.run_info`). Each describes itself
with one :class:`Study` entry, and :data:`lthkit.studies.STUDIES` gathers them; ``python -m lthkit
report DIR`` finds a folder's study there.

Example:
    >>> from lthkit.studies import STUDIES
    >>> [(study.name, study.rows_file) for study in STUDIES.values()]
    [('paper', 'summary.csv'), ('stability', 'stability.csv'), ('anatomy', 'summary.csv'), ('sparsity_speed', 'speed.csv')]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Study:
    """One study, as the edges (the report command, the tests) see it.

    Attributes:
        name: its name (``"stability"``).
        title: one line: what it measures.
        command: the command line that runs it (``"python -m lthkit stability"``).
        rows_file: the CSV of its rows, in its results folder.
        first_column: the first column of that CSV, where two studies share a file name (``summary.csv``).
        read_rows: ``path -> rows``: the CSV, read and checked.
        write_report: ``folder -> README.md``: the report rewritten from the folder's files (nothing trained).
        figures: ``rows -> {file name: PNG bytes}``, where the figures follow from the rows alone.
    """

    name: str
    title: str
    command: str
    rows_file: str
    first_column: str
    read_rows: Callable[[Path], list]
    write_report: Callable[[Path], Path]
    figures: Callable[[list], dict] | None = None

    def holds(self, folder: Path) -> bool:
        """Whether ``folder`` is a results folder of this study (its rows file, with its first column)."""
        path = Path(folder) / self.rows_file
        if not path.is_file():
            return False
        with open(path, encoding="utf-8", errors="replace") as file:
            header = file.readline()
        return header.split(",")[0].strip() == self.first_column
