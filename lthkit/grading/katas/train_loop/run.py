"""The sandbox side of the train_loop kata: run the learner's loop on one hidden pruned network the way
``lthkit.find_ticket`` runs it (masks enforced through the optimizer by :class:`lthkit.core.enforce.MaskEnforcer`),
twice with the same seed, and record what happened as plain values (see :mod:`lthkit.grading.spec`). It runs in
the sandbox process, where only the grading harness and the set-up helpers of lthkit exist
(:mod:`lthkit.grading.gate`): no oracle, no reference solution."""

from __future__ import annotations

import torch
from torch import nn

from ....core.enforce import MaskEnforcer
from ...capture import describe_type, state_dict_copy
from ...hidden import architecture
from ...spec import Case

#: What the grader asks of the loop: passes, examples per step, learning rate.
EPOCHS, BATCH_SIZE, LR = 2, 32, 0.01
#: The loop's arguments after the data, as the grader passes them (by keyword).
SETTINGS = ("epochs", "batch_size", "lr", "seed")


def _first_difference(model: nn.Module, given: dict) -> str:
    """The first parameter of ``model`` that differs from ``given`` ("" when none does)."""
    for name, parameter in model.named_parameters():
        if name not in given or not torch.equal(parameter.detach(), given[name]):
            return name
    return ""


def call(function, arguments: dict, inputs: dict, outputs: dict):
    """One call of the learner's loop on ``arguments["model"]``, as find_ticket makes it, recorded into
    ``outputs["calls"]``.

    The loop runs under a :class:`~lthkit.core.enforce.MaskEnforcer` holding ``inputs["masks"]``; a
    forward pre-hook counts the examples and batches it trains on, in which mode, and from which
    weights. The record holds that, what came back, whether the model changed and its state after;
    ``outputs["data_after"]`` holds images and labels after the call. Returns what the loop returned.
    """
    model = arguments["model"]
    given = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    seen = {"examples": 0, "largest_batch": 0, "batches": 0, "eval_batches": 0, "started_from": None}

    def watch(module, args):
        if not torch.is_grad_enabled() or not args or not isinstance(args[0], torch.Tensor):
            return  # an evaluation under no_grad is not training
        if seen["started_from"] is None:
            seen["started_from"] = _first_difference(module, given)
        seen["examples"] += len(args[0])
        seen["batches"] += 1
        seen["largest_batch"] = max(seen["largest_batch"], len(args[0]))
        seen["eval_batches"] += not module.training

    handle = model.register_forward_pre_hook(watch)
    try:
        with MaskEnforcer(model, dict(inputs["masks"])) as enforcer:
            returned = function(model, arguments["images"], arguments["labels"],
                                **{name: arguments[name] for name in SETTINGS})
    finally:
        handle.remove()
    outputs.setdefault("calls", []).append({
        "returned_none": returned is None, "returned_model": returned is model,
        "returned_type": "None" if returned is None else describe_type(returned),
        "steps": enforcer.steps, "revived": enforcer.revived() or "",
        "changed": _first_difference(model, given) != "", "state_after": state_dict_copy(dict(model.state_dict())),
        **seen, "started_from": "<no training step>" if seen["started_from"] is None else seen["started_from"]})
    outputs["data_after"] = state_dict_copy({"images": arguments["images"], "labels": arguments["labels"]})
    return returned


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    """Call the loop twice with the same seed, each time on a new network at the same weights, as find_ticket's
    rounds do."""
    data = dict(inputs["data"])  # on the memory shared with the grader
    outputs["calls"] = []
    for _ in range(2):
        model = architecture(case.model)
        model.load_state_dict(inputs["state"])
        model.eval()  # as an evaluation leaves it: the loop must switch training on itself
        call(function, {"model": model, "images": data["images"], "labels": data["labels"], **inputs["settings"]},
             inputs, outputs)
