"""Pruning at initialization: SNIP, GraSP, SynFlow, magnitude and random, each pruning θ₀ once.

IMP needs a full training per round to find its mask. The methods here look at the network at
θ₀ only (and, for two of them, at one batch of data), score every prunable weight, and keep the
highest-scoring weights across all layers (one global threshold) until a target density is
reached; the network is then trained once from θ₀ with that mask.

* **SNIP** (Lee, Ajanthan & Torr, ICLR 2019): ``|∂L/∂w ⊙ w|`` on a batch, the connection
  sensitivity.
* **GraSP** (Wang, Zhang & Grosse, ICLR 2020): ``-w ⊙ Hg``, with ``g`` the gradient of the loss
  and ``H`` its Hessian; the weights with the *highest* GraSP score are removed (removing them
  reduces the gradient flow least), so the mask keeps the lowest. The loss is computed on logits
  divided by a temperature (200, as in the authors' code).
* **SynFlow** (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020): data-free. Every parameter is
  replaced by its absolute value, an all-ones input is fed through, and the score of a weight is
  ``|∂R/∂w ⊙ w|`` for ``R`` the sum of the outputs. Pruning is iterative: 100 rounds, each
  keeping ``d^(k/100)`` of the weights, so no layer is cut off before the others.
* **magnitude** at init: ``|w|`` of θ₀.
* **random**: uniform scores (each weight survives with the same probability).

Frankle, Dziugaite, Roy & Carbin ("Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?", ICLR 2021, arXiv:2009.08576) checked what these masks carry: shuffling a mask within
each layer (:func:`lthkit.core.masks.random_masks_like`) or re-initializing its survivors did not hurt
them, so what they find is a density per layer. The branches of :mod:`lthkit.imp.branches`
(``pai_<method>``, ``pai_<method>_shuffled``, ``pai_<method>_reinit``) train these masks through
the one IMP driver, at the densities of the IMP ticket's rounds.

Example:
    >>> from lthkit.core.models import build_model
    >>> model = build_model("lenet300_100", seed=0)
    >>> masks = prune_at_init("synflow", model, keep=26_000, rounds=10)
    >>> sum(int(m.sum()) for m in masks.values())
    26000
"""

from __future__ import annotations

import copy
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..core.masks import Masks, full_masks, prunable_weights
from ..errors import LthkitError

#: The methods, in the order figures list them.
PAI_METHODS = ("snip", "grasp", "synflow", "magnitude", "random")
#: Methods that read a batch of training data.
DATA_METHODS = ("snip", "grasp")
#: SynFlow's pruning rounds (the paper's 100).
SYNFLOW_ROUNDS = 100
#: GraSP's temperature on the logits (the authors' code: 200).
GRASP_TEMPERATURE = 200.0


def _weights_of(model: nn.Module) -> dict[str, torch.Tensor]:
    parameters = dict(model.named_parameters())
    return {name: parameters[name] for name in prunable_weights(model)}


def _check_batch(inputs, targets) -> None:
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise LthkitError("SNIP and GraSP need a batch: inputs and targets as tensors")
    if len(inputs) != len(targets) or len(inputs) == 0:
        raise LthkitError(f"inputs and targets must be one non-empty batch, got {len(inputs)} and {len(targets)}")


def snip_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """SNIP's connection sensitivity ``|∂L/∂w ⊙ w|`` of every prunable weight, on one batch.

    ``L`` is the mean cross-entropy of ``model(inputs)`` against ``targets``. Biases get no score
    (they are never pruned). The model is not changed (its gradients are left as they were).

    Args:
        model: the network at the weights to score (θ₀).
        inputs, targets: one batch.

    Returns:
        ``{weight name: scores}``, each of the weight's shape, non-negative.

    Example:
        >>> from lthkit.core.models import build_model
        >>> model = build_model("lenet300_100", seed=0)
        >>> scores = snip_scores(model, torch.randn(8, 1, 28, 28), torch.arange(8))
        >>> list(scores), bool((scores["fc1.weight"] >= 0).all())
        (['fc1.weight', 'fc2.weight', 'fc3.weight'], True)
    """
    _check_batch(inputs, targets)
    weights = _weights_of(model)
    loss = F.cross_entropy(model(inputs), targets)
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {name: (grad * weight).detach().abs() for (name, weight), grad in zip(weights.items(), grads)}


def hessian_gradient(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     temperature: float = GRASP_TEMPERATURE) -> tuple[dict, dict]:
    """The gradient ``g`` of the loss in the prunable weights and the Hessian-gradient product ``Hg``.

    ``L = cross_entropy(model(inputs) / temperature, targets)``; ``H`` is its Hessian in the
    prunable weights (biases held fixed), ``Hg`` its product with ``g`` (itself held constant),
    computed as the gradient of ``g · stop_gradient(g)``.

    Returns:
        ``(g, Hg)``, each ``{weight name: tensor}``.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 2, bias=False))
        >>> g, hg = hessian_gradient(net, torch.ones(4, 3), torch.tensor([0, 1, 0, 1]), temperature=1.0)
        >>> list(hg), tuple(hg["0.weight"].shape)
        (['0.weight'], (2, 3))
    """
    _check_batch(inputs, targets)
    weights = _weights_of(model)
    loss = F.cross_entropy(model(inputs) / temperature, targets)
    grads = torch.autograd.grad(loss, list(weights.values()), create_graph=True)
    inner = sum((grad * grad.detach()).sum() for grad in grads)
    hg = torch.autograd.grad(inner, list(weights.values()))
    return ({name: grad.detach() for name, grad in zip(weights, grads)},
            {name: value.detach() for name, value in zip(weights, hg)})


