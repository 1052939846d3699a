"""lthkit.core.masks against torch.nn.utils.prune (the oracle), densities, random control, interop."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from lthkit.core.masks import (density, from_torch_prune, full_masks, layer_densities, magnitude_masks,
                               prunable_weights, random_masks_like, surviving_counts, to_torch_prune)
from lthkit.core.models import build_model
from lthkit.errors import LthkitError


def perturb(model, seed):
    """Stand-in for training: move every weight so the ranking differs from θ₀'s.

    The noise is drawn per parameter name in sorted order, with ``weight_orig`` standing for
    ``weight``, so a model under torch.nn.utils.prune moves exactly like its plain twin.
    """
    generator = torch.Generator().manual_seed(seed)
    parameters = {name.replace("weight_orig", "weight"): p for name, p in model.named_parameters()}
    with torch.no_grad():
        for name in sorted(parameters):
            parameters[name].add_(torch.randn(parameters[name].shape, generator=generator) * 0.05)


@pytest.mark.parametrize("name", ["lenet300_100", "conv2_small"])
def test_global_masks_equal_global_unstructured_over_two_rounds(name):
    ours = build_model(name, seed=1)
    oracle = copy.deepcopy(ours)
    masks = full_masks(ours)
    for round_index in range(2):
        perturb(ours, seed=round_index)
        perturb(oracle, seed=round_index)
        # The oracle's weight_orig moves like our weights; its mask is what prune computes.
        masks = magnitude_masks(prunable_weights(ours), masks, 0.2, scope="global", layer_rates=None)
        layers = [m for m in oracle.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        oracle(torch.zeros(1, 1, 28, 28))  # a forward pass refreshes the effective weights, as after training
        prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=0.2)
        with torch.no_grad():
            for name_, mask in masks.items():
                dict(ours.named_parameters())[name_].mul_(mask)
        oracle_masks = from_torch_prune(oracle)
        for key in masks:
            assert torch.equal(masks[key], oracle_masks[key]), (round_index, key)
    assert density(masks) == pytest.approx(0.64, abs=1e-5)


def test_layer_scope_equals_l1_unstructured_per_layer():
    model = build_model("lenet300_100", seed=2)
    oracle = copy.deepcopy(model)
    masks = magnitude_masks(prunable_weights(model), full_masks(model), 0.2, scope="layer",
                            layer_rates={"output": 0.1})
    prune.l1_unstructured(oracle.fc1, "weight", 0.2)
    prune.l1_unstructured(oracle.fc2, "weight", 0.2)
    prune.l1_unstructured(oracle.fc3, "weight", 0.1)
    for key, mask in from_torch_prune(oracle).items():
        assert torch.equal(masks[key], mask), key


def test_global_scope_differs_from_layer_scope():
    model = build_model("lenet300_100", seed=0)
    global_masks = magnitude_masks(prunable_weights(model), full_masks(model), 0.5, scope="global")
    layer_masks = magnitude_masks(prunable_weights(model), full_masks(model), 0.5, scope="layer")
    assert density(global_masks) == pytest.approx(density(layer_masks), abs=1e-5)
    # One threshold across layers prunes layers of small Glorot weights (fc1) harder.
    assert layer_densities(global_masks)["fc1.weight"] < 0.5 < layer_densities(global_masks)["fc3.weight"]


def test_pruning_only_removes_survivors_and_never_biases():
    model = build_model("lenet300_100", seed=0)
    masks = full_masks(model)
    assert all(not name.endswith("bias") for name in masks)
    previous = masks
    for _ in range(3):
        perturb(model, 5)
        masks = magnitude_masks(prunable_weights(model), previous, 0.3, scope="global")
        for key in masks:
            assert not (masks[key] & ~previous[key]).any(), "a pruned weight came back"
        previous = masks


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_density_after_r_rounds_matches_closed_form(scope):
    model = build_model("lenet300_100", seed=0)
    masks = full_masks(model)
    rates = {"fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1}
    sizes = {k: v.numel() for k, v in masks.items()}
    rounds = 7
    for _ in range(rounds):
        perturb(model, 3)
        masks = magnitude_masks(prunable_weights(model), masks, 0.2, scope="layer" if scope == "layer" else "global",
                                layer_rates={"output": 0.1} if scope == "layer" else None)
    counts = surviving_counts(masks)
    if scope == "layer":
        for key, size in sizes.items():
            assert abs(counts[key] - size * (1 - rates[key]) ** rounds) <= rounds, key
    else:
        total = sum(sizes.values())
        assert abs(sum(counts.values()) - total * 0.8 ** rounds) <= rounds


def test_random_masks_keep_per_layer_counts():
    model = build_model("lenet300_100", seed=0)
    masks = magnitude_masks(prunable_weights(model), full_masks(model), 0.6, scope="global")
    random = random_masks_like(masks, torch.Generator().manual_seed(0))
    assert surviving_counts(random) == surviving_counts(masks)
    assert not torch.equal(random["fc1.weight"], masks["fc1.weight"])
    again = random_masks_like(masks, torch.Generator().manual_seed(0))
    assert all(torch.equal(random[k], again[k]) for k in masks)


def test_torch_prune_round_trip():
    model = build_model("conv2_small", seed=0)
    masks = magnitude_masks(prunable_weights(model), full_masks(model), 0.4, scope="global")
    pruned = to_torch_prune(copy.deepcopy(model), masks)
    for name, module in pruned.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            assert hasattr(module, "weight_orig") and hasattr(module, "weight_mask")
            assert torch.equal(module.weight, module.weight_orig * module.weight_mask)
    read_back = from_torch_prune(pruned)
    assert all(torch.equal(read_back[k], masks[k]) for k in masks)
    # Replacing the mask of an already-pruned model sets it, it does not combine.
    looser = full_masks(model)
    to_torch_prune(pruned, looser)
    assert density(from_torch_prune(pruned)) == 1.0
    # Effective weights of the pruned model are read through the mask.
    assert torch.equal(prunable_weights(to_torch_prune(pruned, masks))["fc1.weight"],
                       model.fc1.weight * masks["fc1.weight"])


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, math.nan, "half", None])
def test_bad_rates(rate):
    model = build_model("lenet300_100")
    with pytest.raises(LthkitError, match="in \\[0, 1\\)"):
        magnitude_masks(prunable_weights(model), full_masks(model), rate)


def test_bad_layer_names_scopes_and_shapes():
    model = build_model("lenet300_100")
    weights, masks = prunable_weights(model), full_masks(model)
    with pytest.raises(LthkitError, match="unknown layer 'fc9'"):
        magnitude_masks(weights, masks, 0.2, layer_rates={"fc9": 0.1})
    with pytest.raises(LthkitError, match="unknown pruning scope"):
        magnitude_masks(weights, masks, 0.2, scope="blockwise")
    wrong = dict(masks, **{"fc1.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(LthkitError, match="fc1.weight has shape"):
        magnitude_masks(weights, wrong, 0.2)


def test_model_without_prunable_layers():
    with pytest.raises(LthkitError, match="no prunable layers"):
        full_masks(nn.Sequential(nn.ReLU(), nn.Flatten()))
