"""``python -m lthkit grade``: grade submission files and folders from the command line.

::

    python -m lthkit grade alice.ipynb                    # one submission: its table of checks
    python -m lthkit grade submissions/                   # a folder: a summary table and submissions/grades.csv
    python -m lthkit grade submissions/ --json            # machine-readable results on stdout
    python -m lthkit grade /autograder/submission --gradescope /autograder/results   # results.json
    python -m lthkit grade 02_iterative_magnitude_pruning.ipynb --kata questions      # its predictions and questions

Exit status: 0 when every check of every submission passes, 1 when any fails (or a submission
cannot be graded), 2 for a usage error (a missing path, an unknown kata, ...), with a one-line
message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.fields import parse_positive
from ..errors import LthkitError

DEFAULT_TIMEOUT, DEFAULT_MEMORY_MB = 20.0, 2048


def _katas(text: str) -> list[str]:
    from ..grading.katas import kata_names
    from ..grading.questions import QUESTIONS_KATA
    from .common import comma_separated

    if text == "all":  # every kata; a notebook's questions only when asked for
        return kata_names()
    return comma_separated(text, [*kata_names(), QUESTIONS_KATA], "kata")


def add_parser(commands) -> None:
    """Add the ``grade`` subcommand to the CLI's subparsers."""
    grade = commands.add_parser(
        "grade", help="grade kata submissions (.py or .ipynb files, or folders of them) in a sandbox",
        description="Run each submission's kata function in a sandbox process (timeout, memory limit) on hidden "
                    "models, and report every check with its points and a hint for the mistake behind a failure. "
                    "Only the submission's imports, functions, classes and constants run. Exit status: 0 when "
                    "every check passes, 1 when any fails, 2 for usage errors.")
    grade.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                       help="a .py file, an .ipynb notebook, or a folder of them (searched recursively)")
    grade.add_argument("--kata", type=_katas, default=["find_winning_ticket_step"],
                       help="comma-separated katas to grade, 'questions' (a notebook's predictions and "
                            "end-of-notebook questions, read from its saved outputs), or all (every kata; default: "
                            "find_winning_ticket_step)")
    grade.add_argument("--json", action="store_true", help="print the results as JSON on stdout instead of tables")
    grade.add_argument("--gradescope", type=Path, metavar="DIR",
                       help="write Gradescope's DIR/results.json (for one student's submission) and nothing else "
                            "(no grades.csv; the sandbox and timings go into a hidden test)")
    grade.add_argument("--csv", type=Path, metavar="PATH",
                       help="write the summary CSV here (default: grades.csv inside each folder given)")
    grade.add_argument("--details", action="store_true",
                       help="print every submission's table of checks, not only the summary")
    grade.add_argument("--timeout", type=parse_positive(float), default=DEFAULT_TIMEOUT,
                       help=f"seconds each submission may run (default: {DEFAULT_TIMEOUT:g})")
    grade.add_argument("--memory-mb", type=parse_positive(int), default=DEFAULT_MEMORY_MB,
                       help=f"memory each submission may allocate, in MiB (default: {DEFAULT_MEMORY_MB})")
    grade.add_argument("--workers", type=parse_positive(int), help="sandboxes run at once (default: cores, at most 4)")
    grade.add_argument("--require-isolation", action="store_true",
                       help="refuse to grade unless bubblewrap can isolate the submissions (no fallback)")
    grade.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    grade.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write_bytes
    from ..grading.grader import find_submissions, grade_paths, single_threaded_torch
    from ..grading.report import gradescope_results, reports_json, summary_csv, summary_table
    from ..grading.sandbox import Limits

    files = find_submissions(args.submissions)  # LthkitError → one line, exit 2
    if args.gradescope is not None and len(files) != 1:
        raise LthkitError(f"--gradescope grades one student's submission, but the arguments hold {len(files)} files "
                          f"({', '.join(str(path) for path in files[:3])}{', ...' if len(files) > 3 else ''})")
    if args.memory_mb < 64:
        raise LthkitError(f"--memory-mb must be at least 64, got {args.memory_mb}")
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb,
                    isolation="bubblewrap" if args.require_isolation else "")
    try:
        with single_threaded_torch():
            reports = grade_paths(files, args.kata, limits, workers=args.workers,
                                  progress=not args.no_progress and not args.json)
    except KeyboardInterrupt:
        print("lthkit grade: interrupted; nothing was written", file=sys.stderr)
        return 130

    if args.json:
        print(json.dumps(reports_json(reports), indent=1, ensure_ascii=False))
    elif len(reports) == 1 or args.details:
        print("\n\n".join(report.to_text() for report in reports))
        if len(reports) > 1:
            print("\n" + summary_table(reports))
    else:
        print(summary_table(reports))

    outputs = [(args.gradescope / "results.json", lambda: json.dumps(gradescope_results(reports), indent=1) + "\n")
               ] if args.gradescope is not None else []
    # Gradescope mode writes only where Gradescope reads (DIR/results.json): nothing into the submission folder.
    csv_targets = [(args.csv, reports)] if args.csv else [] if args.gradescope is not None else [
        (folder / "grades.csv", [r for r in reports if _inside(Path(r.submission), folder)])
        for folder in args.submissions if folder.is_dir()]
    outputs += [(path, lambda rows=rows: summary_csv(rows)) for path, rows in csv_targets]
    written = []
    for path, content in outputs:
        try:
            atomic_write_bytes(path, content().encode())
        except OSError as error:
            raise LthkitError(f"cannot write {path}: {error.strerror or error}") from None
        written.append(path)
    if written:
        print(f"wrote {', '.join(map(str, written))}", file=sys.stderr if args.json else sys.stdout)
    return 0 if all(report.passed for report in reports) else 1


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
