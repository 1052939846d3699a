"""``python -m lthkit course``: the instructor's week, one step per subcommand, on a class folder.

::

    python -m lthkit course release   CLASS --assignment week1 --notebooks 01,02   # the hand-out + manifest
    python -m lthkit course collect   CLASS canvas-download.zip                    # one folder per learner
    python -m lthkit course grade     CLASS --workers 2                            # sandboxed, resumable
    python -m lthkit course feedback  CLASS                                        # feedback.html + .md each
    python -m lthkit course similarity CLASS                                       # pairs for a human to look at
    python -m lthkit course export    CLASS --format canvas,moodle                 # gradebook CSVs

``--assignment`` may be left out once the class folder holds one assignment. The folder's
layout and each step's files are described in :mod:`lthkit.classroom` and docs/instructors.md.
Exit status: 0 when the step did all of its work; 1 when ``collect`` refused a file or ``grade``
met a failure of the grader's own set-up (the lines say which); 2 for a usage error (one line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.fields import parse_positive

DEFAULT_TIMEOUT, DEFAULT_MEMORY_MB = 20.0, 2048
#: Defaults of ``similarity`` and the choices of ``collect --layout``, spelled out here so that ``python -m lthkit``
#: starts without importing the classroom (tests/test_classroom.py checks they are the modules' own).
THRESHOLD, MIN_SHARED, MAX_PAGES = 0.5, 60, 200
LAYOUTS = ("auto", "canvas", "moodle", "folders", "files")


def _assignment(parser, required: bool = False) -> None:
    parser.add_argument("--assignment", "-a", required=required, metavar="NAME",
                        help="the assignment (letters, digits, _ . -)" + ("" if required else
                                                                          "; default: the class folder's only one"))


def _unit_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _formats(text: str) -> list[str]:
    from ..classroom.gradebook import FORMATS
    from .common import comma_separated

    return comma_separated(text, list(FORMATS), "format")  # imported when the flag is given, not at start-up


def add_parser(commands) -> None:
    """Add ``course`` and its subcommands to the CLI's subparsers."""
    from .common import Parser

    course = commands.add_parser(
        "course", help="the instructor's week: release, collect, grade, feedback, similarity, export",
        description="Work on a class folder (nbgrader's layout: release/, submitted/, autograded/, feedback/, plus "
                    "reports/ and exports/): hand out an assignment, collect the hand-ins from folders or an LMS's "
                    "zip, grade them in sandboxes, write each learner's feedback, look for copied code, and export "
                    "the gradebook for Canvas or Moodle.")
    course.set_defaults(handler=lambda args: _usage(course))
    steps = course.add_subparsers(dest="step", metavar="STEP", parser_class=Parser)

    release = steps.add_parser(
        "release", help="write an assignment's hand-out: learner notebooks, README.md, manifest.json",
        description="Write CLASS/release/ASSIGNMENT/: the learner versions of the chosen notebooks (solutions "
                    "replaced by # YOUR CODE HERE), a README for the learners and manifest.json (the graded katas, "
                    "their checks and points).")
    release.add_argument("class_folder", type=Path, metavar="CLASS", help="the class folder (created if missing)")
    _assignment(release, required=True)
    release.add_argument("--notebooks", metavar="LIST", type=lambda text: [t for t in text.split(",") if t.strip()],
                         help="comma-separated notebook numbers or names (default: those that teach --katas, or "
                              "every notebook with exercises)")
    release.add_argument("--katas", metavar="LIST", type=_katas,
                         help="comma-separated katas to grade (default: every kata of the chosen notebooks)")
    release.add_argument("--points", metavar="KATA=N", action="append",
                         help="what a kata is worth in the gradebook (default: its checks' points); repeatable")
    release.add_argument("--force", action="store_true", help="replace an earlier, different release")
    release.set_defaults(handler=run_release)

    collect = steps.add_parser(
        "collect", help="collect hand-ins (folders, Canvas or Moodle zips) into one folder per learner",
        description="Read the hand-ins from folders and zip files: one file per learner, one folder per learner, "
                    "or an LMS's download (Canvas: lastfirst_userid_submissionid_file; Moodle: "
                    "'Full Name_id_assignsubmission_file_/'). Names are normalized; what cannot be taken "
                    "(duplicates, unreadable files, zip-slip paths, zip bombs, ...) is refused in one line each, "
                    "and the batch goes on. Exit status 1 when anything was refused.")
    collect.add_argument("class_folder", type=Path, metavar="CLASS", help="the class folder")
    collect.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="a folder or a .zip (several: all "
                                                                                  "of them together)")
    _assignment(collect)
    collect.add_argument("--layout", choices=LAYOUTS, default="auto",
                         help="how the sources name learners (default: auto, from the names)")
    collect.set_defaults(handler=run_collect)

    grade = steps.add_parser(
        "grade", help="grade every learner on every kata of the release, in sandboxes, resumably",
        description="Grade each learner's hand-in on each graded kata in the grader's sandbox, several at once. A "
                    "hand-in that hangs or crashes holds one worker until its own timeout; the others go on. Grades "
                    "are kept per learner as they finish: run it again after an interrupt and only what is not "
                    "graded yet (or changed) is graded.")
    grade.add_argument("class_folder", type=Path, metavar="CLASS", help="the class folder")
    _assignment(grade)
    grade.add_argument("--workers", type=parse_positive(int), help="sandboxes at once (default: cores, at most 4)")
    grade.add_argument("--timeout", type=parse_positive(float), default=DEFAULT_TIMEOUT,
                       help=f"seconds each hand-in may run per kata (default: {DEFAULT_TIMEOUT:g})")
    grade.add_argument("--memory-mb", type=parse_positive(int), default=DEFAULT_MEMORY_MB,
                       help=f"memory each hand-in may allocate, in MiB (default: {DEFAULT_MEMORY_MB})")
    grade.add_argument("--regrade", action="store_true", help="grade everyone again, even where grades are current")
    grade.add_argument("--require-isolation", action="store_true",
                       help="refuse to grade unless bubblewrap can isolate the hand-ins")
    grade.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    grade.set_defaults(handler=run_grade)

    feedback = steps.add_parser(
        "feedback", help="write each learner's feedback.html and feedback.md",
        description="Write CLASS/feedback/LEARNER/ASSIGNMENT/feedback.html (self-contained: no script, no external "
                    "file) and feedback.md: every check, its points, the hint for a diagnosed mistake, and the "
                    "sandbox the code ran in.")
    feedback.add_argument("class_folder", type=Path, metavar="CLASS", help="the class folder")
    _assignment(feedback)
    feedback.set_defaults(handler=run_feedback)

    similarity = steps.add_parser(
        "similarity", help="report pairs of hand-ins whose code is suspiciously alike (never changes a grade)",
        description="Compare every two learners' code for each kata with copydetect (winnowing fingerprints), "
                    "names, comments and the released starter code set aside, and write "
                    "CLASS/reports/ASSIGNMENT/similarity/: index.html, side-by-side pages, similarity.csv. It "
                    "flags pairs for a human to look at and never changes a grade.")
    similarity.add_argument("class_folder", type=Path, metavar="CLASS", help="the class folder")
    _assignment(similarity)
    similarity.add_argument("--threshold", type=_unit_fraction, default=THRESHOLD,
                            help="flag a pair when the shared code covers at least this share of either learner's "
                                 f"code (default: {THRESHOLD})")
    similarity.add_argument("--min-shared", type=parse_positive(int), default=MIN_SHARED,
                            help=f"and is at least this many normalized characters long (default: {MIN_SHARED})")
    similarity.add_argument("--pages", type=parse_positive(int), default=MAX_PAGES,
                            help=f"side-by-side pages written at most (default: {MAX_PAGES})")
    similarity.set_defaults(handler=run_similarity)

    export = steps.add_parser(
        "export", help="write the gradebook as CSV for Canvas, Moodle, nbgrader",
        description="Write CLASS/exports/ASSIGNMENT/: canvas.csv (Canvas's gradebook import), moodle.csv (Moodle's "
                    "offline grading worksheet), nbgrader.csv (nbgrader export's columns) and grades.csv (a row per "
                    "learner, a column per kata).")
    export.add_argument("class_folder", type=Path, metavar="CLASS", help="the class folder")
    _assignment(export)
    export.add_argument("--format", type=_formats, default=None, metavar="LIST",
                        help="comma-separated formats, or all (default: all)")
    export.add_argument("--title", help="the gradebook column's name (default: the assignment's; for Canvas, "
                                        "'Name (id)' fills an existing assignment)")
    export.set_defaults(handler=run_export)


