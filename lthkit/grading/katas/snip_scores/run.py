"""The sandbox side of the snip_scores kata: call the learner's function on one hidden case and record
what came out as plain values (see :mod:`lthkit.grading.spec`). It runs in the sandbox process,
where only the grading harness and the set-up helpers of lthkit exist (:mod:`lthkit.grading.gate`):
no oracle, no reference solution."""

from __future__ import annotations

from ...capture import describe_type, state_dict_copy
from ...hidden import architecture
from ...spec import Case


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's function, recorded into ``outputs``; returns what it returned."""
    model = arguments["model"]
    returned = function(model, arguments["inputs"], arguments["targets"])
    outputs["returned_type"] = "None" if returned is None else describe_type(returned)
    outputs["returned"] = state_dict_copy(returned) if isinstance(returned, dict) else None
    outputs["state_after"] = state_dict_copy(dict(model.state_dict()))
    outputs["batch_after"] = state_dict_copy({"inputs": arguments["inputs"], "targets": arguments["targets"]})
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    model = architecture(case.model)
    model.load_state_dict(inputs["theta0"])
    batch = dict(inputs["batch"])  # on the memory shared with the grader
    call(function, {"model": model, "inputs": batch["inputs"], "targets": batch["targets"]}, inputs, outputs)
