"""The learner versions of the course notebooks: `notebooks/*.ipynb` → `notebooks/exercises/`.

The source notebooks hold the solutions between `### BEGIN SOLUTION` and `### END SOLUTION` lines.
In the learner version each such block, markers included, becomes

    # YOUR CODE HERE
    raise NotImplementedError

at the indentation of its `### BEGIN SOLUTION` line. Cells tagged `exercise-check` (the cells that
call an exercise function) also get nbval's `raises-exception` tag: until the learner writes the
function they raise NotImplementedError, and `notebooks/conftest.py` checks under nbval that this
is exactly what they raise. Cells tagged `solution-only` (e.g. asserting that the solution earns
full marks from the grader) are left out of the learner version. Outputs are dropped, except the
tiny ones nbval compares (`nbval-check-output` cells). Notebooks without solutions get no learner
version.

Usage (``scripts/make_exercises.py`` is a thin wrapper around :func:`main`):
    python scripts/make_exercises.py          # (re)write notebooks/exercises/
    python scripts/make_exercises.py --check  # exit 1, naming them, if any learner version is stale

tests/test_exercises.py runs the check, so a stale learner version fails `make test`. This is an
instructor's tool, outside the headless core; it needs ``nbformat`` (installed with Jupyter).
``python -m lthkit course release`` (:mod:`lthkit.classroom.release`) writes the same learner
versions into a class's hand-out folder.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

from ..errors import LthkitError

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = REPO_ROOT / "notebooks"
LEARNER_DIR = SOURCE_DIR / "exercises"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EXERCISE_TAG = "exercise-check"
RAISES_TAG = "raises-exception"
CHECKED_OUTPUT_TAG = "nbval-check-output"
SOLUTION_ONLY_TAG = "solution-only"
PLACEHOLDER = ("# YOUR CODE HERE", "raise NotImplementedError")


class ExerciseError(LthkitError):
    """A source notebook whose solution markers cannot be turned into an exercise."""


def strip_solutions(source: str, where: str = "cell") -> tuple[str, int]:
    """Replace every solution block of a cell's source by the placeholder.

    Args:
        source: the cell's code.
        where: names the cell in error messages.

    Returns:
        ``(new source, number of blocks replaced)``.

    Raises:
        ExerciseError: a marker without its partner, or nested markers.

    Example:
        >>> strip_solutions("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION")[0]
        'def f():\\n    # YOUR CODE HERE\\n    raise NotImplementedError'
    """
    lines = source.splitlines(keepends=True)
    kept, blocks, inside = [], 0, None
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside is not None:
                raise ExerciseError(f"{where}: line {number} opens a solution inside the one opened at line {inside}")
            inside = number
            indent = line[:len(line) - len(line.lstrip())]
            kept.extend(f"{indent}{text}\n" for text in PLACEHOLDER)
        elif marker == END:
            if inside is None:
                raise ExerciseError(f"{where}: line {number} closes a solution that was never opened")
            inside = None
            blocks += 1
        elif inside is None:
            kept.append(line)
    if inside is not None:
        raise ExerciseError(f"{where}: the solution opened at line {inside} is never closed")
    stripped = "".join(kept)
    if blocks and not source.endswith("\n"):
        stripped = stripped.removesuffix("\n")  # a cell that ended with its solution ends with the placeholder
    return stripped, blocks


def learner_version(notebook: nbformat.NotebookNode, name: str, banner: str | None = None
                    ) -> nbformat.NotebookNode | None:
    """The learner version of a source notebook, or ``None`` when it holds no solution.

    Args:
        notebook: the source notebook, with its solutions.
        name: its file name (for messages and the default banner).
        banner: the Markdown of the learner version's first cell; by default it points to the source
            notebook beside ``notebooks/exercises/``.
    """
    learner = copy.deepcopy(notebook)
    learner.cells = [cell for cell in learner.cells if SOLUTION_ONLY_TAG not in cell.metadata.get("tags", [])]
    blocks = 0
    for index, cell in enumerate(learner.cells):
        if cell.cell_type != "code":
            continue
        cell.source, replaced = strip_solutions(cell.source, f"{name} cell {index}")
        blocks += replaced
        tags = list(cell.metadata.get("tags", []))
        if EXERCISE_TAG in tags and RAISES_TAG not in tags:
            tags.append(RAISES_TAG)
        if tags:
            cell.metadata["tags"] = tags
        if CHECKED_OUTPUT_TAG not in tags:
            cell.outputs = []
            cell.execution_count = None
    if blocks == 0:
        return None
    if not any(EXERCISE_TAG in cell.metadata.get("tags", []) for cell in learner.cells):
        raise ExerciseError(f"{name} has solutions but no cell tagged {EXERCISE_TAG!r} that checks them")
    if banner is None:
        banner = (f"*Learner version of [`{name}`](../{name}), generated by `scripts/make_exercises.py`: write your "
                  f"code where it says `# YOUR CODE HERE`. Until you do, the cells that check it stop with "
                  f"`NotImplementedError`; that is expected.*")
    cell = nbformat.v4.new_markdown_cell(banner)
    cell.id = "learner-banner"
    learner.cells.insert(0, cell)
    return learner


def render(notebook: nbformat.NotebookNode) -> str:
    """A notebook as the text written to disk (stable, so that an unchanged file compares equal)."""
    return nbformat.writes(notebook, version=4) + "\n"


def expected_learner_files(source_dir: Path = SOURCE_DIR, learner_dir: Path = LEARNER_DIR) -> dict[Path, str]:
    """``{learner path: its text}`` for every source notebook that holds solutions."""
    files = {}
    for path in sorted(source_dir.glob("[0-9][0-9]_*.ipynb")):
        learner = learner_version(nbformat.read(path, as_version=4), path.name)
        if learner is not None:
            files[learner_dir / path.name] = render(learner)
    return files


def stale_files(source_dir: Path = SOURCE_DIR, learner_dir: Path = LEARNER_DIR) -> list[str]:
    """Learner notebooks that are missing, out of date, or left over from a deleted source."""
    expected = expected_learner_files(source_dir, learner_dir)
    stale = [str(path) for path, text in expected.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    stale += [f"{path} (no source with solutions)" for path in sorted(learner_dir.glob("*.ipynb"))
              if path not in expected]
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale learner versions (exit 1 if any)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files()
            for path in stale:
                print(f"stale learner notebook: {path}", file=sys.stderr)
            if stale:
                print("run: python scripts/make_exercises.py", file=sys.stderr)
            return 1 if stale else 0
        LEARNER_DIR.mkdir(exist_ok=True)
        expected = expected_learner_files()
        for path, text in expected.items():
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(REPO_ROOT)}")
        for path in sorted(LEARNER_DIR.glob("*.ipynb")):
            if path not in expected:  # its source was deleted or lost its solutions
                path.unlink()
                print(f"removed {path.relative_to(REPO_ROOT)}")
        return 0
    except ExerciseError as error:
        print(f"make_exercises: {error}", file=sys.stderr)
        return 2
