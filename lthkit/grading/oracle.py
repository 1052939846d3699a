"""The grader's trusted computations: ``torch.nn.utils.prune`` as the oracle, and tensor comparisons.

Everything here runs in the grader's own process, on plain tensors that came back from the
sandbox (or that the grader made itself); nothing a submission created is ever called.

Example:
    >>> w = {"a": torch.tensor([0.1, -0.5, 0.3, 2.0]), "b": torch.tensor([-0.2, 1.0])}
    >>> {k: m.tolist() for k, m in torch_prune_masks(w, None, 0.5).items()}
    {'a': [False, True, False, True], 'b': [False, True]}
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.nn.utils import prune

#: Relative and absolute tolerance when comparing weights a submission wrote with the expected ones.
RTOL, ATOL = 1e-5, 1e-6


def _holder(tensor: torch.Tensor, mask: torch.Tensor | None) -> nn.Module:
    holder = nn.Module()
    holder.register_parameter("weight", nn.Parameter(tensor.detach().clone().float(), requires_grad=False))
    if mask is not None:
        prune.custom_from_mask(holder, "weight", mask.to(torch.float32))
    return holder


def torch_prune_masks(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor] | None,
                      amount: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """Masks after pruning ``amount`` of the surviving weights, computed by ``torch.nn.utils.prune``.

    Args:
        weights: the weights to rank, by name (their order is the layer order).
        masks: the current masks (pruned weights stay pruned), or None for unpruned layers.
        amount: fraction of the surviving weights to prune, in [0, 1).
        scope: ``"global"`` (``prune.global_unstructured`` with ``L1Unstructured``) or
            ``"layer"`` (``prune.l1_unstructured`` on each tensor).

    Returns:
        ``{name: bool tensor}``, True where a weight survives.
    """
    holders = {name: _holder(weight, None if masks is None else masks[name]) for name, weight in weights.items()}
    if scope == "global":
        prune.global_unstructured([(holder, "weight") for holder in holders.values()],
                                  pruning_method=prune.L1Unstructured, amount=float(amount))
    else:
        for holder in holders.values():
            prune.l1_unstructured(holder, "weight", amount=float(amount))
    return {name: holder.weight_mask.detach() != 0 for name, holder in holders.items()}


def close(actual: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Elementwise "equal up to float round-off" (bool tensor of the shape)."""
    actual, expected = actual.double(), expected.double()
    return (actual - expected).abs() <= ATOL + RTOL * expected.abs()


def count(mask: torch.Tensor) -> int:
    return int(mask.sum())


def survivors(masks: Mapping[str, torch.Tensor]) -> int:
    return sum(count(mask) for mask in masks.values())


def total(masks: Mapping[str, torch.Tensor]) -> int:
    return sum(mask.numel() for mask in masks.values())


def same_masks(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def differing(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> int:
    """How many entries two mask sets over the same names disagree on."""
    return sum(int((a[name] != b[name]).sum()) for name in a)


def changed_entries(label: str, original: Mapping[str, torch.Tensor], after) -> str | None:
    """What a call changed in a dict of tensors it should only have read; None if nothing.

    Args:
        label: how to name the dict in the message (``"initial_state_dict"``).
        original: the dict as the grader made it.
        after: the copy the sandbox recorded after the call.
    """
    if not isinstance(after, dict):
        return f"{label} is no longer a dict"
    if set(after) != set(original):
        changed = sorted(set(after) ^ set(original))
        return f"{label} lost or gained keys ({', '.join(map(repr, changed[:3]))})"
    for key, value in original.items():
        new = after[key]
        if not isinstance(new, torch.Tensor) or new.shape != value.shape or not torch.equal(new, value):
            changed = int((new != value).sum()) if isinstance(new, torch.Tensor) and new.shape == value.shape \
                else value.numel()
            return f"{label}[{key!r}] was changed ({changed:,} of {value.numel():,} entries)"
    return None


def first_change(named_dicts) -> str | None:
    """:func:`changed_entries` over ``(label, original, after)`` triples: the first change, or None."""
    return next((change for label, original, after in named_dicts
                 if (change := changed_entries(label, original, after))), None)


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"
