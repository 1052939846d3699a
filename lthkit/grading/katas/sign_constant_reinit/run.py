"""The sandbox side of the sign_constant_reinit kata: call the learner's function on one hidden case and record
what came out as plain values (see :mod:`lthkit.grading.spec`). It runs in the sandbox process,
where only the grading harness and the set-up helpers of lthkit exist (:mod:`lthkit.grading.gate`):
no oracle, no reference solution."""

from __future__ import annotations

from torch import nn

from ...capture import attribute, describe_type, plain, probe_forward, state_dict_copy, submodule
from ...hidden import PROBE_SHAPE, architecture
from ...spec import Case


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's function, recorded into ``outputs``; returns what it returned."""
    model, theta0, masks = arguments["model"], arguments["initial_state_dict"], arguments["masks"]
    returned = function(model, theta0, masks)
    outputs["returned_model"] = returned is model
    outputs["returned_type"] = "None" if returned is None else describe_type(returned)
    subject = returned if isinstance(returned, nn.Module) else model
    outputs["forward_error"] = probe_forward(subject, inputs.get("probe_shape", PROBE_SHAPE))
    outputs["values"] = {}
    for key in inputs["theta0"]:
        module_name, _, parameter = key.rpartition(".")
        outputs["values"][key] = plain(attribute(submodule(subject, module_name), parameter))
    outputs["theta0_after"] = state_dict_copy(theta0)
    outputs["masks_after"] = state_dict_copy(masks)
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    model = architecture(case.model)
    model.load_state_dict(inputs["state"])
    # θ₀ and the masks: the tensors on the memory shared with the grader.
    call(function, {"model": model, "initial_state_dict": dict(inputs["theta0"]), "masks": dict(inputs["masks"])},
         inputs, outputs)
