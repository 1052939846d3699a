"""The reference solution of notebook 4's kata: rewind a pruned network to θ₀ without pruning hooks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from ..arguments import check_rewind_arguments


def rewind_to_init(model: nn.Module, initial_state_dict: dict, masks: dict) -> nn.Module:
    """Set a pruned network back to its initialization: θ₀ ⊙ mask for masked weights, θ₀ elsewhere.

    The exercise of notebook 4: rewinding a ticket without ``torch.nn.utils.prune`` hooks. Every
    parameter is written *in place* (the same ``nn.Parameter`` objects, so an optimizer built on
    them keeps working): a weight named in ``masks`` gets ``θ₀ * mask``, every other parameter
    (biases) gets θ₀. A model still carrying pruning hooks has them removed first, so the result is
    always a plain model.

    Args:
        model: the network (modified in place).
        initial_state_dict: θ₀, as ``copy.deepcopy(model.state_dict())`` before training; only read.
        masks: bool masks by weight name (``"fc1.weight"``), True = alive; only read.

    Returns:
        ``model``.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> theta0 = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
        >>> mask = {"weight": torch.tensor([[True, False, True], [False, True, True]])}
        >>> rewind_to_init(model, theta0, mask).weight.tolist()
        [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    """
    # Under torch.nn.utils.prune a weight is the parameter "<name>_orig": check against the plain names.
    check_rewind_arguments(model, initial_state_dict, masks, plain_names=True)
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            value = initial_state_dict[name]
            if name in masks:
                value = value * (masks[name] != 0).to(value.dtype)
            parameter.copy_(value)
    return model
