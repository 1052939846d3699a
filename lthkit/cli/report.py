"""``python -m lthkit report`` and ``paper-report``: rewrite a results folder's report from its files."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..studies import study_of

    study = study_of(args.directory)  # LthkitError: one line, exit 2
    readme = study.write_report(args.directory)
    print(f"rewrote the {study.name} report {readme} from the folder's files")
    return 0


def command_paper_report(args: argparse.Namespace) -> int:
    from ..studies.paper import update_report

    readme = update_report(args.directory)
    print(f"updated the claims and per-round tables in {readme}")
    return 0


def add_parser(commands) -> None:
    """``report`` (every results folder) and ``paper-report`` (a reproduce folder's tables only)."""
    report = commands.add_parser(
        "report", help="rewrite the README.md report of a results folder (any study: reproduce, stability, anatomy)",
        description="Rewrite DIRECTORY/README.md from the folder's CSVs and run_info.json, whichever study wrote "
                    "them (lthkit.studies.STUDIES): reproduce (the claims and per-round tables, as paper-report), "
                    "stability or anatomy (the whole report). Nothing is trained.")
    report.add_argument("directory", type=Path, help="a results folder of a study (reproduce, stability, anatomy)")
    report.set_defaults(handler=run)
    paper = commands.add_parser(
        "paper-report", help="recompute the claims and per-round tables of a reproduce folder's README.md",
        description="Recompute, from DIRECTORY/summary.csv, the table that sets each of Frankle & Carbin's "
                    "LeNet-300-100 claims beside our measurement, and the table of every round "
                    "(mean [min, max] over trials per control), inside DIRECTORY/README.md.")
    paper.add_argument("directory", type=Path, help="a folder written by `reproduce` (holds summary.csv)")
    paper.set_defaults(handler=command_paper_report)
