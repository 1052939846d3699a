"""Frankle & Carbin's branches: the winning ticket and its two controls.
"""

from __future__ import annotations

import torch

from ...core.masks import Masks, random_masks_like
from ..scorers import criterion_masks
from .base import Branch, RoundInputs, RoundStart, _rewound, derive_seed


def prune_survivors(inputs: RoundInputs) -> Masks:
    """IMP's pruning step: the previous round's survivors, ``config.per_round_rate`` of them pruned.

    The survivors are ranked by the config's mask criterion (:mod:`lthkit.imp.scorers`) from the
    weights the previous round started from (θ₀, or θ_k) and the weights it *trained* to, never
    θ₀ alone; by default the magnitude of the trained weights, exactly
    :func:`lthkit.core.masks.magnitude_masks`. Pruned weights stay pruned. Every branch that prunes
    as IMP does calls this one function, whatever network and training loop the run has.

    Args:
        inputs: what the run knows before the round (round ≥ 1: ``previous`` holds the last mask
            and trained weights).

    Returns:
        The round's mask set (the previous mask's names and shapes).
    """
    config, previous = inputs.config, inputs.previous
    started = inputs.rewind_state if inputs.rewind_state is not None else inputs.theta0
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "criterion", config.criterion, inputs.round))
    return criterion_masks(config.criterion, started, previous.trained_state, previous.mask, config.per_round_rate,
                           scope=config.scope, layer_rates=inputs.layer_rates, generator=generator)


def ticket(inputs: RoundInputs) -> RoundStart:
    """The winning ticket: prune the previous round's trained weights (:func:`prune_survivors`), then rewind.

    The survivors go back to the rewind weights (θ₀ or θ_k), or, with ``rewind="none"``, keep the
    trained weights (pruning + fine-tuning).
    """
    model = inputs.model()
    if inputs.round == 0:
        return _rewound(inputs, model, inputs.full_masks(model))
    mask = prune_survivors(inputs)
    if inputs.rewind_k is None:  # rewind "none": keep the trained weights
        model.load_state_dict(inputs.previous.trained_state)
        return RoundStart(model, mask)
    return _rewound(inputs, model, mask)


def reinit(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask of this round with a fresh random initialization."""
    seed = derive_seed(inputs.config.seed, "reinit", inputs.round)
    return RoundStart(inputs.model(seed=seed), inputs.needed_masks["ticket"])


def reinit_draw(draw: int):
    """The re-init control's ``draw``-th fresh initialization of the ticket's mask (the paper re-initializes each
    ticket three times, §2); draw 1 is ``reinit`` itself."""
    def start_round(inputs: RoundInputs) -> RoundStart:
        seed = derive_seed(inputs.config.seed, "reinit", inputs.round, draw)
        return RoundStart(inputs.model(seed=seed), inputs.needed_masks["ticket"])
    start_round.__doc__ = f"The ticket's mask of this round with fresh random initialization number {draw}."
    return start_round


def random_prune(inputs: RoundInputs) -> RoundStart:
    """The ticket's per-layer counts at random positions, from the ticket's own starting weights."""
    ticket_mask = inputs.needed_masks["ticket"]
    if inputs.round == 0:
        return _rewound(inputs, inputs.model(), ticket_mask)
    generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "random_prune", inputs.round))
    return _rewound(inputs, inputs.model(), random_masks_like(ticket_mask, generator))


#: How many re-initializations of one ticket the family offers (the paper's 3, and more).
MAX_REINIT_DRAWS = 10

#: This family's branches, in the order they are listed everywhere.
BRANCHES = (
    Branch("ticket", ticket, label="winning ticket", colour="#1f77b4", control=True),
    Branch("reinit", reinit, label="random re-init", colour="#d62728", needs=("ticket",), uses_rewind_point=False,
           control=True),
    Branch("random_prune", random_prune, label="random pruning", colour="#2ca02c", needs=("ticket",),
           requires_rewind_point=True, control=True),
    *(Branch(f"reinit_draw{draw}", reinit_draw(draw), label=f"random re-init, draw {draw}", colour="#d62728",
             needs=("ticket",), uses_rewind_point=False) for draw in range(2, MAX_REINIT_DRAWS + 1)),
)
#: The paper's three kinds of run: the winning ticket and its two controls.
PAPER_CONTROLS = ("ticket", "reinit", "random_prune")


def reinit_draws(count: int) -> tuple[str, ...]:
    """The branches of ``count`` re-initializations of each ticket: ``reinit``, ``reinit_draw2``, ..."""
    return ("reinit", *(f"reinit_draw{draw}" for draw in range(2, count + 1)))
