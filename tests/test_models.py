"""lthkit.core.models: shapes, the paper's weight count and initialization, seeded construction."""

import math

import pytest
import torch

from lthkit.core.masks import prunable_weights
from lthkit.core.models import build_model
from lthkit.errors import LthkitError


@pytest.mark.parametrize("name", ["lenet300_100", "conv2", "conv2_small"])
def test_forward_shape(name):
    model = build_model(name, seed=0)
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)


def test_lenet_has_the_papers_266200_weights():
    weights = prunable_weights(build_model("lenet300_100"))
    assert sum(w.numel() for w in weights.values()) == 784 * 300 + 300 * 100 + 100 * 10 == 266_200


def test_gaussian_glorot_init_and_zero_bias():
    model = build_model("lenet300_100", seed=0)
    std = model.fc1.weight.std().item()
    assert std == pytest.approx(math.sqrt(2 / (784 + 300)), rel=0.02)
    assert abs(model.fc1.weight.mean().item()) < 0.001
    assert torch.count_nonzero(model.fc1.bias) == 0


def test_seeded_construction_does_not_touch_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("conv2_small", seed=7)
    after = torch.rand(1)
    b = build_model("conv2_small", seed=7)
    c = build_model("conv2_small", seed=8)
    assert torch.equal(before, after)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_unknown_model():
    with pytest.raises(LthkitError, match="unknown model 'resnet'"):
        build_model("resnet")
