"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every cache entry and saved result goes through here, so an interrupted run (Ctrl-C, a killed
kernel, a full disk) cannot leave a truncated file that a later run would trust.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import torch


def atomic_write_bytes(path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path, data) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


def atomic_save_tensors(path, obj) -> None:
    """``torch.save`` ``obj`` (tensors in dicts and lists) to ``path``, atomically.

    Read it back with ``torch.load(path, weights_only=True)``: nothing but tensors and plain
    containers is ever unpickled.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())
