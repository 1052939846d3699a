"""Retraining after pruning (Renda, Frankle & Carbin 2020): fine-tuning, weight rewinding and learning-rate rewinding.
"""

from __future__ import annotations

from torch import nn

from ...core.masks import Masks
from ...core.train import TrainConfig
from .base import Branch, RoundInputs, RoundStart, _rewound
from .paper import prune_survivors

# --- retraining after pruning (Renda, Frankle & Carbin 2020) ---------------------------------------
#
# Three ways to retrain the pruned network of each round, each its own IMP chain, with one budget:
# every round after the first trains T − k iterations (k: the run's rewind point, T: the budget).

def _pruned_trained(inputs: RoundInputs) -> tuple[nn.Module, Masks]:
    """The previous round's trained weights and this round's mask of them (IMP's :func:`.paper.prune_survivors`)."""
    model = inputs.model()
    model.load_state_dict(inputs.previous.trained_state)
    return model, prune_survivors(inputs)


def _dense(inputs: RoundInputs) -> RoundStart:
    """Round 0: the dense network at θ₀."""
    model = inputs.model()
    return _rewound(inputs, model, inputs.full_masks(model))


def final_rate_config(config: "TrainConfig", total_iterations: int) -> "TrainConfig":
    """``config`` at a constant learning rate: the rate its schedule reaches at its last step."""
    import dataclasses

    return dataclasses.replace(config, lr=config.lr_at(total_iterations - 1), lr_milestones=(), warmup_iterations=0)


def finetune(inputs: RoundInputs) -> RoundStart:
    """Fine-tuning: keep the trained weights, train T − k more iterations at the final learning rate."""
    if inputs.round == 0:
        return _dense(inputs)
    model, mask = _pruned_trained(inputs)
    return RoundStart(model, mask, start_iteration=inputs.rewind_k,
                      train=final_rate_config(inputs.config.train, inputs.total_iterations))


def weight_rewind(inputs: RoundInputs) -> RoundStart:
    """Weight rewinding: survivors back to θ_k, the schedule replayed from k (IMP's ticket, by this name)."""
    if inputs.round == 0:
        return _dense(inputs)
    model, mask = _pruned_trained(inputs)
    return _rewound(inputs, model, mask)


def lr_rewind(inputs: RoundInputs) -> RoundStart:
    """Learning-rate rewinding: keep the trained weights, replay the learning-rate schedule from k."""
    if inputs.round == 0:
        return _dense(inputs)
    model, mask = _pruned_trained(inputs)
    return RoundStart(model, mask, start_iteration=inputs.rewind_k)


#: The three retraining branches, in Renda et al.'s order.
RETRAINING = ("finetune", "weight_rewind", "lr_rewind")


#: This family's branches, in the order they are listed everywhere.
BRANCHES = (
    Branch("finetune", finetune, label="fine-tuning", uses_rewind_point=False, requires_rewind_point=True),
    Branch("weight_rewind", weight_rewind, label="weight rewinding", requires_rewind_point=True),
    Branch("lr_rewind", lr_rewind, label="learning-rate rewinding", uses_rewind_point=False,
           requires_rewind_point=True),
)
