"""A paper's claims as data, judged on a study's trials, and the ``claims.csv`` every study writes.

A :class:`Claim` says what a paper states (with its section, figure or table, and "read off a
figure" where the number is a reading), how lthkit measures it (one value per trial, paired within
the trial where it compares two networks), and what would agree with it: an
:class:`~lthkit.reporting.stats.Expectation` whose tolerance is part of the claim's record, written
down before the run that judges it. :func:`judge_claims` turns the per-trial values into a 95%
interval and a verdict (*consistent*, *inconclusive* or *inconsistent*), holding claimed differences
to the study's noise floor; :func:`claims_csv_text` and :func:`claims_markdown` are the two faces
of the result, the file and the report's table.

Example:
    >>> from lthkit.reporting.stats import Expectation
    >>> claim = Claim("above", "the ticket beats dense at P_m 13.5%", "more than +0.3 points", "§2",
    ...               Expectation("at_least", 0.3, 0.1), "points", "ticket minus dense, per trial",
    ...               measure=lambda data: {0: 0.30, 1: 0.45, 2: 0.12, 3: 0.49, 4: 0.34}, floor="accuracy")
    >>> (judged,) = judge_claims([claim], data=None, floors={"accuracy": 0.15})
    >>> judged.verdict, judged.interval.n, round(judged.interval.low, 2)
    ('inconclusive', 5, 0.16)
    >>> print(claims_csv_text([judged]).splitlines()[0])
    claim_id,statement,paper_value,paper_source,estimate,interval_low,interval_high,n,unit,expectation,tolerance,noise_floor,verdict,how,note
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.files import csv_text
from ..errors import LthkitError
from .stats import VERDICTS, Expectation, Interval, headline, t_interval

#: The columns of ``claims.csv``: one row per claim a study could measure.
CLAIM_COLUMNS = ("claim_id", "statement", "paper_value", "paper_source", "estimate", "interval_low", "interval_high",
                 "n", "unit", "expectation", "tolerance", "noise_floor", "verdict", "how", "note")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, how it is measured, and what agrees with it.

    Attributes:
        id: a stable name (``claims.csv``'s ``claim_id``; tests and notebooks refer to it).
        statement: the claim in words.
        paper_value: the paper's value as it states it (``"38% earlier"``).
        source: where the paper says it: section, figure or table, with "read off a figure" where
            the value is a reading of a plot; ``"—"`` for a control of ours that no paper states.
        expectation: what agrees with the claim, in ``unit``; its tolerance is fixed with the claim.
        unit: the unit of the measured values (``"points"``, ``"% earlier"``, ...).
        how: how lthkit measures it, in words.
        measure: ``data -> {trial: value}`` (``None`` or empty when the data cannot measure it).
        floor: the name of the study's noise floor that applies (``None``: none applies).
        digits: decimals shown.
        note: a deviation from the paper's protocol that bears on this claim.
    """

    id: str
    statement: str
    paper_value: str
    source: str
    expectation: Expectation
    unit: str
    how: str
    measure: Callable[[object], dict | None]
    floor: str | None = None
    digits: int = 2
    note: str = ""


@dataclass(frozen=True)
class JudgedClaim:
    """A :class:`Claim` with its measured interval, the noise floor held against it, and its verdict."""

    claim: Claim
    interval: Interval
    noise_floor: float
    verdict: str
    values: dict

    def row(self) -> dict:
        """The claim as a row of ``claims.csv`` (numbers in the claim's unit, rounded for reading)."""
        claim, interval = self.claim, self.interval

        def number(value: float) -> str:
            return "" if not math.isfinite(value) else f"{value:.{claim.digits + 2}f}"

        return {"claim_id": claim.id, "statement": claim.statement, "paper_value": claim.paper_value,
                "paper_source": claim.source, "estimate": number(interval.estimate),
                "interval_low": number(interval.low), "interval_high": number(interval.high), "n": interval.n,
                "unit": claim.unit, "expectation": claim.expectation.text(claim.digits, ""),
                "tolerance": number(claim.expectation.tolerance),
                "noise_floor": number(self.noise_floor) if claim.floor else "", "verdict": self.verdict,
                "how": claim.how, "note": claim.note}


