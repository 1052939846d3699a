"""The reference solutions' argument checks: a one-line :class:`~lthkit.LthkitError` naming the first
argument that does not fit, raised before the model is touched.

Example:
    >>> check_module("not a model")
    Traceback (most recent call last):
    ...
    lthkit.LthkitError: model must be a torch.nn.Module, got str
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.masks import prunable_layers
from ...errors import LthkitError


def check_module(model) -> None:
    if not isinstance(model, nn.Module):
        raise LthkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def check_tensor(where: str, value, shape: tuple, what: str) -> None:
    """``value`` must be a real tensor of ``shape``; the message says which entry and why not."""
    if not isinstance(value, torch.Tensor):
        raise LthkitError(f"{where} is a {type(value).__name__}, not a tensor")
    if tuple(value.shape) != tuple(shape):
        raise LthkitError(f"{where} has shape {tuple(value.shape)}, {what} has {tuple(shape)}")
    if value.is_complex():
        raise LthkitError(f"{where} is a complex tensor ({value.dtype}); {what} is real")


def plain_parameter_name(name: str) -> str:
    """``fc1.weight_orig`` (a parameter under torch.nn.utils.prune) is ``fc1.weight`` in θ₀."""
    return name[:-len("_orig")] if name.endswith("_orig") else name


def check_initial_state(model: nn.Module, initial_state_dict) -> None:
    """Every prunable weight needs a θ₀ tensor of its shape, and every other entry that names a
    parameter (a bias) must fit it too; name the first that does not. Checked before anything is
    changed, so a rejected call leaves the model as it was."""
    if not isinstance(initial_state_dict, dict):
        raise LthkitError(f"initial_state_dict must be a dict of tensors, got {type(initial_state_dict).__name__}")
    for name, module in prunable_layers(model).items():
        key = f"{name}.weight"
        weight = module.weight_orig if hasattr(module, "weight_orig") else module.weight
        if key not in initial_state_dict:
            hint = (" (it looks like the state_dict of a pruned model: take θ₀ before training and pruning)"
                    if f"{key}_orig" in initial_state_dict else "")
            raise LthkitError(f"initial_state_dict has no entry {key!r}{hint}")
        check_tensor(f"initial_state_dict[{key!r}]", initial_state_dict[key], weight.shape, "the model's weight")
    for name, parameter in model.named_parameters():
        key = plain_parameter_name(name)
        if key in initial_state_dict:
            check_tensor(f"initial_state_dict[{key!r}]", initial_state_dict[key], parameter.shape,
                          f"the model's {key.rsplit('.', 1)[-1]}")


def check_rewind_arguments(model, initial_state_dict, masks, *, plain_names: bool = False) -> None:
    """``model`` a module, ``initial_state_dict`` one tensor of the right shape per parameter, ``masks``
    tensors of their parameters' shapes (with ``plain_names``, ``<name>_orig`` counts as ``<name>``)."""
    check_module(model)
    if not isinstance(initial_state_dict, dict) or not isinstance(masks, dict):
        raise LthkitError("initial_state_dict and masks must be dicts of tensors keyed by parameter name")
    shapes = {(plain_parameter_name(name) if plain_names else name): tuple(parameter.shape)
              for name, parameter in model.named_parameters()}
    for name in masks:
        if name not in shapes:
            raise LthkitError(f"masks has an entry {name!r}, which is not a parameter of the model")
        check_tensor(f"masks[{name!r}]", masks[name], shapes[name], "the parameter")
    for name, shape in shapes.items():
        if name not in initial_state_dict:
            raise LthkitError(f"initial_state_dict[{name!r}] is missing; the parameter has shape {shape}")
        check_tensor(f"initial_state_dict[{name!r}]", initial_state_dict[name], shape, "the parameter")
