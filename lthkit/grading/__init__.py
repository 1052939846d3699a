"""Kata grading: check a learner's function in a sandbox, with a hint for each mistake.

In a notebook::

    from lthkit.grading import check
    check(find_winning_ticket_step)

shows a table of checks (pass/fail, points, a hint for the specific mistake) and the total. An
instructor grades files and folders with ``python -m lthkit grade SUBMISSION ...`` (``--json``,
``--gradescope DIR``, a summary table and CSV for a folder): see :mod:`lthkit.grading.command`.

* :mod:`.spec`     declarative kata specs, findings and reports
* :mod:`.katas`    the katas: ``find_winning_ticket_step``, ``global_magnitude_mask``, ``rewind_to_init``,
                  ``snip_scores``, ``sign_constant_reinit``
* :mod:`.hidden`   the hidden models
* :mod:`.oracle`   ``torch.nn.utils.prune`` as the oracle, comparisons
* :mod:`.source`   which code of a file, notebook or live function is run
* :mod:`.sandbox`  the separate process: timeout, limits, descriptors in and out, plain tensors back
* :mod:`.isolation` bubblewrap, or the fallback (dropped uid, Landlock), and the seccomp filter
* :mod:`.grader`   running and judging; :func:`check`
* :mod:`.example`  the same checks on a notebook's own calls: ``watch(function)(...)``, then ``.check()``
* :mod:`.report`   text, HTML, JSON, Gradescope and CSV

Attributes are imported lazily, so ``import lthkit.grading`` (and the sandbox's start-up) stays cheap.
"""

from __future__ import annotations

_EXPORTS = {
    "check": ".grader", "grade_function": ".grader", "grade_file": ".grader", "grade_paths": ".grader",
    "grade_jobs": ".grader", "grade_submission": ".grader", "Limits": ".sandbox", "GradeReport": ".spec",
    "CheckResult": ".spec", "KataSpec": ".spec", "get_kata": ".katas", "kata_names": ".katas", "watch": ".example",
    "Watched": ".example",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
