"""The reference solution of notebook 2's IMP kata: the whole loop of iterative magnitude pruning, with its two
controls, written with ``torch.nn.utils.prune`` around a training function the caller provides.

Each round trains, prunes ``rate`` of every hidden layer's *surviving* weights by trained magnitude (the
output layer at ``output_rate``), and rewinds the survivors to θ₀ through ``weight_orig`` (the biases too).
Beside each round's ticket it trains the two controls of Frankle & Carbin (2019): the ticket's mask on a
fresh initialization (random re-init), and θ₀ with the same number of weights per layer kept at random
positions (random pruning).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.utils import prune

from ....core.masks import prunable_layers
from ....errors import LthkitError


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not 0 <= value < 1:
        raise LthkitError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _rewind(model: nn.Module, theta0: dict) -> None:
    """Every survivor back to θ₀ through ``weight_orig`` (``weight`` is recomputed from it at each forward
    pass), every other parameter (the biases) to θ₀."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(theta0[name.removesuffix("_orig")])


def _random_masks_like(masks: dict) -> dict:
    """For each layer, as many surviving weights as ``masks`` keeps there, at positions drawn at random."""
    drawn = {}
    for name, mask in masks.items():
        keep = int(mask.sum())
        flat = torch.zeros(mask.numel())
        flat[torch.randperm(mask.numel())[:keep]] = 1.0
        drawn[name] = flat.view_as(mask)
    return drawn


def _trained_with(network: nn.Module, masks: dict, train) -> float:
    """Attach ``masks`` to ``network`` as pruning hooks (so training keeps the pruned weights at zero), train it."""
    layers = prunable_layers(network)
    for name, module in layers.items():
        prune.custom_from_mask(module, "weight", masks[name])
    return train(network)


def iterative_magnitude_pruning(new_network, train, rounds: int, rate: float, output_rate: float) -> dict:
    """Iterative magnitude pruning, layer-wise, rewinding to θ₀, with the random re-init and random pruning controls.

    Args:
        new_network: a function of no arguments returning a freshly initialized network (a new random draw each
            call); the first network it returns is the ticket's, and its weights then are θ₀.
        train: ``train(model) -> accuracy``: trains ``model`` in place for a fixed budget. It knows nothing of
            masks: pruning hooks (``torch.nn.utils.prune``) keep the pruned weights at zero while it trains.
        rounds: pruning rounds after the dense round 0.
        rate: fraction of each hidden layer's surviving weights pruned per round, in [0, 1).
        output_rate: the same for the output layer (the last ``nn.Linear`` or ``nn.Conv2d``), in [0, 1).

    Returns:
        ``{"ticket": [...], "reinit": [...], "random_prune": [...]}``: what ``train`` returned for the ticket in
        rounds 0 to ``rounds``, and for each control in rounds 1 to ``rounds`` (round 0 is the dense network).

    Raises:
        LthkitError: ``rounds`` is not a positive whole number or a rate is outside [0, 1).

    Example:
        >>> results = iterative_magnitude_pruning(new_network, train, rounds=3, rate=0.2, output_rate=0.1)  # doctest: +SKIP
        >>> len(results["ticket"]), len(results["reinit"])                                                  # doctest: +SKIP
        (4, 3)
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise LthkitError(f"rounds must be a positive whole number, got {rounds!r}")
    rate, output_rate = _check_fraction(rate, "rate"), _check_fraction(output_rate, "output_rate")
    model = new_network()
    theta0 = copy.deepcopy(model.state_dict())  # before any training or pruning: keys like "fc1.weight"
    layers = prunable_layers(model)
    results = {"ticket": [train(model)], "reinit": [], "random_prune": []}
    for _ in range(rounds):
        for index, module in enumerate(layers.values()):
            # On a pruned layer, prune.l1_unstructured prunes `amount` of the weights still alive: rates compound.
            prune.l1_unstructured(module, "weight", amount=output_rate if index == len(layers) - 1 else rate)
        _rewind(model, theta0)
        masks = {name: module.weight_mask.detach().clone() for name, module in layers.items()}
        results["reinit"].append(_trained_with(new_network(), masks, train))
        at_theta0 = new_network()
        at_theta0.load_state_dict(theta0)
        results["random_prune"].append(_trained_with(at_theta0, _random_masks_like(masks), train))
        results["ticket"].append(train(model))
    return results
