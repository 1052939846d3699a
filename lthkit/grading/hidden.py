"""The hidden models the grader calls a learner's function on.

They differ from the notebooks' networks in the ways that expose hard-coded assumptions: a plain
``nn.Sequential``, a model with its own attribute names and a bias-free layer, a conv net with
and without conv biases, and one MLP named like the notebooks' LeNet (``fc1``, ``fc2``, ``fc3``),
so a solution that only works on the notebook's model runs on one hidden model and fails on the
others. They are small (at most 53k weights), so a whole kata grades in milliseconds.

Weights get Gaussian Glorot initialization like :mod:`lthkit.core.models` (so layers differ in scale and
a global threshold prunes them unevenly); biases get small non-zero values, so that pruning or
zeroing a bias shows. "Training" is a seeded stand-in: every parameter moves by Gaussian noise of
half its layer's spread, enough that ranking by θ₀ and by the trained weights disagree.

Example:
    >>> model = build_hidden("own_names", seed=0)
    >>> [name for name, _ in model.named_children()]
    ['encoder', 'bottleneck', 'readout']
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import LthkitError


class LeNetLike(nn.Module):
    """A 784-64-32-10 MLP whose layers are called like the notebooks' LeNet: fc1, fc2, fc3."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


class OwnNames(nn.Module):
    """An MLP with its own attribute names and one layer without a bias."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(784, 40)
        self.bottleneck = nn.Linear(40, 20, bias=False)
        self.readout = nn.Linear(20, 10)

    def forward(self, x):
        x = torch.tanh(self.encoder(x.flatten(1)))
        return self.readout(torch.tanh(self.bottleneck(x)))


class SmallConvNet(nn.Module):
    """Conv(5x5, no bias) → pool → Conv(3x3) → pool → Linear, under its own names."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=5, bias=False), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 8, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(8 * 5 * 5, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class ConvBatchNorm(nn.Module):
    """Conv → BatchNorm → pool → Linear, with a BatchNorm layer whose training mode shows (notebook 8's kind of net)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 6, kernel_size=3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                  nn.MaxPool2d(4))
        self.head = nn.Linear(6 * 7 * 7, 10)

    def forward(self, x):
        return self.head(self.body(x).flatten(1))


def _sequential_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 48), nn.ReLU(), nn.Linear(48, 24), nn.ReLU(), nn.Linear(24, 10))


#: name → (constructor, description for reports).
HIDDEN_MODELS = {
    "lenet_like": (LeNetLike, "an MLP named like the notebook's (fc1, fc2, fc3)"),
    "sequential": (_sequential_mlp, "a Sequential MLP"),
    "own_names": (OwnNames, "an MLP with its own layer names and a bias-free layer"),
    "conv": (SmallConvNet, "a conv net (Conv2d with and without bias)"),
    "conv_bn": (ConvBatchNorm, "a conv net with BatchNorm"),
}

#: The input of the forward pass the grader makes after each call (MNIST-shaped, two images).
PROBE_SHAPE = (2, 1, 28, 28)


def describe(name: str) -> str:
    """How reports name a hidden model."""
    return HIDDEN_MODELS[name][1] if name in HIDDEN_MODELS else name


def architecture(name: str) -> nn.Module:
    """An instance of the hidden architecture ``name`` (its default initialization is irrelevant)."""
    if name not in HIDDEN_MODELS:
        raise LthkitError(f"unknown hidden model {name!r}; choose one of {', '.join(HIDDEN_MODELS)}")
    with torch.random.fork_rng(devices=[]):
        return HIDDEN_MODELS[name][0]()


def prunable_names(model: nn.Module) -> list[str]:
    """The module names of the Linear and Conv2d layers, in registration order."""
    return [name for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]


def build_hidden(name: str, seed: int) -> nn.Module:
    """The hidden model ``name`` at its initialization θ₀, reproducibly from ``seed``."""
    model = architecture(name)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_normal_(module.weight, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
    return model


def stand_in_deltas(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """What a stand-in round of training adds to every parameter: noise of half its spread."""
    generator = torch.Generator().manual_seed(int(seed) + 10_000)
    return {name: torch.randn(value.shape, generator=generator) * 0.5 * value.std()
            for name, value in sorted(state.items())}


def hidden_state(name: str, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """θ₀ and the stand-in trained weights of a hidden model, as plain state dicts."""
    theta0 = {key: value.detach().clone() for key, value in build_hidden(name, seed).state_dict().items()}
    deltas = stand_in_deltas(theta0, seed)
    trained = {key: value + deltas[key] for key, value in theta0.items()}
    return theta0, trained
