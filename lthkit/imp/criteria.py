"""Mask criteria: which weights a pruning round keeps, as registered functions of (θ_init, θ_final).

IMP keeps the weights of largest *final* magnitude. Zhou, Lan, Liu & Yosinski ("Deconstructing
Lottery Tickets: Zeros, Signs, and the Supermask", NeurIPS 2019, arXiv:1905.01067) asked whether
that is the right choice and compared other functions of a weight's initial value ``w_i`` and its
trained value ``w_f``. Each is registered here under its paper name, as a score per weight (the
higher, the more it deserves to survive):

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

:attr:`lthkit.imp.config.LotteryConfig.criterion` selects one; IMP then ranks the surviving weights
of each round by it (through :func:`criterion_masks`), in one-shot (``rounds=1``) and in
iterative runs alike. ``large_final`` goes through :func:`lthkit.core.masks.magnitude_masks` itself,
so the default is exactly IMP's magnitude pruning. θ_init is the weights the previous round
started from (θ₀, or θ_k when rewinding to k); θ_final is the weights it ended with.

A new criterion is one function and one entry; registries are plain dicts, so a test or a
notebook may pass its own (``registry=``) instead of adding to :data:`CRITERIA`.

Example:
    >>> w_i, w_f = torch.tensor([0.5, -1.0, 0.2]), torch.tensor([-0.8, -0.9, 0.1])
    >>> [round(v, 2) for v in criterion_scores("magnitude_increase", w_i, w_f).tolist()]
    [0.3, -0.1, -0.1]
    >>> [round(v, 2) for v in criterion_scores("large_final_same_sign", w_i, w_f).tolist()]
    [0.0, 0.9, 0.1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from ..core.masks import Masks, magnitude_masks, score_masks
from ..errors import LthkitError

#: The default criterion: IMP's (Frankle & Carbin's) magnitude of the trained weights.
DEFAULT_CRITERION = "large_final"


@dataclass(frozen=True)
class Criterion:
    """A registered mask criterion.

    Attributes:
        score: ``(w_init, w_final, generator) -> scores`` for one weight tensor (same shape; higher
            survives). ``generator`` is a seeded CPU generator, for criteria that draw at random.
        description: one line, for help texts and figure legends.
    """

    score: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
    description: str


#: Every mask criterion by name: the values :attr:`lthkit.imp.config.LotteryConfig.criterion` accepts.
CRITERIA: dict[str, Criterion] = {}


def register_criterion(name: str, description: str, *, registry: dict[str, Criterion] | None = None):
    """A decorator that registers ``score`` as the criterion ``name`` (in :data:`CRITERIA` by default).

    Raises:
        LthkitError: the name is taken.
    """
    target = CRITERIA if registry is None else registry

    def register(score):
        if name in target:
            raise LthkitError(f"a mask criterion named {name!r} is registered already")
        target[name] = Criterion(score, description)
        return score
    return register


def get_criterion(name: str, registry: Mapping[str, Criterion] | None = None) -> Criterion:
    """The criterion registered as ``name``.

    Raises:
        LthkitError: no such criterion.
    """
    registry = CRITERIA if registry is None else registry
    if not isinstance(name, str) or name not in registry:
        raise LthkitError(f"unknown mask criterion {name!r}; choose one of {', '.join(registry)}")
    return registry[name]


@register_criterion("large_final", "large final magnitude |w_f| (IMP's)")
def large_final(w_init, w_final, generator):
    return w_final.abs()


@register_criterion("large_init", "large initial magnitude |w_i|")
def large_init(w_init, w_final, generator):
    return w_init.abs()


@register_criterion("magnitude_increase", "magnitude increase |w_f| - |w_i|")
def magnitude_increase(w_init, w_final, generator):
    return w_final.abs() - w_init.abs()


@register_criterion("movement", "movement |w_f - w_i|")
def movement(w_init, w_final, generator):
    return (w_final - w_init).abs()


@register_criterion("large_final_same_sign", "large final magnitude, same sign as at init")
def large_final_same_sign(w_init, w_final, generator):
    # max(0, w_i w_f / |w_i|): |w_f| where the sign kept, 0 where it flipped (or w_i is 0).
    return torch.where(w_init * w_final > 0, w_final.abs(), torch.zeros_like(w_final))


@register_criterion("random", "random (a control)")
def random_criterion(w_init, w_final, generator):
    return torch.rand(w_final.shape, generator=generator).to(w_final.device)


def criterion_scores(name: str, w_init: torch.Tensor, w_final: torch.Tensor,
                     generator: torch.Generator | None = None, *, registry=None) -> torch.Tensor:
    """The scores of one weight tensor under criterion ``name``.

    Args:
        name: a name of :data:`CRITERIA` (or of ``registry``).
        w_init, w_final: the weight tensor at the start and at the end of the round (same shape).
        generator: a CPU generator for ``random`` (default: a fresh one seeded 0).
        registry: a registry to use instead of :data:`CRITERIA`.

    Returns:
        A float tensor of the weights' shape.

    Example:
        >>> criterion_scores("movement", torch.tensor([1.0, -1.0]), torch.tensor([0.5, 1.0])).tolist()
        [0.5, 2.0]
    """
    criterion = get_criterion(name, registry)
    if tuple(w_init.shape) != tuple(w_final.shape):
        raise LthkitError(f"w_init has shape {tuple(w_init.shape)}, w_final {tuple(w_final.shape)}")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    return criterion.score(w_init.detach(), w_final.detach(), generator)


def criterion_masks(name: str, theta_init: Mapping[str, torch.Tensor], theta_final: Mapping[str, torch.Tensor],
                    masks: Mapping[str, torch.Tensor], rate: float, *, scope: str = "global",
                    layer_rates: Mapping[str, float] | None = None, generator: torch.Generator | None = None,
                    registry=None) -> Masks:
    """Prune ``rate`` of the surviving weights, keeping those criterion ``name`` ranks highest.

    Args:
        name: the criterion (``large_final`` is :func:`lthkit.core.masks.magnitude_masks` of θ_final).
        theta_init, theta_final: the weights at the start and end of the round, by weight name
            (state dicts may hold more entries: only the names in ``masks`` are read).
        masks: the current masks; pruned weights stay pruned.
        rate, scope, layer_rates: as for :func:`lthkit.core.masks.magnitude_masks`.
        generator: a seeded CPU generator for criteria that draw at random.
        registry: a registry to use instead of :data:`CRITERIA`.

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
    get_criterion(name, registry)
    missing = [key for key in masks if key not in theta_init or key not in theta_final]
    if missing:
        raise LthkitError(f"theta_init and theta_final must hold every masked weight; missing {', '.join(missing)}")
    if name == DEFAULT_CRITERION and registry is None:  # IMP's own arithmetic, bit for bit
        return magnitude_masks({key: theta_final[key] for key in masks}, masks, rate, scope=scope,
                               layer_rates=layer_rates)
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    scores = {key: criterion_scores(name, theta_init[key], theta_final[key], generator, registry=registry)
              for key in masks}
    return score_masks(scores, masks, rate, scope=scope, layer_rates=layer_rates)
