"""Sandbox-side helpers: turn whatever a submission left behind into plain, loadable values.

A kata's ``run`` uses these inside the sandbox to record the state of a model or the value a
function returned. Every tensor is copied to a plain CPU :class:`torch.Tensor` (a tensor subclass
is recorded as its type name instead), every failure to read an attribute becomes a string, so
the recording itself never raises and the grader can load it with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def describe_type(value: Any) -> str:
    """The type name of a value, shortened, for messages."""
    name = type(value).__qualname__
    return name if len(name) <= 60 else name[:57] + "..."


def plain(value: Any) -> torch.Tensor | str | None:
    """A detached CPU copy of a tensor, None for None, and a type description for anything else."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        try:
            detached = value.detach()
            if type(detached) is torch.Tensor:
                return detached.to("cpu", copy=True)
        except Exception as error:  # noqa: BLE001 - a broken tensor is recorded, not raised
            return f"<unreadable tensor: {type(error).__name__}>"
    return f"<{describe_type(value)} object>"


def attribute(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, but an attribute that raises reads as None."""
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001
        return None


def submodule(model: Any, name: str) -> nn.Module | None:
    """``model.get_submodule(name)``, or None when there is no such module any more."""
    try:
        module = model.get_submodule(name) if name else model
    except Exception:  # noqa: BLE001
        return None
    return module if isinstance(module, nn.Module) else None


def layer_state(module: nn.Module | None) -> dict:
    """The pruning-relevant state of one layer: weight, weight_orig, weight_mask, bias and friends."""
    if module is None:
        return {"missing": True}
    state = {"missing": False, "type": describe_type(module)}
    for name in ("weight", "weight_orig", "weight_mask", "bias", "bias_orig", "bias_mask"):
        state[name] = plain(attribute(module, name))
    return state


def state_dict_copy(values: Any) -> dict | str:
    """A plain copy of a dict of tensors (or a description of what it was instead)."""
    if not isinstance(values, dict):
        return f"<{describe_type(values)} object>"
    return {str(key): plain(value) for key, value in values.items()}


def probe_forward(model: Any, shape) -> str | None:
    """Run a forward pass on zeros (refreshing pruned weights); the error message if it fails."""
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    except Exception as error:  # noqa: BLE001 - reported to the learner
        return f"{type(error).__name__}: {error}"[:300]
    return None
