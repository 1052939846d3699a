"""The linear path between two networks: interpolation, its test errors and its error barrier.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import LthkitError
from .masks import Masks
from .train import evaluate

#: The paper's threshold: a network is stable when its error barrier is below 2 percentage points.
STABLE_THRESHOLD = 0.02
#: Points on the path, endpoints included (the paper's: 30; 21 puts α on a 0.05 grid).
DEFAULT_POINTS = 21


def interpolate(state_a: dict, state_b: dict, alpha: float, masks: Masks | None = None) -> dict:
    """The point ``(1 − alpha) · state_a + alpha · state_b`` of the linear path between two networks.

    Every floating-point tensor of the state dicts is interpolated, biases included; a tensor
    named in ``masks`` is multiplied by its mask, so pruned weights are exactly zero at every α
    (even where the states hold something else there). Other tensors (integer buffers) are taken
    from ``state_a``. At ``alpha = 0`` and ``1`` the result equals the endpoint exactly (masked).
    Neither input is changed.

    Args:
        state_a: the first network's ``state_dict`` (α = 0).
        state_b: the second's, with the same names and shapes (α = 1).
        alpha: where on the path, a number in [0, 1].
        masks: ``{weight name: bool tensor}``, True where a weight survives (``None``: dense).

    Returns:
        A new state dict (fresh tensors), in ``state_a``'s order.

    Raises:
        LthkitError: the two states do not match, or ``alpha`` is not in [0, 1].

    Example:
        >>> a, b = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
        >>> interpolate(a, b, 0.25)["w"]
        tensor([0.2500, 0.2500])
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise LthkitError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if list(state_a) != list(state_b):
        raise LthkitError("the two states name different tensors: "
                          f"{sorted(set(state_a) ^ set(state_b))[:4]} are in one only")
    masks = masks or {}
    unknown = [name for name in masks if name not in state_a]
    if unknown:
        raise LthkitError(f"masks name tensors the states do not have: {unknown[:4]}")
    point = {}
    for name, a in state_a.items():
        b = state_b[name]
        if a.shape != b.shape:
            raise LthkitError(f"{name} has shape {tuple(a.shape)} in one state and {tuple(b.shape)} in the other")
        if not a.is_floating_point():
            point[name] = a.clone()
            continue
        value = torch.lerp(a.detach(), b.detach().to(a.dtype), float(alpha))  # exact at both endpoints
        if name in masks:
            value = value * (masks[name] != 0).to(device=value.device, dtype=value.dtype)
        point[name] = value
    return point


def error_barrier(errors) -> float:
    """The instability of a path: its highest error minus the mean of its two endpoints' errors.

    Args:
        errors: the errors along the path, at evenly spaced α, the endpoints first and last.

    Returns:
        ``max(errors) − (errors[0] + errors[-1]) / 2``: never negative (the maximum is at least the
        higher endpoint); for two equally good endpoints, how far the path rises above them; a
        straight path between unequal endpoints scores half their difference.

    Example:
        >>> round(error_barrier([0.02, 0.021, 0.03, 0.02]), 6)
        0.01
        >>> error_barrier([0.03, 0.03, 0.03])
        0.0
    """
    errors = [float(e) for e in errors]
    if len(errors) < 2:
        raise LthkitError(f"a path needs at least its two endpoints' errors, got {len(errors)}")
    if any(math.isnan(e) for e in errors):
        return math.nan
    return max(errors) - (errors[0] + errors[-1]) / 2


def alpha_grid(points: int = DEFAULT_POINTS) -> list[float]:
    """``points`` evenly spaced values of α from 0 to 1, both endpoints exactly included.

    Example:
        >>> alpha_grid(5)
        [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise LthkitError(f"points must be an integer of at least 2 (both endpoints), got {points!r}")
    return [i / (points - 1) for i in range(points)]


def is_stable(barrier: float, threshold: float = STABLE_THRESHOLD) -> bool:
    """Whether an error barrier is below ``threshold`` (the paper's 2 percentage points).

    Args:
        barrier: an error barrier, as a fraction (0.02 is 2 points).
        threshold: the bound, as a fraction.

    Returns:
        ``barrier < threshold``.

    Example:
        >>> is_stable(0.004), is_stable(0.05)
        (True, False)
    """
    return bool(barrier < threshold)


@torch.no_grad()
def path_errors(model: nn.Module, state_a: dict, state_b: dict, images: torch.Tensor, labels: torch.Tensor,
                masks: Masks | None = None, alphas=None) -> list[float]:
    """Test error (a fraction) of each point :func:`interpolate` gives along ``alphas``.

    Args:
        model: a network of the states' architecture (only its structure is used; it is not changed).
        state_a, state_b: the two trained networks.
        images, labels: the evaluation set (every example counts).
        masks: the mask both networks share.
        alphas: where to evaluate (default: :func:`alpha_grid`).

    Returns:
        One error per α, in order.

    Example:
        >>> from lthkit.core.models import build_model
        >>> model = build_model("lenet300_100", seed=0)
        >>> x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
        >>> errors = path_errors(model, model.state_dict(), model.state_dict(), x, y, alphas=[0, 0.5, 1])
        >>> error_barrier(errors)
        0.0
    """
    alphas = alpha_grid() if alphas is None else list(alphas)
    errors = []
    for alpha in alphas:
        _, accuracy = evaluate(model, images, labels, state=interpolate(state_a, state_b, alpha, masks))
        errors.append(1.0 - accuracy.item())
    return errors
