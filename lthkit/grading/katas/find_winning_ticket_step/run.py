"""The sandbox side of the find_winning_ticket_step kata: call the learner's function on one hidden case and record
what came out as plain values (see :mod:`lthkit.grading.spec`). It runs in the sandbox process,
where only the grading harness and the set-up helpers of lthkit exist (:mod:`lthkit.grading.gate`):
no oracle, no reference solution."""

from __future__ import annotations

import torch
from torch import nn

from ...capture import attribute, describe_type, layer_state, plain, probe_forward, state_dict_copy, submodule
from ...hidden import PROBE_SHAPE, architecture
from ...spec import Case


@torch.no_grad()
def _train_stand_in(model, layers, deltas) -> str | None:
    """Move the weights as a round of masked training would: survivors only, under prune's hooks.

    A layer without ``weight_orig`` (not pruned, or ``prune.remove``-d) is an ordinary parameter,
    so training moves all of its entries, the zeros included, as it would in a notebook.
    """
    for name in layers:
        module = submodule(model, name)
        for parameter in ("weight", "bias"):
            delta = deltas.get(f"{name}.{parameter}")
            original, mask = attribute(module, f"{parameter}_orig"), attribute(module, f"{parameter}_mask")
            target = original if isinstance(original, torch.Tensor) else attribute(module, parameter)
            if delta is None or not isinstance(target, torch.Tensor) or target.shape != delta.shape:
                continue
            if isinstance(original, torch.Tensor) and isinstance(mask, torch.Tensor):
                delta = delta * (mask != 0)
            target.add_(delta.to(target.dtype))
    return probe_forward(model, PROBE_SHAPE)


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's function on ``arguments["model"]``, recorded into ``outputs["calls"]``.

    The record holds the layers' state before and after, whether the model came back, the weights
    after a forward pass and θ₀ after the call. Returns what the function returned.
    """
    subject, layers = arguments["model"], inputs["layers"]
    record = {"raised": True, "before": {name: layer_state(submodule(subject, name)) for name in layers}}
    outputs.setdefault("calls", []).append(record)  # appended first: a call that raises still leaves its "before"
    returned = function(subject, arguments["initial_state_dict"], arguments["prune_amount"])
    record["raised"] = False
    record["returned_model"] = returned is subject
    record["returned_type"] = "None" if returned is None else describe_type(returned)
    if returned is not subject and isinstance(returned, nn.Module):
        subject = returned  # judge the model the learner hands back (and still say it is not the same)
    record["after"] = {name: layer_state(submodule(subject, name)) for name in layers}
    record["forward_error"] = probe_forward(subject, inputs.get("probe_shape", PROBE_SHAPE))
    record["forward"] = {name: plain(attribute(submodule(subject, name), "weight")) for name in layers}
    record["theta0_after"] = state_dict_copy(arguments["initial_state_dict"])
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    """Call the learner's function twice, with a stand-in round of training in between."""
    model = architecture(case.model)
    model.load_state_dict(inputs["trained"])
    theta0 = dict(inputs["theta0"])  # the tensors on the memory shared with the grader
    layers = inputs["layers"]
    outputs["calls"] = []
    subject = model
    for index in range(2):
        if index == 1:
            outputs["stand_in_error"] = _train_stand_in(subject, layers, inputs["deltas"])
            if outputs["stand_in_error"]:
                return
        returned = call(function, {"model": subject, "initial_state_dict": theta0, "prune_amount": case.amount},
                        inputs, outputs)
        if returned is not subject and isinstance(returned, nn.Module):
            subject = returned
