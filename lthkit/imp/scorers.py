"""Scorers: how weights are ranked for pruning, one registry for IMP's mask criteria and pruning at initialization.

Pruning is "score every surviving weight, keep the top" (like ``torch.nn.utils.prune``'s one
``compute_mask``). A :class:`Scorer` is the scoring half, registered once in :data:`SCORERS`; the
keeping half is :func:`lthkit.core.masks.score_masks` (a rate of the survivors, per layer or with one
global threshold, as IMP prunes) or :func:`lthkit.core.masks.keep_top` (a count over all layers, as
pruning at initialization prunes). A scorer looks at what :class:`ScoreInputs` holds: the weights a
round started from, the weights it ended with (IMP's criteria), the network itself and a batch
(SNIP, GraSP), the current masks (SynFlow's rounds).

**IMP's mask criteria** (:attr:`lthkit.imp.config.LotteryConfig.criterion`; Zhou, Lan, Liu &
Yosinski, "Deconstructing Lottery Tickets", NeurIPS 2019, compared functions of a weight's initial
value ``w_i`` and trained value ``w_f``):

==========================  ==========================================  ===========================
name                        score                                       keeps
==========================  ==========================================  ===========================
``large_final``             ``|w_f|``                                   IMP's: large trained weights
``large_init``              ``|w_i|``                                   large initial weights
``magnitude_increase``      ``|w_f| - |w_i|``                           weights that grew most
``movement``                ``|w_f - w_i|``                             weights that moved most
``large_final_same_sign``   ``max(0, w_i * w_f / |w_i|)``               large trained weights that
                                                                        kept their initial sign
``random``                  uniform noise                               any weights (a control)
==========================  ==========================================  ===========================

θ_init is the weights the previous round started from (θ₀, or θ_k when rewinding to k); θ_final is
the weights it ended with. ``large_final`` goes through :func:`lthkit.core.masks.magnitude_masks`
itself, so the default is exactly IMP's magnitude pruning.

**Pruning at initialization** (:func:`prune_at_init`; the branches ``pai_<method>`` of
:mod:`lthkit.imp.branches.anatomy`) looks at θ₀ only, and keeps the highest-scoring weights across
all layers until a target count is reached:

* **SNIP** (Lee, Ajanthan & Torr, ICLR 2019): ``|∂L/∂w ⊙ w|`` on a batch, the connection sensitivity.
* **GraSP** (Wang, Zhang & Grosse, ICLR 2020): ``-w ⊙ Hg``, with ``g`` the gradient of the loss and
  ``H`` its Hessian; the weights with the *highest* GraSP score are removed, so its scorer returns
  the negated score. The loss is computed on logits divided by a temperature (200, the authors').
* **SynFlow** (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020): data-free. Every parameter is
  replaced by its absolute value, an all-ones input is fed through, and the score of a weight is
  ``|∂R/∂w ⊙ w|`` for ``R`` the sum of the outputs. Pruning is iterative: 100 rounds, each keeping
  ``d^(k/100)`` of the weights, so no layer is cut off before the others.
* **magnitude** at init: ``|w|`` of θ₀; **random**: uniform scores.

Frankle, Dziugaite, Roy & Carbin ("Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?", ICLR 2021) checked what these masks carry by shuffling them within each layer or
re-initializing their survivors (the ``_shuffled`` and ``_reinit`` branches).

A new scorer is one function and one entry in :data:`SCORERS` (``criterion=True`` offers it to IMP,
``at_init=True`` to pruning at initialization); :meth:`~lthkit.core.registry.Registry.temporarily`
tries one out.

Example:
    >>> w_i, w_f = torch.tensor([0.5, -1.0, 0.2]), torch.tensor([-0.8, -0.9, 0.1])
    >>> [round(v, 2) for v in criterion_scores("magnitude_increase", w_i, w_f).tolist()]
    [0.3, -0.1, -0.1]
    >>> [round(v, 2) for v in criterion_scores("large_final_same_sign", w_i, w_f).tolist()]
    [0.0, 0.9, 0.1]
    >>> from lthkit.core.models import build_model
    >>> masks = prune_at_init("synflow", build_model("lenet300_100", seed=0), keep=26_000, rounds=10)
    >>> sum(int(m.sum()) for m in masks.values())
    26000
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..core.masks import Masks, full_masks, keep_top, magnitude_masks, prunable_weights, score_masks
from ..core.registry import Registry
from ..errors import LthkitError

#: The default criterion: IMP's (Frankle & Carbin's) magnitude of the trained weights.
DEFAULT_CRITERION = "large_final"
#: SynFlow's pruning rounds (the paper's 100).
SYNFLOW_ROUNDS = 100
#: GraSP's temperature on the logits (the authors' code: 200).
GRASP_TEMPERATURE = 200.0


@dataclass(frozen=True)
class ScoreInputs:
    """What a scorer may look at.

    Attributes:
        start: the weights to score as they started (θ₀, or θ_k), by weight name.
        final: the same weights after training (IMP's criteria); ``None`` at initialization.
        model: the network at ``start`` (scorers that run it: SNIP, GraSP, SynFlow).
        batch: ``(inputs, targets)``, one batch of training data (SNIP, GraSP).
        masks: the current masks (SynFlow scores the masked network).
        generator: a seeded CPU generator, for scorers that draw at random.
    """

    start: Mapping[str, torch.Tensor]
    final: Mapping[str, torch.Tensor] | None = None
    model: nn.Module | None = None
    batch: tuple | None = None
    masks: Mapping[str, torch.Tensor] | None = None
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))


@dataclass(frozen=True)
class Scorer:
    """A way to rank weights: ``score(ScoreInputs) -> {weight name: scores}`` (higher survives).

    Attributes:
        name: the name configs and commands use (``"movement"``, ``"snip"``).
        label: what figures call it (``"SNIP"``).
        score: the scores of every weight of ``inputs.start``.
        description: one line: what the score is.
        criterion: offered to IMP as :attr:`lthkit.imp.config.LotteryConfig.criterion`.
        at_init: offered to pruning at initialization (:func:`prune_at_init`).
        needs: what of :class:`ScoreInputs` it reads besides ``start``: ``"final"``, ``"model"``, ``"batch"``.
        iterative: pruning at init re-scores it as it prunes, in :data:`SYNFLOW_ROUNDS` rounds (SynFlow).
        label_at_init: its label among pruning-at-init methods, where that differs (``"random at init"``).
    """

    name: str
    label: str
    score: Callable[[ScoreInputs], dict]
    description: str
    criterion: bool = False
    at_init: bool = False
    needs: frozenset = frozenset()
    iterative: bool = False
    label_at_init: str | None = None


class Scorers(Registry):
    """The registry of scorers, with its two views: IMP's criteria and the pruning-at-init methods."""

    def __init__(self, scorers=()):
        super().__init__(scorers, kind="scorer")

    def criteria(self) -> tuple[str, ...]:
        """The names IMP accepts as a mask criterion, in order."""
        return tuple(name for name, scorer in self.items() if scorer.criterion)

    def at_init(self) -> tuple[str, ...]:
        """The pruning-at-initialization methods, in the order figures list them."""
        return tuple(name for name, scorer in self.items() if scorer.at_init)

    def label_at_init(self, name: str) -> str:
        scorer = self[name]
        return scorer.label_at_init or scorer.label


def _per_weight(function: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]):
    """A scorer of the whole network from a function of one weight tensor's ``(w_init, w_final, generator)``."""
    def score(inputs: ScoreInputs) -> dict:
        final = inputs.final if inputs.final is not None else inputs.start
        return {name: function(inputs.start[name].detach(), final[name].detach(), inputs.generator)
                for name in inputs.start}
    score.__doc__ = function.__doc__
    return score


