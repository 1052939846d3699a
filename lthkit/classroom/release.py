"""Release an assignment: the learner notebooks of a chosen set of notebooks, and what is graded.

``release`` writes ``CLASS/release/<assignment>/``, the folder to hand out:

* the learner version of each chosen course notebook (solutions replaced by ``# YOUR CODE HERE``,
  as :mod:`lthkit.classroom.exercises` makes them), its first cell saying which of its katas are
  graded and for how many points;
* ``README.md``: for the learners, what to do, how to check it and what to hand in;
* ``manifest.json``: what is graded, for the other steps: the katas, the notebook that teaches
  each, their checks and points (a kata's points in the gradebook default to the sum of its
  checks' points; ``--points kata=N`` scales it).

Which katas a notebook teaches is read from the notebook itself: the top-level functions defined
in its solution cells (``### BEGIN SOLUTION``) that are katas.

Example:
    >>> import nbformat
    >>> notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "def error_barrier(errors):\\n    ### BEGIN SOLUTION\\n    return 0.0\\n    ### END SOLUTION")])
    >>> notebook_katas(notebook)
    ['error_barrier']
"""

from __future__ import annotations

import ast
import datetime
import json
from pathlib import Path

import nbformat

from .. import __version__
from ..errors import LthkitError
from ..grading.katas import get_kata, kata_names
from .exercises import BEGIN, SOURCE_DIR, ExerciseError, learner_version, render
from .layout import ClassFolder, check_assignment

MANIFEST_VERSION = 1


def course_notebooks(source_dir: Path = SOURCE_DIR) -> list[Path]:
    """The course notebooks (``NN_name.ipynb``) of ``source_dir``, sorted."""
    return sorted(Path(source_dir).glob("[0-9][0-9]_*.ipynb"))


