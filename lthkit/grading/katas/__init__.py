"""The registry of graded katas: one folder per kata, found by looking.

A kata is the folder ``lthkit/grading/katas/<name>/``, named like the function the learner writes:

* ``spec.py`` exports ``SPEC``, its :class:`~lthkit.grading.spec.KataSpec` (hidden cases, checks,
  judges and hints: the grader's process);
* ``run.py`` exports ``run(function, case, inputs, outputs)``, the sandbox's side (the only part
  of a kata the sandbox process loads: :mod:`lthkit.grading.gate`);
* ``reference.py`` exports the reference solution, a function called ``<name>``.

Adding a kata is adding such a folder: the CLI's ``--kata`` choices, ``check``, the sandbox and
the tests read this registry.

Example:
    >>> kata_names()  # doctest: +NORMALIZE_WHITESPACE
    ['find_winning_ticket_step', 'global_magnitude_mask', 'rewind_to_init', 'interpolate', 'error_barrier',
     'snip_scores', 'sign_constant_reinit']
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ...errors import LthkitError

FOLDER = Path(__file__).resolve().parent
#: The katas in course order (the notebook that teaches each); a kata folder not listed here comes after them.
COURSE_ORDER = ("find_winning_ticket_step", "global_magnitude_mask", "rewind_to_init", "interpolate", "error_barrier",
                "snip_scores", "sign_constant_reinit")
DEFAULT_KATA = "find_winning_ticket_step"


def kata_names() -> list[str]:
    """The names of the graded katas (also the names of the functions learners write), in course order."""
    found = sorted(path.parent.name for path in FOLDER.glob("*/spec.py"))
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