def _katas(text: str) -> list[str]:
    from ..grading.katas import kata_names
    from .common import comma_separated

    return comma_separated(text, kata_names(), "kata")


def _usage(parser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _folder(args):
    from ..classroom.layout import open_class

    return open_class(args.class_folder, args.assignment)


def run_release(args: argparse.Namespace) -> int:
    from ..classroom.release import parse_points, release

    folder, manifest, changed = release(args.class_folder, args.assignment, args.notebooks, args.katas,
                                        parse_points(args.points), force=args.force)
    graded = ", ".join(f"{entry['name']} ({entry['points']:g})" for entry in manifest["katas"])
    state = "wrote" if changed else "unchanged:"
    print(f"{state} {folder.release}: {len(manifest['notebooks'])} notebooks, graded: {graded}; total "
          f"{manifest['total_points']:g} points")
    return 0


def run_collect(args: argparse.Namespace) -> int:
    from ..classroom.collect import collect

    folder, collected = collect(args.class_folder, args.sources, args.assignment, args.layout)
    for line in collected.refused:
        print(f"refused: {line}")
    for line in collected.skipped:
        print(f"skipped: {line}")
    files = sum(len(record["files"]) for record in collected.learners.values())
    layouts = ", ".join(f"{source} as {layout}" for source, layout in collected.layouts.items())
    print(f"collected {files} files of {len(collected.learners)} learners ({layouts}); {len(collected.refused)} "
          f"refused; roster: {folder.roster_path}")
    return 1 if collected.refused else 0


def run_grade(args: argparse.Namespace) -> int:
    from ..classroom.autograde import grade_class
    from ..errors import LthkitError
    from ..grading.grader import single_threaded_torch
    from ..grading.sandbox import Limits

    if args.memory_mb < 64:
        raise LthkitError(f"--memory-mb must be at least 64, got {args.memory_mb}")
    folder = _folder(args)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb,
                    isolation="bubblewrap" if args.require_isolation else "")
    try:
        with single_threaded_torch():
            result = grade_class(folder, limits, workers=args.workers, progress=not args.no_progress,
                                 regrade=args.regrade)
    except KeyboardInterrupt:
        print("lthkit course grade: interrupted; learners graded so far are kept: run it again to go on",
              file=sys.stderr)
        return 130
    records = result["records"]
    points = [record["points"] for record in records.values()]
    statuses: dict[str, int] = {}
    for record in records.values():
        for report in record["reports"]:
            key = "pass" if report["passed"] else ("fail" if report["status"] == "graded" else report["status"])
            statuses[key] = statuses.get(key, 0) + 1
    maximum = max((record["max_points"] for record in records.values()), default=0)
    mean = sum(points) / len(points) if points else 0.0
    print(f"graded {len(result['graded'])} learners, {len(result['kept'])} already graded; "
          f"{', '.join(f'{count} {status}' for status, count in sorted(statuses.items()))}")
    print(f"mean {mean:.2f} of {maximum:g} points; wrote {folder.reports / 'grades.csv'}")
    return 1 if statuses.get("setup") else 0


def run_feedback(args: argparse.Namespace) -> int:
    from ..classroom.feedback import write_feedback

    folder = _folder(args)
    written = write_feedback(folder)
    print(f"wrote feedback.html and feedback.md for {len(written) // 2} learners under {folder.root / 'feedback'}")
    return 0


def run_similarity(args: argparse.Namespace) -> int:
    from ..classroom.similarity import groups, similarity_report

    folder = _folder(args)
    results = similarity_report(folder, args.threshold, args.min_shared, args.pages)
    for kata, pairs in results.items():
        flagged = [pair for pair in pairs if pair.flagged]
        found = groups(pairs)
        print(f"{kata}: {len(flagged)} pairs flagged"
              + (f", in {len(found)} groups (largest: {len(found[0])} learners)" if found else ""))
    print(f"wrote {folder.similarity / 'index.html'} (for a human to look at; no grade changed)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..classroom.gradebook import export

    folder = _folder(args)
    written, warnings = export(folder, args.format, args.title)
    for line in warnings:
        print(f"warning: {line}")
    print(f"wrote {', '.join(str(path) for path in written)}")
    return 0