def grasp_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                 temperature: float = GRASP_TEMPERATURE) -> dict[str, torch.Tensor]:
    """GraSP's score ``-w ⊙ Hg`` of every prunable weight (the highest are removed).

    Args:
        model: the network at θ₀.
        inputs, targets: one batch.
        temperature: divides the logits (the authors' code: 200).

    Returns:
        ``{weight name: scores}`` (signed).

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 2, bias=False))
        >>> scores = grasp_scores(net, torch.ones(4, 3), torch.tensor([0, 1, 0, 1]))
        >>> tuple(scores["0.weight"].shape)
        (2, 3)
    """
    _, hg = hessian_gradient(model, inputs, targets, temperature)
    weights = _weights_of(model)
    return {name: -(weights[name].detach() * hg[name]) for name in weights}


def synflow_scores(model: nn.Module, masks: Mapping[str, torch.Tensor] | None = None,
                   input_shape: tuple[int, ...] = (1, 28, 28)) -> dict[str, torch.Tensor]:
    """SynFlow's synaptic saliency ``|∂R/∂w ⊙ w|`` of the absolute-valued, masked network; no data.

    A copy of ``model`` in float64 gets every parameter (biases too) replaced by its absolute
    value and its pruned weights zeroed; ``R`` is the sum of its outputs on one all-ones input.

    Args:
        model: the network at θ₀ (not changed).
        masks: the current masks (``None``: dense).
        input_shape: one input's shape.

    Returns:
        ``{weight name: scores}``, non-negative.

    Example (a linear network: every layer's scores sum to the same value, the output ``R``):
        >>> net = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Linear(2, 1, bias=False))
        >>> sums = [float(s.sum()) for s in synflow_scores(net, input_shape=(3,)).values()]
        >>> abs(sums[0] - sums[1]) < 1e-5
        True
    """
    linear = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for parameter in linear.parameters():
            parameter.abs_()
        weights = _weights_of(linear)
        for name, mask in (masks or {}).items():
            weights[name].mul_(mask.to(weights[name]))
    device = next(linear.parameters()).device
    output = linear(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    grads = torch.autograd.grad(output.sum(), list(weights.values()))
    return {name: (grad * weights[name]).detach().abs().float() for name, grad in zip(weights, grads)}


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


def prune_at_init(method: str, model: nn.Module, *, keep: int, inputs: torch.Tensor | None = None,
                  targets: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  rounds: int = SYNFLOW_ROUNDS) -> Masks:
    """Prune ``model`` (at θ₀) once with ``method``, keeping ``keep`` weights over all layers.

    Args:
        method: one of :data:`PAI_METHODS`.
        model: the network at θ₀ (not changed).
        keep: how many prunable weights survive, in all.
        inputs, targets: one batch, for SNIP and GraSP (ignored by the others).
        generator: a seeded CPU generator, for ``random``.
        rounds: SynFlow's pruning rounds.

    Returns:
        A mask set of ``model`` with exactly ``keep`` survivors.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> masks = prune_at_init("snip", net, keep=6, inputs=torch.randn(5, 4), targets=torch.tensor([0, 1, 1, 0, 1]))
        >>> sum(int(m.sum()) for m in masks.values())
        6
    """
    if method not in PAI_METHODS:
        raise LthkitError(f"unknown pruning-at-init method {method!r}; choose one of {', '.join(PAI_METHODS)}")
    weights = {name: weight.detach() for name, weight in prunable_weights(model).items()}
    if method == "snip":
        return keep_top(snip_scores(model, inputs, targets), keep)
    if method == "grasp":
        return keep_top({name: -score for name, score in grasp_scores(model, inputs, targets).items()}, keep)
    if method == "magnitude":
        return keep_top({name: weight.abs() for name, weight in weights.items()}, keep)
    if method == "random":
        generator = torch.Generator().manual_seed(0) if generator is None else generator
        return keep_top({name: torch.rand(weight.shape, generator=generator) for name, weight in weights.items()},
                        keep)
    total = sum(weight.numel() for weight in weights.values())
    masks = full_masks(model)
    for k in range(1, rounds + 1):  # SynFlow: exponential schedule to the target, scores recomputed each round
        step_keep = keep if k == rounds else max(keep, round(total * (keep / total) ** (k / rounds)))
        masks = keep_top(synflow_scores(model, masks), step_keep)
    return masks


def pai_batch(data, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` training images and labels drawn with ``generator`` (SNIP's and GraSP's batch), on the CPU."""
    index = torch.randperm(len(data.train_y), generator=generator)[:count].to(data.train_x.device)
    return data.train_x[index].cpu(), data.train_y[index].cpu()


SCORE_FUNCTIONS: dict[str, Callable] = {"snip": snip_scores, "grasp": grasp_scores, "synflow": synflow_scores}
