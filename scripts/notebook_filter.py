#!/usr/bin/env python3
"""git's clean filter for the course notebooks: running a notebook does not make it "modified".

``.gitattributes`` marks ``notebooks/*.ipynb`` and ``notebooks/exercises/*.ipynb`` with
``filter=lthkit-notebook``; ``scripts/setup_env.sh`` (``make setup``) configures the filter in
the checkout::

    git config filter.lthkit-notebook.clean ".venv/bin/python scripts/notebook_filter.py %f"
    git config filter.lthkit-notebook.smudge cat

git hands the working copy on stdin and stores what this prints. When the notebook's cells (their
type, source and tags) are those of the version in the index, it prints the index's version byte
for byte: outputs, execution counts and metadata that a run changed are not a change, and the
outputs committed for readers on GitHub stay. When a cell's code or text changed, the working copy
goes through whole, outputs and all (what a developer who edits a notebook commits). Unlike
nbstripout, it never strips the committed outputs.

git decides that a file changed from its size before it asks a filter, so a run that changes a
notebook's size would still read "modified" in ``git status`` (``git diff`` empty). ``make lab``
therefore starts JupyterLab with ``scripts/jupyter_lab_config.py``, whose post-save hook calls
:func:`restat` on each saved notebook: when only a run's traces changed, ``git add`` stores the
committed version again (nothing is staged) and the index learns the file's new size.

To commit the outputs of a rerun on purpose (new numbers, the same cells), bypass the filter:
``git -c filter.lthkit-notebook.clean=cat add notebooks/NN_name.ipynb``.

Standard library only, and it never fails a git command: anything unexpected prints stdin as it came.
"""

from __future__ import annotations

import json
import subprocess
import sys


def cells_of(text: bytes) -> list | None:
    """What a notebook is made of for this filter: each cell's type, source and tags (None if not a notebook)."""
    try:
        notebook = json.loads(text)
        cells = []
        for cell in notebook["cells"]:
            source = cell.get("source", "")
            cells.append((cell.get("cell_type"), "".join(source) if isinstance(source, list) else source,
                          tuple(cell.get("metadata", {}).get("tags", []))))
        return cells
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def committed(path: str) -> bytes | None:
    """The index's version of ``path``, or None when it has none."""
    try:
        found = subprocess.run(["git", "cat-file", "blob", f":{path}"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout if found.returncode == 0 else None


def clean(working: bytes, index: bytes | None) -> bytes:
    """What git stores: the index's version when only a run's traces differ, else the working copy.

    Example:
        >>> cell = {"cell_type": "code", "source": "1 + 1", "metadata": {}, "outputs": [], "execution_count": None}
        >>> old = json.dumps({"cells": [cell]}).encode()
        >>> ran = json.dumps({"cells": [dict(cell, execution_count=3, outputs=[{"text": "2"}])]}).encode()
        >>> clean(ran, old) == old
        True
        >>> edited = json.dumps({"cells": [dict(cell, source="1 + 2")]}).encode()
        >>> clean(edited, old) == edited
        True
    """
    if index is None:
        return working
    mine, theirs = cells_of(working), cells_of(index)
    return index if mine is not None and mine == theirs else working


def restat(path) -> bool:
    """After a save: when ``path`` differs from the index only by a run's traces, let git re-read its size.

    ``git add`` runs the clean filter, which stores the committed version again: nothing is staged,
    and ``git status`` is clean. A notebook whose cells changed, or one outside a git checkout or
    without the filter, is left alone. Returns whether it re-added the file.
    """
    import os

    folder, name = os.path.split(os.path.abspath(path))
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True,
                             timeout=30, check=False).stdout.strip()
        if not top:
            return False
        relative = os.path.relpath(os.path.abspath(path), top)
        attribute = subprocess.run(["git", "check-attr", "filter", "--", relative], cwd=top, capture_output=True,
                                   text=True, timeout=30, check=False).stdout
        configured = subprocess.run(["git", "config", "filter.lthkit-notebook.clean"], cwd=top, capture_output=True,
                                    text=True, timeout=30, check=False).stdout.strip()
        if not attribute.rstrip().endswith("lthkit-notebook") or not configured:
            return False
        index = subprocess.run(["git", "cat-file", "blob", f":{relative}"], cwd=top, capture_output=True,
                               timeout=30, check=False)
        with open(path, "rb") as file:
            working = file.read()
        if index.returncode != 0 or clean(working, index.stdout) != index.stdout:
            return False
        return subprocess.run(["git", "add", "--", relative], cwd=top, capture_output=True, timeout=60,
                              check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def main(argv: list[str]) -> int:
    working = sys.stdin.buffer.read()
    try:
        result = clean(working, committed(argv[1])) if len(argv) > 1 else working
    except Exception:  # noqa: BLE001 - a filter must never lose the file
        result = working
    sys.stdout.buffer.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
