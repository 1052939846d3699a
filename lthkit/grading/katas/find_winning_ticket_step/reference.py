"""The reference solution of the one-step lottery-ticket kata (ML-Katas).

The exercise: given a trained ``model`` and a deep copy of its weights at initialization
(``initial_state_dict``, θ₀), perform one step of iterative magnitude pruning with
:mod:`torch.nn.utils.prune`:

1. prune ``prune_amount`` of the still-surviving weights of *every* Linear and Conv2d layer,
   ranked together by magnitude (one global threshold: ``prune.global_unstructured`` with
   ``prune.L1Unstructured``); biases are not pruned;
2. reset the survivors to θ₀ by writing θ₀ into ``weight_orig`` (writing ``weight`` would be
   overwritten by the pruning hook at the next forward pass).

Calling it again prunes ``prune_amount`` of what is left, so the pruned fraction compounds:
0.2 → 0.36 → 0.488.
"""

from __future__ import annotations

import copy  # noqa: F401 - the docstring's example
import math

import torch
from torch import nn
from torch.nn.utils import prune

from ....core.masks import prunable_layers
from ....errors import LthkitError
from ..arguments import check_initial_state, check_module


def find_winning_ticket_step(model: nn.Module, initial_state_dict: dict, prune_amount: float = 0.2) -> nn.Module:
    """One IMP step: globally prune the smallest trained weights, then rewind survivors to θ₀.

    Args:
        model: a trained network; its Linear and Conv2d weights are pruned in place (through
            ``torch.nn.utils.prune``: ``weight_orig``, ``weight_mask`` and a forward pre-hook).
            It may already be pruned by an earlier call.
        initial_state_dict: θ₀, as ``copy.deepcopy(model.state_dict())`` taken before training
            and before any pruning (keys like ``"fc1.weight"``). It is only read, never changed.
        prune_amount: fraction of the *remaining* weights to prune, in [0, 1).

    Returns:
        ``model``: survivors hold their θ₀ values in ``weight_orig`` and ``module.weight`` is
        already θ₀ ⊙ mask. Other parameters found in ``initial_state_dict`` (biases) are reset to
        θ₀ as well, so the whole network restarts from its original initialization.

    Example:
        >>> theta0 = copy.deepcopy(model.state_dict())  # doctest: +SKIP
        >>> train(model)                                 # doctest: +SKIP
        >>> find_winning_ticket_step(model, theta0, 0.2) # 20% of the weights pruned  # doctest: +SKIP
        >>> find_winning_ticket_step(model, theta0, 0.2) # 36% pruned                 # doctest: +SKIP
    """
    if isinstance(prune_amount, bool) or not isinstance(prune_amount, (int, float)) or math.isnan(prune_amount) \
            or not 0 <= prune_amount < 1:
        raise LthkitError(f"prune_amount must be a number in [0, 1), got {prune_amount!r}")
    check_module(model)
    layers = prunable_layers(model)
    check_initial_state(model, initial_state_dict)  # everything is checked before the model is touched

    prune.global_unstructured([(module, "weight") for module in layers.values()],
                              pruning_method=prune.L1Unstructured, amount=float(prune_amount))

    with torch.no_grad():
        for name, module in layers.items():
            module.weight_orig.copy_(initial_state_dict[f"{name}.weight"])
            # The hook recomputes this at the next forward; doing it now keeps `weight` honest.
            module.weight = module.weight_orig * module.weight_mask
        for name, parameter in model.named_parameters():
            if not name.endswith("weight_orig") and name in initial_state_dict:
                parameter.copy_(initial_state_dict[name])
    return model
