"""The one-step kata's reference solution, checked against torch.nn.utils.prune as the oracle."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from lthkit.core.masks import density, from_torch_prune
from lthkit.core.models import build_model
from lthkit.errors import LthkitError
from lthkit.grading.katas.find_winning_ticket_step.reference import find_winning_ticket_step


class Named(nn.Module):
    """A model with its own attribute names and a bias-free layer."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(784, 64)
        self.head = nn.Linear(64, 10, bias=False)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x.flatten(1))))


def sequential_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))


MODELS = {"sequential": sequential_mlp, "named": Named, "conv": lambda: build_model("conv2_small", seed=0)}


def train_stand_in(model, seed):
    """Move all weights (as training would) so trained magnitudes differ from θ₀'s."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    model(torch.zeros(1, 1, 28, 28))  # refresh effective weights of pruned layers


def oracle_step(model, theta0, amount):
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured, amount=amount)
    with torch.no_grad():
        for name, module in layers:
            module.weight_orig.copy_(theta0[f"{name}.weight"])
    return model


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_matches_torch_prune_oracle_twice_in_a_row(kind):
    torch.manual_seed(0)
    ours = MODELS[kind]()
    theta0 = copy.deepcopy(ours.state_dict())
    theta0_copy = copy.deepcopy(theta0)
    oracle = copy.deepcopy(ours)
    for call, expected_pruned in enumerate((0.2, 0.36)):
        train_stand_in(ours, seed=call)
        train_stand_in(oracle, seed=call)
        trained = {k: v.detach().clone() for k, v in ours.state_dict().items()}
        returned = find_winning_ticket_step(ours, theta0, 0.2)
        oracle_step(oracle, theta0, 0.2)
        assert returned is ours
        ours_masks, oracle_masks = from_torch_prune(ours), from_torch_prune(oracle)
        for key in oracle_masks:
            assert torch.equal(ours_masks[key], oracle_masks[key]), (call, key)
        assert 1 - density(ours_masks) == pytest.approx(expected_pruned, abs=2e-3)
        for name, module in ours.named_modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                key = f"{name}.weight"
                assert torch.equal(module.weight_orig, theta0[key])  # survivors rewound via weight_orig
                assert torch.equal(module.weight, theta0[key] * module.weight_mask)  # no forward needed
                if module.bias is not None:
                    assert not hasattr(module, "bias_mask")  # biases are never pruned
        ours(torch.zeros(1, 1, 28, 28))
        for name, module in ours.named_modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                assert torch.equal(module.weight, theta0[f"{name}.weight"] * module.weight_mask)
        del trained
    for key in theta0:
        assert torch.equal(theta0[key], theta0_copy[key]), "initial_state_dict was modified"


def test_prunes_smallest_trained_magnitudes_globally():
    torch.manual_seed(1)
    model = sequential_mlp()
    theta0 = copy.deepcopy(model.state_dict())
    train_stand_in(model, seed=5)
    trained = {k: v.detach().abs().clone() for k, v in model.state_dict().items() if k.endswith("weight")}
    find_winning_ticket_step(model, theta0, 0.3)
    masks = from_torch_prune(model)
    kept = torch.cat([trained[k][masks[k]] for k in masks])
    pruned = torch.cat([trained[k][~masks[k]] for k in masks])
    assert len(pruned) == round(0.3 * (len(kept) + len(pruned)))
    assert pruned.max() <= kept.min()  # one global threshold, on the trained weights


def test_compounding_sparsity():
    model = build_model("lenet300_100", seed=0)
    theta0 = copy.deepcopy(model.state_dict())
    for expected in (0.2, 0.36, 0.488):
        find_winning_ticket_step(model, theta0, 0.2)
        assert 1 - density(from_torch_prune(model)) == pytest.approx(expected, abs=1e-3)


def test_resets_biases_to_theta0():
    model = build_model("lenet300_100", seed=0)
    theta0 = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model.fc1.bias.add_(1.0)
    find_winning_ticket_step(model, theta0, 0.2)
    assert torch.equal(model.fc1.bias, theta0["fc1.bias"])


@pytest.mark.parametrize("amount", [-0.1, 1.0, math.nan, "0.2", True])
def test_bad_amounts(amount):
    model = build_model("lenet300_100")
    theta0 = copy.deepcopy(model.state_dict())
    with pytest.raises(LthkitError, match="prune_amount"):
        find_winning_ticket_step(model, theta0, amount)
    assert not hasattr(model.fc1, "weight_mask"), "a rejected call changed the model"


def test_bad_initial_state_dict_names_the_key():
    model = build_model("lenet300_100")
    theta0 = copy.deepcopy(model.state_dict())
    missing = {k: v for k, v in theta0.items() if k != "fc2.weight"}
    with pytest.raises(LthkitError, match="'fc2.weight'"):
        find_winning_ticket_step(model, missing, 0.2)
    wrong = dict(theta0, **{"fc3.weight": torch.zeros(3, 3)})
    with pytest.raises(LthkitError, match="'fc3.weight'.*shape"):
        find_winning_ticket_step(model, wrong, 0.2)
    assert not hasattr(model.fc1, "weight_mask"), "a rejected call changed the model"


def test_no_prunable_layers():
    with pytest.raises(LthkitError, match="no prunable layers"):
        find_winning_ticket_step(nn.Sequential(nn.ReLU()), {}, 0.2)
