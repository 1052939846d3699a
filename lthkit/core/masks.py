"""Pruning masks: magnitude and random pruning, density accounting, ``torch.nn.utils.prune`` interop.

A *mask set* is a ``dict`` from a weight's parameter name (``"fc1.weight"``, ``"features.0.weight"``)
to a boolean tensor of the weight's shape: ``True`` where the weight survives. Only the weights of
:class:`~torch.nn.Linear` and :class:`~torch.nn.Conv2d` layers are prunable; biases never are.

Magnitude pruning removes a fraction of the weights that *still survive*, ranked by the absolute
value of the weights you pass in (in IMP, the trained weights of the round that just ended, never
θ₀). Its arithmetic is ``torch.nn.utils.prune``'s: ``round(rate * surviving)`` weights go, chosen by
``torch.topk`` over the surviving weights in layer order, so for the same weights a global mask is
identical to :func:`torch.nn.utils.prune.global_unstructured`'s.

Example:
    >>> from lthkit.core.models import build_model
    >>> model = build_model("lenet300_100", seed=0)
    >>> masks = magnitude_masks(prunable_weights(model), full_masks(model), 0.2, scope="layer",
    ...                         layer_rates={"output": 0.1})
    >>> round(density(masks), 3), {k: round(v, 3) for k, v in layer_densities(masks).items()}
    (0.8, {'fc1.weight': 0.8, 'fc2.weight': 0.8, 'fc3.weight': 0.9})
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.nn.utils import prune

from ..errors import LthkitError
from .fields import check_fraction  # noqa: F401  (re-exported: rates are checked where masks are made)

Masks = dict[str, torch.Tensor]
PRUNABLE_TYPES = (nn.Linear, nn.Conv2d)
#: Scopes of magnitude pruning: one threshold across layers, or one per layer.
SCOPES = ("global", "layer")
#: The key of ``layer_rates`` that means "the last prunable layer", whatever its name.
OUTPUT_LAYER = "output"


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Linear and Conv2d layer of ``model``, by module name, in registration order.

    Raises:
        LthkitError: the model has no prunable layer.
    """
    layers = {name: module for name, module in model.named_modules() if isinstance(module, PRUNABLE_TYPES)}
    if not layers:
        raise LthkitError(f"{type(model).__name__} has no prunable layers (no nn.Linear or nn.Conv2d)")
    return layers


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight tensor of every prunable layer, keyed ``"<module>.weight"``.

    For a layer under ``torch.nn.utils.prune`` this is the effective weight
    ``weight_orig * weight_mask`` (computed here, so it is never stale), otherwise the parameter.
    """
    weights = {}
    for name, module in prunable_layers(model).items():
        if hasattr(module, "weight_orig") and hasattr(module, "weight_mask"):
            weights[f"{name}.weight"] = module.weight_orig * module.weight_mask
        else:
            weights[f"{name}.weight"] = module.weight
    return weights


def full_masks(model: nn.Module) -> Masks:
    """An all-``True`` mask for every prunable weight of ``model`` (density 1)."""
    return {name: torch.ones_like(weight, dtype=torch.bool) for name, weight in prunable_weights(model).items()}


def check_tensor_set(tensors, name: str = "masks") -> Mapping[str, torch.Tensor]:
    """Return ``tensors`` if it is a non-empty dict from weight name to tensor, else a one-line :class:`LthkitError`.

    Args:
        tensors: a mask set or a dict of weights.
        name: what it is, for the message (``"masks"``, ``"weights"``).
    """
    if not isinstance(tensors, Mapping):
        raise LthkitError(f"{name} must be a dict from weight name to tensor, got a {type(tensors).__name__}")
    if not tensors:
        raise LthkitError(f"{name} is empty: no prunable weight is named")
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise LthkitError(f"{name}[{key!r}] must be a tensor, got a {type(value).__name__}")
    return tensors


def surviving_counts(masks: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Number of surviving weights per layer."""
    check_tensor_set(masks)
    return {name: int(mask.sum()) for name, mask in masks.items()}


