"""``python -m lthkit report`` and ``paper-report``: rewrite a results folder's report from its files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import LthkitError


def report_kind(directory: Path) -> str:
    """What a results folder holds: ``"stability"``, ``"anatomy"`` or ``"paper"`` (a ``reproduce`` folder).

    Raises:
        LthkitError: it is not a folder, or holds none of them.
    """
    if not directory.is_dir():
        raise LthkitError(f"{directory} {'is a file' if directory.exists() else 'does not exist'}; expected a results "
                          "folder of reproduce, stability or anatomy")
    if (directory / "stability.csv").is_file():
        return "stability"
    summary = directory / "summary.csv"
    if summary.is_file():
        with open(summary, encoding="utf-8", errors="replace") as file:
            header = file.readline()
        return "anatomy" if header.split(",")[0].strip() == "experiment" else "paper"
    raise LthkitError(f"{directory} holds neither stability.csv nor summary.csv; expected a results folder of "
                      "reproduce, stability or anatomy")


def run(args: argparse.Namespace) -> int:
    kind = report_kind(args.directory)
    if kind == "stability":
        from ..studies.stability import write_report
    elif kind == "anatomy":
        from ..studies.anatomy import write_report
    else:
        from ..studies.paper import update_report as write_report
    readme = write_report(args.directory)
    print(f"rewrote the {kind} report {readme} from the folder's files")
    return 0


def command_paper_report(args: argparse.Namespace) -> int:
    from ..studies.paper import update_report

    readme = update_report(args.directory)
    print(f"updated the claims and per-round tables in {readme}")
    return 0


def add_parser(commands) -> None:
    """``report`` (every results folder) and ``paper-report`` (a reproduce folder's tables only)."""
    report = commands.add_parser(
        "report", help="rewrite the README.md report of a results folder (reproduce, stability or anatomy)",
        description="Rewrite DIRECTORY/README.md from the folder's CSVs and run_info.json, whichever command wrote "
                    "them: reproduce (the claims and per-round tables, as paper-report), stability or anatomy "
                    "(the whole report). Nothing is trained.")
    report.add_argument("directory", type=Path, help="a folder written by reproduce, stability or anatomy")
    report.set_defaults(handler=run)
    paper = commands.add_parser(
        "paper-report", help="recompute the claims and per-round tables of a reproduce folder's README.md",
        description="Recompute, from DIRECTORY/summary.csv, the table that sets each of Frankle & Carbin's "
                    "LeNet-300-100 claims beside our measurement, and the table of every round "
                    "(mean [min, max] over trials per control), inside DIRECTORY/README.md.")
    paper.add_argument("directory", type=Path, help="a folder written by `reproduce` (holds summary.csv)")
    paper.set_defaults(handler=command_paper_report)
