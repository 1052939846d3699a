"""The studies: the paper's protocol, instability analysis, ticket anatomy and sparsity against speed, each in one shape
(:mod:`.base`).

:data:`STUDIES` lists them; ``python -m lthkit report DIR`` rewrites the report of whichever study's
folder ``DIR`` is. A new study is one module with its ``STUDY`` entry, listed here.
"""

from __future__ import annotations

from pathlib import Path

from ..core.registry import Registry
from ..errors import LthkitError
from . import anatomy, paper, sparsity_speed, stability
from .base import Study

#: Every study, in the order the report command tries them.
STUDIES = Registry([paper.STUDY, stability.STUDY, anatomy.STUDY, sparsity_speed.STUDY], kind="study")


def study_of(folder) -> Study:
    """The study whose results ``folder`` holds.

    Raises:
        LthkitError: it is not a folder, or holds no study's rows.
    """
    folder = Path(folder)
    expected = ", ".join(f"{study.rows_file} of {study.name}" for study in STUDIES.values())
    if not folder.is_dir():
        raise LthkitError(f"{folder} {'is a file' if folder.exists() else 'does not exist'}; expected a results "
                          f"folder ({expected})")
    for study in STUDIES.values():
        if study.holds(folder):
            return study
    raise LthkitError(f"{folder} holds no study's rows; expected a results folder ({expected})")


__all__ = ["STUDIES", "Study", "study_of"]
