"""pytest plugin for the notebooks under nbval (`make test`): exercise cells must raise NotImplementedError.

nbval's `raises-exception` tag lets a cell raise any exception, or none at all. In the learner
notebooks (`exercises/`, made by `scripts/make_exercises.py`) the cells tagged `exercise-check`
call a function the learner has not written yet, so they must stop with NotImplementedError and
nothing else: any other error means the notebook itself is broken, and no error means the
placeholder was lost. This hook fails such a cell in both cases.
"""

import pytest

EXERCISE_TAG = "exercise-check"
RAISES_TAG = "raises-exception"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    cell = getattr(item, "cell", None)  # only nbval's notebook cells have one
    tags = cell.get("metadata", {}).get("tags", []) if cell is not None else []
    if EXERCISE_TAG in tags and RAISES_TAG in tags:
        raised = [output.get("ename") for output in getattr(item, "test_outputs", [])
                  if output.get("output_type") == "error"]
        if raised != ["NotImplementedError"]:
            pytest.fail(f"exercise cell {item.cell_num} must raise NotImplementedError until it is solved; "
                        f"it raised {', '.join(raised) if raised else 'nothing'}", pytrace=False)
    return result