def layer_densities(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of surviving weights per layer, in [0, 1]."""
    check_tensor_set(masks)
    return {name: int(mask.sum()) / mask.numel() for name, mask in masks.items()}


def density(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of all prunable weights that survive (1 − sparsity)."""
    check_tensor_set(masks)
    total = sum(mask.numel() for mask in masks.values())
    if total == 0:
        raise LthkitError("masks hold no weights (every tensor is empty), so they have no density")
    return sum(int(mask.sum()) for mask in masks.values()) / total


def layer_rate_overrides(names, layer_rates: Mapping[str, float] | None) -> dict[str, float]:
    """Map per-layer rate overrides onto weight names, validating each.

    Args:
        names: the weight names, in layer order.
        layer_rates: overrides keyed by weight name (``"fc3.weight"``), module name (``"fc3"``)
            or ``"output"`` for the last prunable layer.

    Returns:
        ``{weight name: rate}`` for the overridden layers only.
    """
    names = list(names)
    overrides = {}
    for key, value in (layer_rates or {}).items():
        if key == OUTPUT_LAYER:
            target = names[-1]
        elif key in names:
            target = key
        elif f"{key}.weight" in names:
            target = f"{key}.weight"
        else:
            raise LthkitError(f"layer rate given for unknown layer {key!r}; prunable weights are "
                              f"{', '.join(names)} (or 'output')")
        rate = check_fraction(value, f"prune rate of {key}")
        if target in overrides and overrides[target] != rate:
            raise LthkitError(f"two layer rates name {target} ({overrides[target]:g} and {rate:g}): give one")
        overrides[target] = rate
    return overrides


def resolve_layer_rates(names, rate: float, layer_rates: Mapping[str, float] | None = None) -> dict[str, float]:
    """The pruning rate of every layer: ``rate`` unless ``layer_rates`` overrides it.

    Args:
        names: the weight names, in layer order.
        rate: the default fraction of surviving weights to prune per round.
        layer_rates: overrides (see :func:`layer_rate_overrides`).

    Returns:
        ``{weight name: rate}`` for every name.
    """
    rates = {name: check_fraction(rate, "prune rate") for name in names}
    rates.update(layer_rate_overrides(rates, layer_rates))
    return rates


def _check_same_layers(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> None:
    check_tensor_set(weights, "weights")
    check_tensor_set(masks, "masks")
    if list(weights) != list(masks):
        raise LthkitError(f"weights and masks name different layers: {list(weights)} vs {list(masks)}")
    for name, weight in weights.items():
        if tuple(weight.shape) != tuple(masks[name].shape):
            raise LthkitError(f"mask for {name} has shape {tuple(masks[name].shape)}, "
                              f"weight has {tuple(weight.shape)}")


def _prune_smallest(scores: list[torch.Tensor], masks: list[torch.Tensor], rate: float,
                    signed: bool = False) -> list[torch.Tensor]:
    """Prune ``round(rate * surviving)`` of the surviving entries with the smallest |score|.

    The tensors are ranked together (one threshold), in the order given; this is exactly the
    computation of ``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``. With
    ``signed`` the scores themselves are ranked (the smallest, most negative, go first).
    """
    flat_scores = torch.cat([score.detach().reshape(-1) for score in scores])
    flat_mask = torch.cat([mask.reshape(-1) for mask in masks])
    surviving = flat_mask.nonzero().squeeze(1)
    # Python's round, like torch.nn.utils.prune._compute_nparams_toprune.
    count = round(rate * surviving.numel())
    new_flat = flat_mask.clone()
    if count > 0:
        ranked = flat_scores[surviving] if signed else flat_scores[surviving].abs()
        smallest = torch.topk(ranked, k=count, largest=False).indices
        new_flat[surviving[smallest]] = False
    return [part.view_as(mask) for part, mask in zip(new_flat.split([m.numel() for m in masks]), masks)]


def magnitude_masks(weights: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], rate: float,
                    *, scope: str = "global", layer_rates: Mapping[str, float] | None = None) -> Masks:
    """Prune the smallest-magnitude surviving weights.

    Args:
        weights: the weights to rank, by name (in IMP: the trained weights).
        masks: the current masks (same names and shapes); pruned weights stay pruned.
        rate: fraction of the *surviving* weights to remove, in [0, 1).
        scope: ``"global"``: one threshold across all layers (those without an override);
            ``"layer"``: each layer loses ``rate`` of its own surviving weights.
        layer_rates: per-layer overrides (see :func:`resolve_layer_rates`). A layer with an
            override is pruned on its own at that rate, in either scope.

    Returns:
        A new mask set; the inputs are not modified.

    Example:
        >>> w = {"a": torch.tensor([0.1, -0.5, 0.3, 2.0]), "b": torch.tensor([-0.2, 1.0])}
        >>> m = magnitude_masks(w, {k: torch.ones(v.shape, dtype=torch.bool) for k, v in w.items()}, 0.5)
        >>> m["a"].tolist(), m["b"].tolist()
        ([False, True, False, True], [False, True])
    """
    return _ranked_masks(weights, masks, rate, scope=scope, layer_rates=layer_rates, signed=False)


def score_masks(scores: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor], rate: float,
                *, scope: str = "global", layer_rates: Mapping[str, float] | None = None) -> Masks:
    """Prune the surviving weights with the lowest *signed* scores (a mask criterion's ranking).

    The same arithmetic as :func:`magnitude_masks` (counts, scopes, per-layer overrides, ties
    broken by ``torch.topk``), but the scores are ranked as they are, not by absolute value: a
    score of -3 goes before a score of 1. ``score_masks({k: w.abs()}, ...)`` is
    ``magnitude_masks(w, ...)``.

    Args:
        scores: one score tensor per weight, by name (higher survives).
        masks: the current masks (same names and shapes); pruned weights stay pruned.
        rate: fraction of the *surviving* weights to remove, in [0, 1).
        scope: ``"global"`` or ``"layer"``, as for :func:`magnitude_masks`.
        layer_rates: per-layer overrides, as for :func:`magnitude_masks`.

    Returns:
        A new mask set; the inputs are not modified.

    Example:
        >>> s = {"a": torch.tensor([-2.0, 0.5, 1.0, 3.0])}
        >>> score_masks(s, {"a": torch.ones(4, dtype=torch.bool)}, 0.5)["a"].tolist()
        [False, False, True, True]
    """
    return _ranked_masks(scores, masks, rate, scope=scope, layer_rates=layer_rates, signed=True)


