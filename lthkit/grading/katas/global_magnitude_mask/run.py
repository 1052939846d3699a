"""The sandbox side of the global_magnitude_mask kata: call the learner's function on one hidden case and record
what came out as plain values (see :mod:`lthkit.grading.spec`). It runs in the sandbox process,
where only the grading harness and the set-up helpers of lthkit exist (:mod:`lthkit.grading.gate`):
no oracle, no reference solution."""

from __future__ import annotations

from ...capture import describe_type, state_dict_copy
from ...spec import Case


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's function, recorded into ``outputs``; returns what it returned."""
    weights, masks = arguments["weights"], arguments["masks"]
    returned = function(weights, masks, arguments["amount"])
    outputs["returned_type"] = "None" if returned is None else describe_type(returned)
    outputs["returned"] = state_dict_copy(returned) if isinstance(returned, dict) else None
    outputs["weights_after"] = state_dict_copy(weights)
    outputs["masks_after"] = state_dict_copy(masks)
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    # weights and masks: the tensors on the memory shared with the grader.
    call(function, {"weights": dict(inputs["weights"]), "masks": dict(inputs["masks"]), "amount": case.amount},
         inputs, outputs)