def judge_claims(claims, data, floors: dict | None = None) -> list[JudgedClaim]:
    """Measure every claim on ``data`` and judge it: a 95% *t*-interval over trials and a verdict.

    Args:
        claims: :class:`Claim` records.
        data: whatever the claims' ``measure`` functions read (a study's rows, tables, ...).
        floors: ``{name: noise floor}`` in the claims' units (see :attr:`Claim.floor`).

    Returns:
        One :class:`JudgedClaim` per claim the data can measure, in the order of ``claims``.

    Raises:
        LthkitError: a claim names a noise floor the study did not measure.
    """
    floors = floors or {}
    judged = []
    for claim in claims:
        values = claim.measure(data)
        if not values:
            continue
        if claim.floor is not None and claim.floor not in floors:
            raise LthkitError(f"claim {claim.id!r} needs the noise floor {claim.floor!r}, which was not measured")
        floor = floors.get(claim.floor, 0.0) if claim.floor else 0.0
        interval = t_interval(list(values.values()))
        judged.append(JudgedClaim(claim, interval, floor, claim.expectation.judge(interval, floor), dict(values)))
    return judged


def claims_csv_text(judged) -> str:
    """``claims.csv``'s text: :data:`CLAIM_COLUMNS`, one row per judged claim."""
    return csv_text([claim.row() for claim in judged], CLAIM_COLUMNS)


def read_claims_csv(path) -> list[dict]:
    """A ``claims.csv`` back, checked: every column there, every verdict one of the three words.

    Raises:
        LthkitError: the file is missing, not UTF-8 CSV, lacks a column, or holds another verdict.
    """
    path = Path(path)
    if not path.is_file():
        raise LthkitError(f"no claims file at {path}")
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
        rows = list(reader)
    except (UnicodeError, csv.Error) as error:
        raise LthkitError(f"{path} is not a claims CSV ({error})") from None
    missing = [column for column in CLAIM_COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise LthkitError(f"{path} lacks the column(s) {', '.join(missing)}")
    for number, row in enumerate(rows, start=2):
        if row["verdict"] not in VERDICTS:
            raise LthkitError(f"{path} line {number}: verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}")
    return rows


def _unit_suffix(unit: str) -> str:
    """How a unit follows a number: ``"%"`` and ``"×"`` stick to it, words take a space."""
    return unit if not unit or unit[0] in "%×" else f" {unit}"


def claims_markdown(judged, *, trials_word: str = "trials") -> str:
    """The report's table of claims: the paper's value and source, our interval, what agrees, the verdict.

    A claim's :attr:`Claim.note` (a deviation from the paper's protocol) becomes a numbered note under
    the table, each distinct note once.
    """
    lines = [f"| claim | paper | source | ours: mean [95% interval] | {trials_word} | agrees when | verdict | "
             "how we measured it |", "| --- | --- | --- | --- | ---: | --- | --- | --- |"]
    notes: list[str] = []
    for item in judged:
        claim = item.claim
        unit = _unit_suffix(claim.unit)
        floor = f"; noise floor {item.noise_floor:.{claim.digits}f}{unit}" if claim.floor else ""
        marker = ""
        if claim.note:
            if claim.note not in notes:
                notes.append(claim.note)
            marker = f" [{notes.index(claim.note) + 1}]"
        lines.append(f"| {claim.statement} | {claim.paper_value} | {claim.source} | "
                     f"{item.interval.text(claim.digits, unit)} | {item.interval.n} | "
                     f"{claim.expectation.text(claim.digits, unit)}{floor} | **{item.verdict}** | {claim.how}{marker} |")
    lines += [""] + [f"[{index}] {note}  " for index, note in enumerate(notes, start=1)] if notes else []
    return "\n".join(lines).rstrip() + "\n"


def verdict_headline(judged) -> str:
    """``"3 consistent, 5 inconclusive, 0 inconsistent (of 8 claims)"`` for the judged claims."""
    return headline(item.verdict for item in judged)
