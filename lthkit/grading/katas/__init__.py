"""The registry of graded katas: one folder per kata, found by looking.

A kata is the folder ``lthkit/grading/katas/<name>/``, named like the function the learner writes:

* ``spec.py`` exports ``SPEC``, its :class:`~lthkit.grading.spec.KataSpec` (hidden cases, checks,
  judges and hints: the grader's process);
* ``run.py`` exports ``run(function, case, inputs, outputs)``, the sandbox's side (the only part
  of a kata the sandbox process loads: :mod:`lthkit.grading.gate`);
* ``reference.py`` exports the reference solution, a function called ``<name>``;
* ``submissions/`` holds example submissions, each with a header saying what the grader must find:
  ``# mistake: per_layer`` (a known mistake, with ``# fails: check, ...`` where it matters),
  ``# mistake: none`` (a correct solution written as a learner would), or ``# status: timeout``
  (and ``# message: ...``) for one that cannot be graded. ``tests/test_katas.py`` grades every one.

Adding a kata is adding such a folder: the CLI's ``--kata`` choices, ``check``, the sandbox, the
learner notebooks' checks and the tests read this registry.

Example:
    >>> kata_names()  # doctest: +NORMALIZE_WHITESPACE
    ['find_winning_ticket_step', 'global_magnitude_mask', 'iterative_magnitude_pruning', 'rewind_to_init',
     'interpolate', 'error_barrier', 'snip_scores', 'sign_constant_reinit', 'train_loop', 'compact_linear']
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ...errors import LthkitError

FOLDER = Path(__file__).resolve().parent
#: The katas in course order (the notebook that teaches each); a kata folder not listed here comes after them.
COURSE_ORDER = ("find_winning_ticket_step", "global_magnitude_mask", "iterative_magnitude_pruning", "rewind_to_init",
                "interpolate", "error_barrier", "snip_scores", "sign_constant_reinit", "train_loop", "compact_linear")
DEFAULT_KATA = "find_winning_ticket_step"


def folders() -> list[Path]:
    """Where kata folders are looked for: this package's folder, and any folder added to its ``__path__`` (a
    course's own katas, or a test's)."""
    return [Path(entry) for entry in __path__]


def kata_folder(name: str) -> Path:
    """The folder of kata ``name``."""
    _check_name(name)
    return next(folder / name for folder in folders() if (folder / name / "spec.py").is_file())


def kata_names() -> list[str]:
    """The names of the graded katas (also the names of the functions learners write), in course order."""
    found = sorted({path.parent.name for folder in folders() for path in folder.glob("*/spec.py")})
    return [name for name in COURSE_ORDER if name in found] + [name for name in found if name not in COURSE_ORDER]


def _check_name(name: str) -> None:
    if name not in kata_names():
        raise LthkitError(f"unknown kata {name!r}; choose one of {', '.join(kata_names())}")


def get_kata(name: str):
    """The :class:`~lthkit.grading.spec.KataSpec` of kata ``name``.

    Raises:
        LthkitError: no kata has that name.
    """
    _check_name(name)
    return importlib.import_module(f"{__name__}.{name}.spec").SPEC


def run_module(name: str) -> str:
    """The dotted name of kata ``name``'s sandbox side (``lthkit.grading.katas.<name>.run``)."""
    return f"{__name__}.{name}.run"


def get_reference(name: str):
    """The reference solution of kata ``name`` (never available to graded code).

    Raises:
        LthkitError: no kata has that name.
    """
    _check_name(name)
    return getattr(importlib.import_module(f"{__name__}.{name}.reference"), name)


def submissions(name: str) -> list[Path]:
    """The example submissions of kata ``name`` (its folder's ``submissions/*.py``), sorted.

    Raises:
        LthkitError: no kata has that name.
    """
    return sorted((kata_folder(name) / "submissions").glob("*.py"))


def expectation(path) -> dict:
    """What a submission's header says the grader must find: ``{"mistake": ...}`` or ``{"status": ...}``, with
    ``"fails"`` (a list of checks) and ``"message"`` where given.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".py") as file:
        ...     _ = file.write("# mistake: per_layer\\n# fails: global_magnitude\\ndef f(): pass\\n"); file.flush()
        ...     expectation(file.name)
        {'mistake': 'per_layer', 'fails': ['global_magnitude']}
    """
    found: dict = {}
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        if not line.startswith("# ") or ":" not in line:
            break
        key, _, value = line[2:].partition(":")
        key, value = key.strip(), value.strip()
        if key == "fails":
            found[key] = [item.strip() for item in value.split(",") if item.strip()]
        elif key in ("mistake", "status", "message"):
            found[key] = value
        else:
            break
    if "mistake" not in found and "status" not in found:
        raise LthkitError(f"{path} has no '# mistake:' or '# status:' header")
    return found