# --- IMP's criteria (Zhou et al. 2019): functions of one weight's initial and trained values --------------

def large_final(w_init, w_final, generator):
    return w_final.abs()


def large_init(w_init, w_final, generator):
    return w_init.abs()


def magnitude_increase(w_init, w_final, generator):
    return w_final.abs() - w_init.abs()


def movement(w_init, w_final, generator):
    return (w_final - w_init).abs()


def large_final_same_sign(w_init, w_final, generator):
    # max(0, w_i w_f / |w_i|): |w_f| where the sign kept, 0 where it flipped (or w_i is 0).
    return torch.where(w_init * w_final > 0, w_final.abs(), torch.zeros_like(w_final))


def random_criterion(w_init, w_final, generator):
    return torch.rand(w_final.shape, generator=generator).to(w_final.device)


# --- pruning at initialization: scores of the network at θ₀ ----------------------------------------

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


def _snip(inputs: ScoreInputs) -> dict:
    return snip_scores(inputs.model, *_batch(inputs, "snip"))


def _grasp(inputs: ScoreInputs) -> dict:
    return {name: -score for name, score in grasp_scores(inputs.model, *_batch(inputs, "grasp")).items()}


def _synflow(inputs: ScoreInputs) -> dict:
    return synflow_scores(inputs.model, inputs.masks)


