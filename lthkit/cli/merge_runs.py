"""``python -m lthkit merge-runs``: join reproduce folders that ran different trials."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..studies.paper import merge_runs

    out = merge_runs(args.folders, args.out, argv=["python", "-m", "lthkit", *(args.argv or [])])
    print(f"merged {len(args.folders)} runs into {out}: summary.csv, the figures, run_info.json, README.md")
    return 0


def add_parser(commands) -> None:
    """``merge-runs``: join reproduce folders of one protocol that ran different trials."""
    merge = commands.add_parser(
        "merge-runs", help="merge reproduce folders of one protocol that ran different trials (other machines, "
                           "other sessions)",
        description="Merge the summary.csv, run records and figures of two or more `reproduce` folders that ran the "
                    "same protocol (same config but the seed, same controls, same lthkit code version) on different "
                    "trials, and write the report's tables. Run each part from the same lthkit commit.")
    merge.add_argument("folders", type=Path, nargs="+", help="the folders written by `reproduce`")
    merge.add_argument("--out", type=Path, required=True, help="the merged folder (may be one of the folders)")
    merge.set_defaults(handler=run)
