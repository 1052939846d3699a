"""The networks of the kit, built reproducibly from a seed.

* ``lenet300_100``: LeNet-300-100, the fully connected network of Frankle & Carbin's MNIST
  experiments (784-300-100-10, ReLU, 266,200 weights).
* ``conv2``: the paper's Conv-2 adapted to 28x28 grayscale inputs: two 3x3 convolutions with 64
  channels, 2x2 max-pooling, then fully connected 256-256-10.
* ``conv2_small``: the same shape at a width that trains in seconds on a CPU (8 channels,
  64 hidden units); used by the conv exercises and the grader's hidden models.

Every weight gets the paper's Gaussian Glorot initialization (``xavier_normal_``) and every bias
starts at zero. Construction draws from a private generator, so ``build_model(name, seed)``
returns the same network for the same seed and leaves torch's global random state alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import LthkitError


class LeNet300100(nn.Module):
    """LeNet-300-100: a 784-300-100-10 ReLU network on flattened 28x28 images."""

    def __init__(self, hidden: tuple[int, ...] = (300, 100), num_classes: int = 10):
        super().__init__()
        sizes = (28 * 28, *hidden)
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.fc2 = nn.Linear(sizes[1], sizes[2])
        self.fc3 = nn.Linear(sizes[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class Conv2(nn.Module):
    """Conv-2 for 28x28 inputs: conv3x3-conv3x3-maxpool, then two hidden dense layers."""

    def __init__(self, channels: int = 64, hidden: int = 256, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(channels * 14 * 14, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.max_pool2d(x, 2).flatten(1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


MODELS = {
    "lenet300_100": lambda: LeNet300100(),
    "conv2": lambda: Conv2(),
    "conv2_small": lambda: Conv2(channels=8, hidden=64),
}


def glorot_init_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Gaussian Glorot weights and zero biases for every Linear and Conv2d layer, in place.

    Args:
        model: the network to initialize.
        generator: the random source (seed it for a reproducible network).

    Returns:
        ``model``.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(module.weight, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def truncated_glorot_(model: nn.Module, seed: int) -> nn.Module:
    """TensorFlow 1's ``glorot_normal``, in place: a normal truncated at ±2σ, scaled so the variance is Glorot's.

    Only the weights of ``nn.Linear`` layers are redrawn (biases stay as they are). Values outside
    ±2σ are drawn again until every one is inside, as ``tf.truncated_normal`` does; σ is divided
    by 0.8796…, the standard deviation of a unit normal truncated at ±2, so the variance is
    2 / (fan_in + fan_out). ``scripts/dense_probe.py`` compares it with :func:`glorot_init_`.

    Args:
        model: the network.
        seed: seed of the draw.

    Returns:
        ``model``.

    Example:
        >>> model = truncated_glorot_(build_model("lenet300_100"), seed=0)
        >>> bool(model.fc1.weight.abs().max() <= 2 * (2 / (784 + 300)) ** 0.5 / 0.87962566103423978)
        True
    """
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            fan_out, fan_in = module.weight.shape
            std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
            with torch.no_grad():
                values = torch.randn(module.weight.shape, generator=generator)
                while (outside := values.abs() > 2).any():  # redraw until every value is inside ±2σ
                    values[outside] = torch.randn(int(outside.sum()), generator=generator)
                module.weight.copy_(values * std)
    return model


def build_model(name: str = "lenet300_100", seed: int = 0) -> nn.Module:
    """Build a network by name with the paper's initialization, reproducibly.

    Args:
        name: one of :data:`MODELS` (``lenet300_100``, ``conv2``, ``conv2_small``).
        seed: seed of the initialization; the same seed gives the same weights.

    Returns:
        The initialized :class:`torch.nn.Module` on the CPU.

    Example:
        >>> a, b = build_model("lenet300_100", seed=1), build_model("lenet300_100", seed=1)
        >>> torch.equal(a.fc1.weight, b.fc1.weight)
        True
    """
    if name not in MODELS:
        raise LthkitError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    # nn.Linear/nn.Conv2d draw a default init from the global RNG on construction; fork it so
    # building a model never shifts anyone else's random stream.
    with torch.random.fork_rng(devices=[]):
        model = MODELS[name]()
    return glorot_init_(model, torch.Generator().manual_seed(int(seed)))
