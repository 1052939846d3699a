"""What a ticket's survivors are reset to, what its pruned weights hold, and its untrained accuracy.

Zhou, Lan, Liu & Yosinski ("Deconstructing Lottery Tickets: Zeros, Signs, and the Supermask",
NeurIPS 2019, arXiv:1905.01067) took a winning ticket apart:

* **resets** of the survivors before retraining: θ₀ (the ticket itself), a fresh random
  initialization (the ``reinit`` control), the **signs of θ₀ with one constant magnitude per
  layer** (:func:`sign_constant_reinit`: the standard deviation of the layer's θ₀), and θ₀'s
  surviving values **shuffled** within the layer (:func:`shuffle_survivors`);
* **zeros**: pruned weights set to zero (IMP's) or **frozen at their initial values**
  (:func:`freeze_pruned_at_init`: they keep θ₀ and never train);
* **supermasks**: the test accuracy of θ₀ ⊙ mask with no training at all
  (:func:`supermask_accuracy`).

The branches of :mod:`lthkit.imp.branches` (``sign_constant``, ``shuffled_init``, ``frozen_pruned``)
train these through the one IMP driver, with the ticket's mask of each round.

Example:
    >>> from lthkit.core.models import build_model
    >>> model = build_model("lenet300_100", seed=0)
    >>> theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    >>> masks = {k: v.abs() > 0.05 for k, v in theta0.items() if k.endswith("weight")}
    >>> _ = sign_constant_reinit(model, theta0, masks)
    >>> w = model.fc1.weight[masks["fc1.weight"]]
    >>> bool((w.sign() == theta0["fc1.weight"][masks["fc1.weight"]].sign()).all()), len(w.abs().unique())
    (True, 1)
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..core.masks import Masks, apply_masks_, check_masks_fit, prunable_layers
from ..core.train import evaluate
from ..errors import LthkitError

#: What a ticket's survivors can be reset to (the names of the branches that train them).
RESETS = ("ticket", "reinit", "sign_constant", "shuffled_init")


def _check_theta0(model: nn.Module, initial_state_dict: Mapping[str, torch.Tensor]) -> None:
    state = model.state_dict()
    for name, tensor in state.items():
        if name not in initial_state_dict:
            raise LthkitError(f"initial_state_dict has no entry {name!r}")
        if tuple(initial_state_dict[name].shape) != tuple(tensor.shape):
            raise LthkitError(f"initial_state_dict[{name!r}] has shape {tuple(initial_state_dict[name].shape)}, "
                              f"the model's has {tuple(tensor.shape)}")


def layer_constant(initial_weight: torch.Tensor) -> float:
    """The constant magnitude of a sign-reset layer: the standard deviation of its θ₀ weights (all of them)."""
    return float(initial_weight.detach().float().std())


@torch.no_grad()
def sign_constant_reinit(model: nn.Module, initial_state_dict: Mapping[str, torch.Tensor], masks: Masks) -> nn.Module:
    """Reset survivors to the signs of θ₀ times one constant per layer; pruned weights to zero.

    Each prunable weight becomes ``sign(θ₀) * σ_l * mask``, where ``σ_l`` is the standard
    deviation of the layer's θ₀ weights (:func:`layer_constant`: the init's scale, never the
    trained weights'). Every other parameter and buffer (biases) goes back to θ₀. In place.

    Args:
        model: the network (its weights are overwritten).
        initial_state_dict: θ₀ (only read).
        masks: the ticket's masks, by weight name.

    Returns:
        ``model``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> theta0 = {"0.weight": torch.tensor([[1.0, -3.0], [2.0, 0.5]]), "0.bias": torch.zeros(2)}
        >>> mask = {"0.weight": torch.tensor([[True, True], [False, True]])}
        >>> [[round(v, 3) for v in row] for row in sign_constant_reinit(net, theta0, mask)[0].weight.tolist()]
        [[2.175, -2.175], [0.0, 2.175]]
    """
    check_masks_fit(model, masks)
    _check_theta0(model, initial_state_dict)
    model.load_state_dict({name: value.clone() for name, value in initial_state_dict.items()})
    parameters = dict(model.named_parameters())
    for name, mask in masks.items():
        initial = initial_state_dict[name].to(parameters[name])
        parameters[name].copy_(initial.sign() * layer_constant(initial) * mask.to(initial))
    return model


@torch.no_grad()
def shuffle_survivors(model: nn.Module, initial_state_dict: Mapping[str, torch.Tensor], masks: Masks,
                      generator: torch.Generator) -> nn.Module:
    """Reset survivors to θ₀'s surviving values of their layer in a random order; pruned weights to zero.

    Zhou et al.'s "reshuffle": the distribution of each layer's surviving initial values is kept,
    which value sits where is not. Other parameters go back to θ₀. In place.

    Args:
        model: the network.
        initial_state_dict: θ₀ (only read).
        masks: the ticket's masks.
        generator: a seeded CPU generator.

    Returns:
        ``model``.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 1))
        >>> theta0 = {"0.weight": torch.tensor([[1.0, 2.0, 3.0]]), "0.bias": torch.zeros(1)}
        >>> mask = {"0.weight": torch.tensor([[True, False, True]])}
        >>> w = shuffle_survivors(net, theta0, mask, torch.Generator().manual_seed(0))[0].weight
        >>> sorted(w[0].tolist())
        [0.0, 1.0, 3.0]
    """
    check_masks_fit(model, masks)
    _check_theta0(model, initial_state_dict)
    model.load_state_dict({name: value.clone() for name, value in initial_state_dict.items()})
    parameters = dict(model.named_parameters())
    for name, mask in masks.items():
        initial = initial_state_dict[name].to(parameters[name])
        flat_mask = mask.reshape(-1).to(initial.device)
        kept = initial.reshape(-1)[flat_mask]
        shuffled = torch.zeros_like(initial).reshape(-1)
        shuffled[flat_mask] = kept[torch.randperm(kept.numel(), generator=generator).to(kept.device)]
        parameters[name].copy_(shuffled.view_as(initial))
    return model


class _FrozenLinear(nn.Linear):
    """A Linear layer whose pruned weights hold fixed values: weight + frozen_offset."""

    def forward(self, x):
        return F.linear(x, self.weight + self.frozen_offset, self.bias)


class _FrozenConv2d(nn.Conv2d):
    """A Conv2d layer whose pruned weights hold fixed values: weight + frozen_offset."""

    def forward(self, x):
        return self._conv_forward(x, self.weight + self.frozen_offset, self.bias)


@torch.no_grad()
def freeze_pruned_at_init(model: nn.Module, initial_state_dict: Mapping[str, torch.Tensor],
                          masks: Masks) -> nn.Module:
    """Make the pruned weights hold θ₀ for good instead of zero ("zeros" vs "frozen at init").

    Every prunable layer computes with ``weight + frozen_offset``, where the non-persistent buffer
    ``frozen_offset = θ₀ ⊙ (1 - mask)``. Masked training keeps the pruned entries of ``weight`` at
    zero (their gradient is masked), so the pruned weights act as θ₀ and never change while the
    survivors train. The parameters keep their names and the ``state_dict`` its keys (the offset
    is not saved in it); :func:`lthkit.core.masks.prunable_weights` still reads the trainable part.
    The model is first set to θ₀ ⊙ mask (biases θ₀). In place.

    Args:
        model: the network.
        initial_state_dict: θ₀ (only read).
        masks: the ticket's masks.

    Returns:
        ``model``.

    Example:
        >>> layer = nn.Sequential(nn.Linear(2, 1, bias=False))
        >>> theta0 = {"0.weight": torch.tensor([[1.0, 2.0]])}
        >>> model = freeze_pruned_at_init(layer, theta0, {"0.weight": torch.tensor([[True, False]])})
        >>> model[0].weight.tolist(), model(torch.ones(1, 2)).item()
        ([[1.0, 0.0]], 3.0)
    """
    check_masks_fit(model, masks)
    _check_theta0(model, initial_state_dict)
    model.load_state_dict({name: value.clone() for name, value in initial_state_dict.items()})
    for module_name, module in prunable_layers(model).items():
        key = f"{module_name}.weight"
        mask = masks[key].to(module.weight.device)
        initial = initial_state_dict[key].to(module.weight)
        module.weight.mul_(mask.to(initial))
        module.__class__ = _FrozenLinear if isinstance(module, nn.Linear) else _FrozenConv2d
        module.register_buffer("frozen_offset", initial * (~mask).to(initial), persistent=False)
    return model


def effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights each prunable layer computes with (``weight + frozen_offset`` where frozen)."""
    return {f"{name}.weight": (module.weight + module.frozen_offset if hasattr(module, "frozen_offset")
                               else module.weight).detach()
            for name, module in prunable_layers(model).items()}


@torch.no_grad()
def supermask_accuracy(model: nn.Module, masks: Masks, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Test accuracy of ``model``'s weights (θ₀) times ``masks``, with no training at all.

    A copy is masked and evaluated under ``torch.no_grad()``: no optimizer is made, no gradient
    computed, and ``model`` is not changed.

    Args:
        model: the network at the weights to mask (θ₀, or a sign-constant reset of it).
        masks: the mask set.
        images, labels: the evaluation set (MNIST's test images).

    Returns:
        The accuracy, a fraction.

    Example:
        >>> layer = nn.Sequential(nn.Linear(2, 2, bias=False))
        >>> _ = layer.load_state_dict({"0.weight": torch.tensor([[1.0, 0.0], [0.0, 1.0]])})
        >>> supermask_accuracy(layer, {"0.weight": torch.ones(2, 2, dtype=torch.bool)},
        ...                    torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
        1.0
    """
    check_masks_fit(model, masks)
    masked = apply_masks_(copy.deepcopy(model).to(images.device), {k: v.to(images.device) for k, v in masks.items()})
    return float(evaluate(masked, images, labels)[1])
