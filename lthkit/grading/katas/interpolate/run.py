"""The sandbox side of the interpolate kata: call the learner's function on one hidden case and record
what came out as plain values (see :mod:`lthkit.grading.spec`). It runs in the sandbox process,
where only the grading harness and the set-up helpers of lthkit exist (:mod:`lthkit.grading.gate`):
no oracle, no reference solution."""

from __future__ import annotations

from ...capture import describe_type, state_dict_copy
from ...spec import Case


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's function, recorded into ``outputs``; returns what it returned."""
    state_a, state_b, masks = arguments["state_a"], arguments["state_b"], arguments["masks"]
    returned = function(state_a, state_b, arguments["alpha"], masks)
    outputs["returned_type"] = "None" if returned is None else describe_type(returned)
    outputs["returned"] = state_dict_copy(returned) if isinstance(returned, dict) else None
    outputs["state_a_after"] = state_dict_copy(state_a)
    outputs["state_b_after"] = state_dict_copy(state_b)
    outputs["masks_after"] = state_dict_copy(masks)
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    # The states and masks: the tensors on the memory shared with the grader.
    call(function, {"state_a": dict(inputs["state_a"]), "state_b": dict(inputs["state_b"]), "alpha": case.amount,
                    "masks": dict(inputs["masks"])}, inputs, outputs)