def _magnitude(inputs: ScoreInputs) -> dict:
    return {name: weight.detach().abs() for name, weight in inputs.start.items()}


def _random(inputs: ScoreInputs) -> dict:
    return {name: torch.rand(weight.shape, generator=inputs.generator) for name, weight in inputs.start.items()}


def _batch(inputs: ScoreInputs, name: str) -> tuple:
    if inputs.batch is None or inputs.batch[0] is None:
        raise LthkitError(f"{name} needs a batch: inputs and targets as tensors")
    return inputs.batch


#: Every scorer: IMP's criteria first, then the pruning-at-init methods ("random" serves both).
SCORERS = Scorers([
    Scorer("large_final", "large final", _per_weight(large_final), "large final magnitude |w_f| (IMP's)",
           criterion=True, needs=frozenset({"final"})),
    Scorer("large_init", "large init", _per_weight(large_init), "large initial magnitude |w_i|", criterion=True),
    Scorer("magnitude_increase", "magnitude increase", _per_weight(magnitude_increase),
           "magnitude increase |w_f| - |w_i|", criterion=True, needs=frozenset({"final"})),
    Scorer("movement", "movement", _per_weight(movement), "movement |w_f - w_i|", criterion=True,
           needs=frozenset({"final"})),
    Scorer("large_final_same_sign", "large final, same sign", _per_weight(large_final_same_sign),
           "large final magnitude, same sign as at init", criterion=True, needs=frozenset({"final"})),
    Scorer("snip", "SNIP", _snip, "SNIP's connection sensitivity |dL/dw * w| on a batch", at_init=True,
           needs=frozenset({"model", "batch"})),
    Scorer("grasp", "GraSP", _grasp, "minus GraSP's score -w * Hg (the lowest GraSP scores survive)", at_init=True,
           needs=frozenset({"model", "batch"})),
    Scorer("synflow", "SynFlow", _synflow, "SynFlow's synaptic saliency, data-free, pruned in rounds", at_init=True,
           needs=frozenset({"model"}), iterative=True),
    Scorer("magnitude", "magnitude", _magnitude, "magnitude |w| at initialization", at_init=True,
           label_at_init="magnitude at init"),
    Scorer("random", "random", _random, "random (a control)", criterion=True, at_init=True,
           label_at_init="random at init"),
])


