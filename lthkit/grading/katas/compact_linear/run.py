"""The sandbox side of the compact_linear kata: call the learner's function on one hidden layer and record
what came out as plain values (see :mod:`lthkit.grading.spec`). It runs in the sandbox process, where only
the grading harness and the set-up helpers of lthkit exist (:mod:`lthkit.grading.gate`): no oracle, no
reference solution."""

from __future__ import annotations

from ...capture import describe_type, plain, state_dict_copy
from ...spec import Case

ARGUMENTS = ("weight", "bias", "mask_in", "mask_out")


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's function, recorded into ``outputs``; returns what it returned."""
    returned = function(*(arguments[name] for name in ARGUMENTS))
    outputs["returned_type"] = "None" if returned is None else describe_type(returned)
    if isinstance(returned, (tuple, list)):
        outputs["returned_length"] = len(returned)
        outputs["returned"] = [plain(item) for item in list(returned)[:3]]
    else:
        outputs["returned"] = None
    outputs["layer_after"] = state_dict_copy({name: arguments[name] for name in ARGUMENTS})
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    call(function, dict(inputs["layer"]), inputs, outputs)  # on the memory shared with the grader
