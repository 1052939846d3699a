"""How many torch threads a training uses: one in a notebook kernel, which always shares the machine.

torch's default pool has one thread per core. In a Jupyter kernel the browser showing the notebook
and JupyterLab itself run beside it: while they hold a core, the pool's threads wait for each other
at every operation's barrier, and a LeNet training of a second or two took 19 to 39 s in notebook 3's
first run (issue 27; ``benchmarks/kernel_threads.py`` measures it: ``benchmarks/kernel_threads.txt``).
One thread does not wait for anyone. So :func:`training_threads` trains on one thread in a kernel,
and leaves the command line and the sweeps' workers (one thread each already) as they are.
``LTHKIT_THREADS`` sets the number everywhere.

Example:
    >>> with training_threads(kernel=True) as threads:
    ...     threads
    1
"""

from __future__ import annotations

import contextlib
import sys
import threading

from .. import settings
from ..errors import LthkitError

THREADS_ENV = "LTHKIT_THREADS"
_lock = threading.Lock()


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (ipykernel's app is running)."""
    app = sys.modules.get("ipykernel.kernelapp")
    return bool(app is not None and getattr(app.IPKernelApp, "initialized", lambda: False)())


def chosen_threads(kernel: bool | None = None) -> int | None:
    """The torch threads a training should use: ``LTHKIT_THREADS``, else 1 in a kernel, else None (leave torch's).

    Raises:
        LthkitError: ``LTHKIT_THREADS`` is not a positive whole number.
    """
    text = settings.text(THREADS_ENV)
    if text:
        try:
            threads = int(text)
        except ValueError:
            threads = 0
        if threads < 1:
            raise LthkitError(f"{THREADS_ENV} must be a positive whole number, got {text!r}")
        return threads
    return 1 if (in_kernel() if kernel is None else kernel) else None


@contextlib.contextmanager
def training_threads(kernel: bool | None = None):
    """Train inside this block on :func:`chosen_threads` torch threads; torch's setting is restored after it.

    Yields:
        The number of threads the block trains on.
    """
    import torch

    wanted = chosen_threads(kernel)
    with _lock:
        before = torch.get_num_threads()
        if wanted is not None and wanted != before:
            torch.set_num_threads(wanted)
    try:
        yield torch.get_num_threads()
    finally:
        if wanted is not None and wanted != before:
            with _lock:
                torch.set_num_threads(before)