def criterion_scores(name: str, w_init: torch.Tensor, w_final: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The scores of one weight tensor under IMP criterion ``name``.

    Args:
        name: one of :meth:`Scorers.criteria`.
        w_init, w_final: the weight tensor at the start and at the end of the round (same shape).
        generator: a CPU generator for ``random`` (default: a fresh one seeded 0).

    Returns:
        A float tensor of the weights' shape.

    Example:
        >>> criterion_scores("movement", torch.tensor([1.0, -1.0]), torch.tensor([0.5, 1.0])).tolist()
        [0.5, 2.0]
    """
    scorer = _criterion(name)
    if tuple(w_init.shape) != tuple(w_final.shape):
        raise LthkitError(f"w_init has shape {tuple(w_init.shape)}, w_final {tuple(w_final.shape)}")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    return scorer.score(ScoreInputs({"w": w_init}, {"w": w_final}, generator=generator))["w"]


def _criterion(name: str) -> Scorer:
    scorer = SCORERS.require(name)
    if not scorer.criterion:
        raise LthkitError(f"{name!r} is not a mask criterion of IMP; choose one of {', '.join(SCORERS.criteria())}")
    return scorer


def criterion_masks(name: str, theta_init: Mapping[str, torch.Tensor], theta_final: Mapping[str, torch.Tensor],
                    masks: Mapping[str, torch.Tensor], rate: float, *, scope: str = "global",
                    layer_rates: Mapping[str, float] | None = None, generator: torch.Generator | None = None) -> Masks:
    """Prune ``rate`` of the surviving weights, keeping those criterion ``name`` ranks highest.

    Args:
        name: the criterion (``large_final`` is :func:`lthkit.core.masks.magnitude_masks` of θ_final).
        theta_init, theta_final: the weights at the start and end of the round, by weight name
            (state dicts may hold more entries: only the names in ``masks`` are read).
        masks: the current masks; pruned weights stay pruned.
        rate, scope, layer_rates: as for :func:`lthkit.core.masks.magnitude_masks`.
        generator: a seeded CPU generator for criteria that draw at random.

    Returns:
        A new mask set with the counts :func:`lthkit.core.masks.magnitude_masks` would keep.

    Example:
        >>> w_i = {"a": torch.tensor([1.0, 0.1, -0.2, 0.3])}
        >>> w_f = {"a": torch.tensor([0.1, 0.9, 0.2, -0.4])}
        >>> full = {"a": torch.ones(4, dtype=torch.bool)}
        >>> criterion_masks("large_final", w_i, w_f, full, 0.5)["a"].tolist()
        [False, True, False, True]
        >>> criterion_masks("large_final_same_sign", w_i, w_f, full, 0.5)["a"].tolist()
        [True, True, False, False]
    """
    scorer = _criterion(name)
    missing = [key for key in masks if key not in theta_init or key not in theta_final]
    if missing:
        raise LthkitError(f"theta_init and theta_final must hold every masked weight; missing {', '.join(missing)}")
    if name == DEFAULT_CRITERION:  # IMP's own arithmetic, bit for bit
        return magnitude_masks({key: theta_final[key] for key in masks}, masks, rate, scope=scope,
                               layer_rates=layer_rates)
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    scores = scorer.score(ScoreInputs({key: theta_init[key] for key in masks}, {key: theta_final[key] for key in masks},
                                      generator=generator))
    return score_masks(scores, masks, rate, scope=scope, layer_rates=layer_rates)


def prune_at_init(method: str, model: nn.Module, *, keep: int, inputs: torch.Tensor | None = None,
                  targets: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  rounds: int = SYNFLOW_ROUNDS) -> Masks:
    """Prune ``model`` (at θ₀) once with ``method``, keeping ``keep`` weights over all layers.

    Args:
        method: one of :meth:`Scorers.at_init` (``snip``, ``grasp``, ``synflow``, ``magnitude``, ``random``).
        model: the network at θ₀ (not changed).
        keep: how many prunable weights survive, in all.
        inputs, targets: one batch, for the scorers that need one (SNIP, GraSP).
        generator: a seeded CPU generator, for ``random``.
        rounds: the rounds of an iterative scorer (SynFlow).

    Returns:
        A mask set of ``model`` with exactly ``keep`` survivors.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> masks = prune_at_init("snip", net, keep=6, inputs=torch.randn(5, 4), targets=torch.tensor([0, 1, 1, 0, 1]))
        >>> sum(int(m.sum()) for m in masks.values())
        6
    """
    scorer = SCORERS.require(method)
    if not scorer.at_init:
        raise LthkitError(f"unknown pruning-at-init method {method!r}; choose one of {', '.join(SCORERS.at_init())}")
    weights = {name: weight.detach() for name, weight in prunable_weights(model).items()}
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    batch = (inputs, targets) if "batch" in scorer.needs else None

    def scores(masks=None) -> dict:
        return scorer.score(ScoreInputs(weights, model=model, batch=batch, masks=masks, generator=generator))

    if not scorer.iterative:
        return keep_top(scores(), keep)
    total = sum(weight.numel() for weight in weights.values())
    masks = full_masks(model)
    for k in range(1, rounds + 1):  # exponential schedule to the target, scores recomputed each round
        step_keep = keep if k == rounds else max(keep, round(total * (keep / total) ** (k / rounds)))
        masks = keep_top(scores(masks), step_keep)
    return masks


def pai_batch(data, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` training images and labels drawn with ``generator`` (SNIP's and GraSP's batch), on the CPU."""
    index = torch.randperm(len(data.train_y), generator=generator)[:count].to(data.train_x.device)
    return data.train_x[index].cpu(), data.train_y[index].cpu()
