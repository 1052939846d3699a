"""The registry of graded katas: one module per kata, each exporting ``SPEC``.

* ``find_winning_ticket_step`` (notebook 1): :mod:`.ticket_step`
* ``global_magnitude_mask`` (notebook 2): :mod:`.magnitude_mask`
* ``rewind_to_init`` (notebook 4): :mod:`.rewind`
* ``interpolate`` and ``error_barrier`` (notebook 6): :mod:`.interpolate`, :mod:`.barrier`
* ``snip_scores`` and ``sign_constant_reinit`` (notebook 7): :mod:`.snip`, :mod:`.sign_reinit`

To add a kata, write a module with a :class:`~lthkit.grading.spec.KataSpec` named ``SPEC`` and
list it in :data:`KATA_MODULES`.

Example:
    >>> sorted(kata_names())  # doctest: +NORMALIZE_WHITESPACE
    ['error_barrier', 'find_winning_ticket_step', 'global_magnitude_mask', 'interpolate', 'rewind_to_init',
     'sign_constant_reinit', 'snip_scores']
"""

from __future__ import annotations

import importlib

from ... import LthkitError

#: kata name → module (relative to this package) defining its ``SPEC``.
KATA_MODULES = {
    "find_winning_ticket_step": ".ticket_step",
    "global_magnitude_mask": ".magnitude_mask",
    "rewind_to_init": ".rewind",
    "interpolate": ".interpolate",
    "error_barrier": ".barrier",
    # notebook 7 (ticket anatomy, issue 16)
    "snip_scores": ".snip",
    "sign_constant_reinit": ".sign_reinit",
}
DEFAULT_KATA = "find_winning_ticket_step"


def kata_names() -> list[str]:
    """The names of the graded katas (also the names of the functions learners write)."""
    return list(KATA_MODULES)


def get_kata(name: str):
    """The :class:`~lthkit.grading.spec.KataSpec` of kata ``name``.

    Raises:
        LthkitError: no kata has that name.
    """
    if name not in KATA_MODULES:
        raise LthkitError(f"unknown kata {name!r}; choose one of {', '.join(KATA_MODULES)}")
    return importlib.import_module(KATA_MODULES[name], __name__).SPEC
