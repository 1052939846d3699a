"""The reference solution of notebook 2's kata: one global magnitude threshold over the survivors.

The library computes the same masks for IMP (:func:`lthkit.core.masks.magnitude_masks` with
``scope="global"``); this is that function behind the kata's signature and checks.
"""

from __future__ import annotations

import torch

from ....core.fields import check_fraction
from ....core.masks import magnitude_masks
from ....errors import LthkitError


def global_magnitude_mask(weights: dict, masks: dict, amount: float) -> dict:
    """Prune ``amount`` of the surviving weights with one magnitude threshold across all layers.

    The exercise of notebook 2, done by hand (no ``torch.nn.utils.prune``): every weight still
    alive (``masks`` True) in every layer is ranked together by ``|w|``, and the
    ``round(amount * surviving)`` smallest are pruned. Weights already pruned stay pruned,
    whatever value ``weights`` holds for them. This is :func:`lthkit.core.masks.magnitude_masks` with
    ``scope="global"``.

    Args:
        weights: the trained weights, by weight name (``{"fc1.weight": tensor, ...}``).
        masks: the current bool masks, same names and shapes (True = alive).
        amount: fraction of the surviving weights to prune, in [0, 1).

    Returns:
        New bool masks; ``weights`` and ``masks`` are left unchanged.

    Example:
        >>> w = {"a": torch.tensor([0.1, -0.5, 0.3, 2.0]), "b": torch.tensor([-0.2, 1.0])}
        >>> alive = {name: torch.ones_like(value, dtype=torch.bool) for name, value in w.items()}
        >>> new = global_magnitude_mask(w, alive, 0.5)
        >>> new["a"].tolist(), new["b"].tolist()
        ([False, True, False, True], [False, True])
    """
    amount = check_fraction(amount, "amount")
    if not isinstance(weights, dict) or not isinstance(masks, dict):
        raise LthkitError("weights and masks must be dicts of tensors keyed by weight name")
    bool_masks = {}
    for name, mask in masks.items():
        if not isinstance(mask, torch.Tensor):
            raise LthkitError(f"masks[{name!r}] is a {type(mask).__name__}, not a tensor")
        bool_masks[name] = mask != 0
    return magnitude_masks(weights, bool_masks, amount, scope="global")