def notebook_katas(notebook: nbformat.NotebookNode) -> list[str]:
    """The katas a notebook teaches: the top-level functions of its solution cells that are katas, in order."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        found += [node.name for node in tree.body
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in kata_names()]
    return list(dict.fromkeys(found))


def _pick_notebooks(requested, available: list[Path]) -> list[Path]:
    """The notebooks named by ``requested`` (``01``, ``01_one_pruning_step`` or its file name)."""
    chosen = []
    for item in requested:
        text = str(item).strip().removesuffix(".ipynb")
        matches = [path for path in available if path.stem == text or path.stem.split("_")[0] == text]
        if len(matches) != 1:
            names = ", ".join(path.stem for path in available)
            raise LthkitError(f"notebook {item!r}: no such course notebook (choose from {names})")
        chosen.append(matches[0])
    return list(dict.fromkeys(chosen))


def parse_points(items) -> dict[str, float]:
    """``["kata=20", ...]`` as ``{kata: 20.0}``: the points a kata is worth in the gradebook.

    Raises:
        LthkitError: not ``kata=number``, an unknown kata, or points that are not positive.
    """
    points = {}
    for item in items or ():
        name, separator, value = str(item).partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not separator or name not in kata_names() or not number > 0 or number == float("inf"):
            raise LthkitError(f"--points {item!r}: give KATA=POINTS with a kata ({', '.join(kata_names())}) and "
                              f"a positive number")
        points[name] = number
    return points


def plan_release(assignment: str, notebooks=None, katas=None, points=None,
                 source_dir: Path = SOURCE_DIR) -> tuple[dict, dict[str, nbformat.NotebookNode]]:
    """What a release holds, changing nothing: the manifest, and the source notebooks by file name.

    Args:
        assignment: its name.
        notebooks: notebook numbers or names; by default every notebook that teaches a chosen kata
            (every notebook with exercises when no kata is chosen either).
        katas: the graded katas; by default every kata of the chosen notebooks.
        points: ``{kata: points in the gradebook}``; by default a kata's checks' points.
        source_dir: where the course notebooks are.

    Raises:
        LthkitError: an unknown notebook or kata, a kata no chosen notebook teaches, or nothing to grade.
    """
    check_assignment(assignment)
    available = course_notebooks(source_dir)
    sources = {path.name: nbformat.read(path, as_version=4) for path in available}
    taught = {name: notebook_katas(notebook) for name, notebook in sources.items()}
    for kata in katas or ():
        if kata not in kata_names():
            raise LthkitError(f"unknown kata {kata!r}; choose from {', '.join(kata_names())}")
    if notebooks:
        chosen = [path.name for path in _pick_notebooks(notebooks, available)]
    else:
        wanted = set(katas) if katas else set(kata_names())
        chosen = [name for name in sources if wanted & set(taught[name])]
    graded = [kata for name in chosen for kata in taught[name] if not katas or kata in katas]
    for kata in katas or ():
        if kata not in graded:
            where = [name for name in sources if kata in taught[name]]
            raise LthkitError(f"kata {kata} is taught in {', '.join(where) or 'no course notebook'}, which this "
                              f"release leaves out: add it to --notebooks")
    if not graded:
        raise LthkitError(f"the chosen notebooks ({', '.join(chosen) or 'none'}) hold no graded kata")
    points = dict(points or {})
    for kata in points:
        if kata not in graded:
            raise LthkitError(f"--points {kata}=...: {kata} is not graded in this release")
    entries = []
    for kata in graded:
        spec = get_kata(kata)
        entries.append({"name": kata, "title": spec.title,
                        "notebook": next(name for name in chosen if kata in taught[name]),
                        "max_score": spec.max_score, "points": points.get(kata, spec.max_score),
                        "checks": [{"name": check.name, "title": check.title, "points": check.points}
                                   for check in spec.checks]})
    manifest = {"manifest_version": MANIFEST_VERSION, "assignment": assignment, "lthkit_version": __version__,
                "notebooks": [{"file": name, "katas": [kata for kata in taught[name] if kata in graded],
                               "practice": [kata for kata in taught[name] if kata not in graded]}
                              for name in chosen],
                "katas": entries, "total_points": sum(entry["points"] for entry in entries)}
    return manifest, {name: sources[name] for name in chosen}


def _points(value: float) -> str:
    return f"{value:g} point{'' if value == 1 else 's'}"


def _banner(assignment: str, notebook: dict, manifest: dict) -> str:
    katas = {entry["name"]: entry for entry in manifest["katas"]}
    graded = ", ".join(f"`{kata}` ({_points(katas[kata]['points'])})" for kata in notebook["katas"])
    practice = (f" Also here, for practice and not graded: {', '.join(f'`{kata}`' for kata in notebook['practice'])}."
                if notebook["practice"] else "")
    return (f"*Assignment **{assignment}**. Graded in this notebook: {graded}.{practice} Write your code where it "
            f"says `# YOUR CODE HERE`; the cell after it checks your function (`check(...)` grades it on hidden "
            f"models, with a hint for each mistake). Until you write it, the cells that check it stop with "
            f"`NotImplementedError`; that is expected. Hand in this notebook under its own name.*")


def _readme(manifest: dict) -> str:
    assignment = manifest["assignment"]
    lines = [f"# {assignment}", "",
             "Work through the notebooks of this folder in JupyterLab (with lthkit installed: `make lab` in the "
             "lthkit checkout, or `pip install` it). Each graded function goes where the notebook says "
             "`# YOUR CODE HERE`.", "",
             "| notebook | graded function | points |", "| --- | --- | --- |"]
    for entry in manifest["katas"]:
        lines.append(f"| `{entry['notebook']}` | `{entry['name']}` | {entry['points']:g} |")
    lines += [f"| | **total** | **{manifest['total_points']:g}** |", "",
              "Check a function as often as you like, in the notebook: `from lthkit.grading import check; "
              "check(find_winning_ticket_step)` shows every check, its points and a hint for a mistake. Grading "
              "runs the same checks on models you never see: a function that works only on the notebook's network "
              "loses points.", "",
              "Hand in the notebooks under their own names (or a `.py` file with your functions). Only your "
              "imports, functions, classes and constants are graded: training cells and plots are skipped. Your "
              "code runs in a sandbox with a time and memory limit, without network.", ""]
    return "\n".join(lines)


def release(root, assignment: str, notebooks=None, katas=None, points=None, force: bool = False,
            source_dir: Path = SOURCE_DIR) -> tuple[ClassFolder, dict, bool]:
    """Write the hand-out of ``assignment`` into the class folder ``root`` (see the module's docstring).

    Args:
        root: the class folder (created if missing).
        assignment, notebooks, katas, points, source_dir: as for :func:`plan_release`.
        force: replace an earlier release of the same assignment that differs from this one (learners may
            already have it: the default refuses).

    Returns:
        ``(class folder, manifest, changed)``: ``changed`` is False when an identical release was already there.

    Raises:
        LthkitError: bad arguments (see :func:`plan_release`), or a different release is there without ``force``.
    """
    manifest, sources = plan_release(assignment, notebooks, katas, points, source_dir)
    folder = ClassFolder(Path(root), assignment)
    files = {}
    for notebook in manifest["notebooks"]:
        try:
            learner = learner_version(sources[notebook["file"]], notebook["file"],
                                      banner=_banner(assignment, notebook, manifest))
        except ExerciseError as error:
            raise LthkitError(str(error)) from None
        files[folder.release / notebook["file"]] = render(learner).encode()
    files[folder.release / "README.md"] = _readme(manifest).encode()
    previous = folder.manifest_path
    same = previous.is_file() and all(path.is_file() and path.read_bytes() == payload
                                      for path, payload in files.items())
    if same:
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
            same = {key: value for key, value in old.items() if key != "released_at"} == manifest
        except (OSError, ValueError):
            same = False
    if same:
        return folder, json.loads(previous.read_text(encoding="utf-8")), False
    if folder.release.exists() and any(folder.release.iterdir()) and not force:
        raise LthkitError(f"{folder.release} already holds a different release of {assignment} (learners may have "
                          f"it): pass --force to replace it")
    manifest = {**manifest, "released_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    files[folder.manifest_path] = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    from ..core.files import atomic_write_files

    atomic_write_files(files)
    for path in folder.release.iterdir():  # what an earlier release held and this one does not
        if path.is_file() and path not in files:
            path.unlink()
    return folder, manifest, True
