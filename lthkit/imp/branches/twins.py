"""Instability analysis (Frankle et al. 2020): each run's twin, another batch order from k.
"""

from __future__ import annotations

from .base import Branch, RoundInputs, RoundStart, _rewound, derive_seed

# --- instability analysis (Frankle, Dziugaite, Roy & Carbin 2020) ------------------------------------
#
# The twin of a run trains each round exactly as that run does (its mask, its starting weights, its
# schedule, its first k batches) and only changes the batch order from iteration k on: the two are
# the copies A and B of instability analysis, sharing θ_k and the mask and differing in SGD noise.

def twin_seed(seed: int) -> int:
    """The seed of a twin's batch order after k (another order than the run's own ``seed``)."""
    return derive_seed(seed, "twin")


def _twin(inputs: RoundInputs, start: RoundStart) -> RoundStart:
    start.reorder = (inputs.rewind_k, twin_seed(inputs.config.seed))
    return start


def ticket_twin(inputs: RoundInputs) -> RoundStart:
    """The winning ticket's round (its mask, from θ_k), with another batch order from k on."""
    return _twin(inputs, _rewound(inputs, inputs.model(), inputs.needed_masks["ticket"]))


def random_prune_twin(inputs: RoundInputs) -> RoundStart:
    """The random-pruning control's round (its random mask, from θ_k), with another batch order from k on."""
    return _twin(inputs, _rewound(inputs, inputs.model(), inputs.needed_masks["random_prune"]))


def reinit_twin(inputs: RoundInputs) -> RoundStart:
    """The re-init control's round (the ticket's mask, fresh weights, from iteration 0), another order from k on."""
    seed = derive_seed(inputs.config.seed, "reinit", inputs.round)
    return _twin(inputs, RoundStart(inputs.model(seed=seed), inputs.needed_masks["reinit"]))


#: Each run of instability analysis and its twin.
TWINS = {"ticket": "ticket_twin", "random_prune": "random_prune_twin", "reinit": "reinit_twin"}


#: This family's branches, in the order they are listed everywhere.
BRANCHES = (
    Branch("ticket_twin", ticket_twin, label="winning ticket, its twin", colour="#1f77b4", needs=("ticket",),
           requires_rewind_point=True),
    Branch("random_prune_twin", random_prune_twin, label="random pruning, its twin", colour="#2ca02c",
           needs=("random_prune",), requires_rewind_point=True),
    Branch("reinit_twin", reinit_twin, label="random re-init, its twin", colour="#d62728", needs=("reinit",),
           uses_rewind_point=False, requires_rewind_point=True),
)
