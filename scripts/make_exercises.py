#!/usr/bin/env python
"""Generate the learner versions of the course notebooks (see :mod:`lthkit.classroom.exercises`).

Usage:
    python scripts/make_exercises.py          # (re)write notebooks/exercises/
    python scripts/make_exercises.py --check  # exit 1, naming them, if any learner version is stale
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from lthkit.classroom.exercises import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
