"""The sandbox side of the iterative_magnitude_pruning kata: hand the learner's IMP loop a hidden network maker and
a stand-in training function, and record what every training call was given and left behind as plain values
(see :mod:`lthkit.grading.spec`). It runs in the sandbox process, where only the grading harness and the set-up
helpers of lthkit exist (:mod:`lthkit.grading.gate`): no oracle, no reference solution.

The stand-in ``train(model)`` moves every trainable parameter as a round of SGD would: by seeded noise of half
the layer's spread, through the pruning hooks (a ``weight_orig`` entry whose ``weight_mask`` is 0 gets no
gradient, so it does not move; a plain parameter moves everywhere, its zeros included). It returns a number
like an accuracy, different for every call, so that the grader can tell which call each returned entry is.
"""

from __future__ import annotations

import torch

from ...capture import attribute, layer_state, plain, probe_forward, submodule
from ...hidden import PROBE_SHAPE, architecture, build_hidden, prunable_names, stand_in_deltas
from ...spec import Case

#: What the stand-in training of call ``index`` returns: looks like an accuracy, and no two calls return the same.
FIRST_VALUE, STEP = 0.9, 0.001


def call_value(index: int) -> float:
    """The number the stand-in training returns from its ``index``-th call."""
    return round(FIRST_VALUE + STEP * index, 6)


def draw_seed(case: Case, draw: int) -> int:
    """The seed of the ``draw``-th network ``new_network()`` hands out in ``case``."""
    return case.seed * 100 + draw


@torch.no_grad()
def _move(model, deltas: dict) -> None:
    for name, parameter in list(model.named_parameters()):
        key = name.removesuffix("_orig")
        delta = deltas.get(key)
        if delta is None or parameter.shape != delta.shape:
            continue
        if name.endswith("_orig"):  # under torch.nn.utils.prune: the pruned entries get no gradient
            owner, _, attr = name.rpartition(".")
            mask = attribute(submodule(model, owner), attr[:-len("_orig")] + "_mask")
            if isinstance(mask, torch.Tensor) and mask.shape == delta.shape:
                delta = delta * (mask != 0)
        parameter.add_(delta.to(parameter.dtype))


def _plain_result(value):
    """What the learner returned, as plain values: numbers, lists and dicts of them, or a type name."""
    if isinstance(value, dict):
        return {str(key): _plain_result(item) for key, item in list(value.items())[:10]}
    if isinstance(value, (list, tuple)):
        return [_plain_result(item) for item in list(value)[:100]]
    if isinstance(value, bool):
        return f"<bool {value}>"
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().cpu().reshape(()))
    return f"<{type(value).__name__}>"


def run(function, case: Case, inputs: dict, outputs: dict) -> None:
    """Call the learner's loop once on the case's hidden network and budget."""
    torch.manual_seed(case.seed)  # the learner's own random draws (random pruning) repeat from grading to grading
    layers = prunable_names(architecture(case.model))
    base = build_hidden(case.model, case.seed).state_dict()
    outputs["draws"], outputs["calls"] = [], []

    def new_network():
        seed = draw_seed(case, len(outputs["draws"]))
        outputs["draws"].append(seed)
        return build_hidden(case.model, seed)

    def train(model):
        index = len(outputs["calls"])
        record = {"raised": True, "before": {name: layer_state(submodule(model, name)) for name in layers}}
        outputs["calls"].append(record)
        _move(model, stand_in_deltas(base, case.seed * 1000 + index))
        record["forward_error"] = probe_forward(model, PROBE_SHAPE)  # as training's forward passes would
        record["after"] = {name: plain(attribute(submodule(model, name), "weight")) for name in layers}
        record["raised"] = False
        return call_value(index)

    returned = function(new_network, train, inputs["rounds"], case.amount, inputs["output_rate"])
    outputs["returned"] = _plain_result(returned)
