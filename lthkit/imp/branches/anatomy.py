"""Ticket anatomy: Zhou et al.'s resets and frozen zeros, and pruning at initialization with its sanity checks.

Zhou, Lan, Liu & Yosinski (2019) reset a ticket's survivors in other ways (:mod:`lthkit.imp.resets`):
``sign_constant`` (signs of θ₀ × one constant per layer), ``shuffled_init`` (θ₀'s surviving values
shuffled within each layer) and ``frozen_pruned`` (pruned weights frozen at θ₀ instead of zero),
each with the ticket's mask of the round. The pruning-at-initialization methods
(:mod:`lthkit.imp.scorers`) prune θ₀ once to the ticket's count of the round (``pai_<method>``), and
Frankle et al. (2021)'s sanity checks shuffle that mask within each layer (``pai_<method>_shuffled``)
or re-initialize its survivors (``pai_<method>_reinit``). Every branch here starts from θ₀ (k = 0).
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.masks import full_masks, magnitude_masks, prunable_weights, random_masks_like
from ...errors import LthkitError
from .. import resets as _resets
from ..scorers import SCORERS, pai_batch, prune_at_init
from .base import Branch, RoundInputs, RoundStart, derive_seed

#: Images in the batch SNIP and GraSP score θ₀ on (Lee et al.: one batch of 100 for MNIST).
PAI_BATCH_SIZE = 100


def sign_constant(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask with its survivors at sign(θ₀) × the layer's θ₀ standard deviation."""
    mask = inputs.needed_masks["ticket"]
    return RoundStart(_resets.sign_constant_reinit(inputs.model(), inputs.theta0, mask), mask)


def shuffled_init(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask with θ₀'s surviving values shuffled within each layer."""
    mask = inputs.needed_masks["ticket"]
    generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "shuffled_init", inputs.round))
    return RoundStart(_resets.shuffle_survivors(inputs.model(), inputs.theta0, mask, generator), mask)


def frozen_pruned(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask and θ₀, with the pruned weights frozen at θ₀ instead of zero."""
    mask = inputs.needed_masks["ticket"]
    return RoundStart(_resets.freeze_pruned_at_init(inputs.model(), inputs.theta0, mask), mask, batchable=False)


def ticket_survivors(config, round_index: int, model: nn.Module) -> int:
    """How many weights the IMP ticket of ``config`` keeps in round ``round_index`` (counts only, no training).

    The counts of magnitude pruning depend on the rates and the scope, never on the weights, so
    pruning θ₀ round after round gives the ticket's counts.
    """
    mask = full_masks(model)
    for _ in range(round_index):
        mask = magnitude_masks(prunable_weights(model), mask, config.per_round_rate, scope=config.scope,
                               layer_rates=dict(config.layer_rates))
    return sum(int(part.sum()) for part in mask.values())


def _pai_branch(method: str):
    def start_round(inputs: RoundInputs) -> RoundStart:
        model = inputs.model()
        if inputs.round == 0:
            return RoundStart(model, inputs.full_masks(model))
        keep = ticket_survivors(inputs.config, inputs.round, model)
        batch = (None, None)
        if "batch" in SCORERS[method].needs:
            if inputs.data is None:
                raise LthkitError(f"pai_{method} needs the run's data to score θ₀ on a batch")
            generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "pai_batch"))
            batch = pai_batch(inputs.data, PAI_BATCH_SIZE, generator)
        generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "pai_random", inputs.round))
        mask = prune_at_init(method, model, keep=keep, inputs=batch[0], targets=batch[1], generator=generator)
        return RoundStart(model, mask)
    start_round.__doc__ = (f"θ₀ pruned once by {method} (lthkit.imp.scorers) to the IMP ticket's count of the round "
                           "(one global threshold), trained from θ₀.")
    return start_round


def _pai_shuffled(method: str):
    def start_round(inputs: RoundInputs) -> RoundStart:
        mask = inputs.needed_masks[f"pai_{method}"]
        generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "pai_shuffled", inputs.round))
        return RoundStart(inputs.model(), random_masks_like(mask, generator) if inputs.round else mask)
    start_round.__doc__ = f"pai_{method}'s mask shuffled within each layer (its per-layer counts kept), from θ₀."
    return start_round


def _pai_reinit(method: str):
    def start_round(inputs: RoundInputs) -> RoundStart:
        seed = derive_seed(inputs.config.seed, "reinit", inputs.round)
        return RoundStart(inputs.model(seed=seed), inputs.needed_masks[f"pai_{method}"])
    start_round.__doc__ = f"pai_{method}'s mask with a fresh random initialization."
    return start_round


def _pai_branches(method: str) -> tuple[Branch, ...]:
    label = SCORERS.label_at_init(method)
    return (Branch(f"pai_{method}", _pai_branch(method), label=label, uses_rewind_point=False),
            Branch(f"pai_{method}_shuffled", _pai_shuffled(method), label=f"{label}, shuffled in each layer",
                   needs=(f"pai_{method}",), uses_rewind_point=False),
            Branch(f"pai_{method}_reinit", _pai_reinit(method), label=f"{label}, re-initialized",
                   needs=(f"pai_{method}",), uses_rewind_point=False))


def pai_branch(name: str) -> Branch | None:
    """The pruning-at-init branch ``name`` (``pai_<method>``, ``..._shuffled``, ``..._reinit``) of any scorer that
    prunes at initialization, including one registered after this module was imported; ``None`` otherwise."""
    for suffix, index in (("_shuffled", 1), ("_reinit", 2), ("", 0)):
        method = name[len("pai_"):len(name) - len(suffix)] if name.startswith("pai_") and name.endswith(suffix) else ""
        if method in SCORERS and SCORERS[method].at_init:
            return _pai_branches(method)[index]
    return None


#: This family's branches, in the order they are listed everywhere.
BRANCHES = (
    Branch("sign_constant", sign_constant, label="signs of θ₀ × layer constant", needs=("ticket",),
           uses_rewind_point=False),
    Branch("shuffled_init", shuffled_init, label="θ₀ shuffled in each layer", needs=("ticket",),
           uses_rewind_point=False),
    Branch("frozen_pruned", frozen_pruned, label="pruned weights frozen at θ₀", needs=("ticket",),
           uses_rewind_point=False),
    *(branch for method in SCORERS.at_init() for branch in _pai_branches(method)),
)