def keep_top(scores: Mapping[str, torch.Tensor], keep: int) -> Masks:
    """Masks keeping the ``keep`` highest scores across every tensor (one global threshold).

    Ties are broken by ``torch.topk``. Example:
        >>> keep_top({"a": torch.tensor([3.0, 1.0]), "b": torch.tensor([2.0, 0.0])}, 2)
        {'a': tensor([ True, False]), 'b': tensor([ True, False])}
    """
    flat = torch.cat([score.detach().reshape(-1).float().cpu() for score in scores.values()])
    if not isinstance(keep, int) or isinstance(keep, bool) or not 0 <= keep <= flat.numel():
        raise LthkitError(f"keep must be a whole number from 0 to {flat.numel()}, got {keep!r}")
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[torch.topk(flat, keep).indices] = True
    sizes = [score.numel() for score in scores.values()]
    return {name: part.view(score.shape) for (name, score), part in zip(scores.items(), chosen.split(sizes))}


def _ranked_masks(weights, masks, rate, *, scope, layer_rates, signed: bool) -> Masks:
    if scope not in SCOPES:
        raise LthkitError(f"unknown pruning scope {scope!r}; choose one of {', '.join(SCOPES)}")
    _check_same_layers(weights, masks)
    rates = resolve_layer_rates(weights, rate, layer_rates)
    overridden = layer_rate_overrides(weights, layer_rates)
    new_masks: Masks = {}
    shared = [name for name in weights if name not in overridden] if scope == "global" else []
    if shared:
        for name, mask in zip(shared, _prune_smallest([weights[n] for n in shared], [masks[n] for n in shared],
                                                      rates[shared[0]], signed)):
            new_masks[name] = mask
    for name in weights:
        if name not in new_masks:
            new_masks[name] = _prune_smallest([weights[name]], [masks[name]], rates[name], signed)[0]
    return {name: new_masks[name] for name in weights}


def random_masks_like(masks: Mapping[str, torch.Tensor], generator: torch.Generator) -> Masks:
    """Random masks with exactly the same number of survivors per layer as ``masks``.

    This is the random-pruning control: same per-layer densities as the winning ticket, but the
    surviving positions drawn uniformly at random.

    Args:
        masks: the masks whose per-layer counts to copy.
        generator: a CPU generator (seed it for reproducibility).

    Returns:
        A new mask set, on the same devices as ``masks``.
    """
    check_tensor_set(masks)
    result = {}
    for name, mask in masks.items():
        keep = int(mask.sum())
        chosen = torch.randperm(mask.numel(), generator=generator)[:keep]
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[chosen] = True
        result[name] = flat.view(mask.shape).to(mask.device)
    return result


def check_masks_fit(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Raise a one-line :class:`LthkitError` unless ``masks`` names every prunable weight with its shape."""
    _check_same_layers(prunable_weights(model), masks)


@torch.no_grad()
def apply_masks_(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Zero the pruned weights of ``model`` in place (no hooks, no reparametrization).

    Returns:
        ``model``.
    """
    check_masks_fit(model, masks)
    parameters = dict(model.named_parameters())
    for name, mask in masks.items():
        parameters[name].mul_(mask.to(parameters[name].device, parameters[name].dtype))
    return model


@torch.no_grad()
def to_torch_prune(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Express ``masks`` on ``model`` the way ``torch.nn.utils.prune`` does.

    Every prunable layer gets the standard ``weight_orig`` parameter, ``weight_mask`` buffer and
    forward pre-hook. A layer that is already under ``torch.nn.utils.prune`` has its mask
    replaced (not combined).

    Args:
        model: the network (modified in place).
        masks: a mask set for it.

    Returns:
        ``model``, with ``module.weight == module.weight_orig * module.weight_mask`` already
        computed (no forward pass needed).
    """
    check_masks_fit(model, masks)
    for module_name, module in prunable_layers(model).items():
        mask = masks[f"{module_name}.weight"]
        if hasattr(module, "weight_mask"):
            module.weight_mask.copy_(mask.to(module.weight_mask))
        else:
            prune.custom_from_mask(module, "weight", mask.to(module.weight.device, module.weight.dtype))
        module.weight = module.weight_orig * module.weight_mask
    return model


def from_torch_prune(model: nn.Module) -> Masks:
    """Read the mask set from a model pruned with ``torch.nn.utils.prune``.

    Layers without a ``weight_mask`` buffer count as unpruned (all ``True``).
    """
    masks = {}
    for module_name, module in prunable_layers(model).items():
        if hasattr(module, "weight_mask"):
            masks[f"{module_name}.weight"] = module.weight_mask.detach() != 0
        else:
            masks[f"{module_name}.weight"] = torch.ones_like(module.weight, dtype=torch.bool)
    return masks
