"""The sandbox side of the error_barrier kata: call the learner's function on one hidden case and record
what came out as plain values (see :mod:`lthkit.grading.spec`). It runs in the sandbox process,
where only the grading harness and the set-up helpers of lthkit exist (:mod:`lthkit.grading.gate`):
no oracle, no reference solution."""

from __future__ import annotations

import torch

from ...capture import describe_type
from ...spec import Case


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's function, recorded into ``outputs``; returns what it returned."""
    errors = arguments["errors"]
    returned = function(errors)
    outputs["returned_type"] = "None" if returned is None else describe_type(returned)
    number = None
    if isinstance(returned, torch.Tensor) and returned.numel() == 1:
        number = float(returned.detach().reshape(()).item())
    elif isinstance(returned, (int, float)) and not isinstance(returned, bool):
        number = float(returned)
    outputs["returned"] = number
    try:
        after = torch.tensor([float(e) for e in errors], dtype=torch.float64)
    except (TypeError, ValueError):
        after = torch.zeros(0, dtype=torch.float64)
    outputs["errors_after"] = {"errors": after}
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    call(function, {"errors": [float(e) for e in inputs["errors"]["errors"].tolist()]}, inputs, outputs)
