"""What one IMP round trains: the winning ticket and the paper's controls, as registered branches.

A *branch* is a small function that, given what a run knows before a round (θ₀, the rewind
weights θ_k, the previous round's mask and trained weights, and the masks of the runs it depends
on), returns the round's starting network, its mask and the iteration it starts from. Every
branch is registered under a name in :data:`BRANCHES`; that name is what
:attr:`lthkit.lottery.LotteryConfig.control` selects, and one driver
(:func:`lthkit.lottery.run_lotteries`) runs any mix of them, resolving what each one needs.

The three branches of Frankle & Carbin (§2):

* ``ticket``: prune the previous round's trained weights by magnitude, rewind the survivors;
* ``reinit``: the ticket's mask of the same round, with a fresh random initialization;
* ``random_prune``: a random mask with the ticket's per-layer counts, from the ticket's own
  starting weights (θ₀ or θ_k).

Adding a control is one function and one entry (see the README for a complete example):

    >>> @register_branch("dense_reinit", needs=(), uses_rewind_point=False)  # doctest: +SKIP
    ... def dense_reinit(inputs: RoundInputs) -> RoundStart:
    ...     model = inputs.model(seed=derive_seed(inputs.config.seed, "dense_reinit", inputs.round))
    ...     return RoundStart(model, full_masks(model))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from . import LthkitError
from .criteria import DEFAULT_CRITERION, criterion_masks
from .masks import Masks, full_masks, magnitude_masks, prunable_weights, random_masks_like
from .models import build_model

if TYPE_CHECKING:  # only for annotations: lottery imports this module
    from .data import MNISTData
    from .lottery import LotteryConfig, RoundRecord
    from .train import TrainConfig


def derive_seed(*parts) -> int:
    """A 63-bit seed from any parts (``derive_seed(3, "reinit", 2)``), stable across runs and machines."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class RoundInputs:
    """What a branch knows when it chooses round ``round`` of a run.

    Attributes:
        config: the run's config.
        round: the round about to be trained (0 is the dense round).
        theta0: the trial's initial weights θ₀ (a state dict on the CPU).
        rewind_k: the rewind iteration k (0 for θ₀), or ``None`` for ``rewind="none"``.
        rewind_state: the weights survivors rewind to (θ₀ or θ_k), known from round 1 on.
        previous: the previous round of this run (its mask and trained weights); ``None`` in round 0.
        needed_masks: for each branch in :attr:`Branch.needs`, that run's mask of this round.
        layer_rates: the config's per-layer rate overrides, as a dict.
        total_iterations: the training budget T in iterations on the run's data.
        data: the run's data, for branches that read a batch to choose their mask (SNIP, GraSP).
    """

    config: "LotteryConfig"
    round: int
    theta0: dict
    rewind_k: int | None
    rewind_state: dict | None
    previous: "RoundRecord | None"
    needed_masks: dict[str, Masks] = field(default_factory=dict)
    layer_rates: dict = field(default_factory=dict)
    total_iterations: int | None = None
    #: the run's data (MNIST in memory), for branches that look at a batch before training (SNIP, GraSP).
    data: "MNISTData | None" = None

    def model(self, seed: int | None = None) -> nn.Module:
        """A freshly built network of the run's model: θ₀ by default, or initialized from ``seed``."""
        return build_model(self.config.model, seed=self.config.seed if seed is None else seed)


@dataclass
class RoundStart:
    """What a branch returns: the network at its starting weights, its mask, where training starts.

    ``train`` replaces the run's training config for this round (``None``: the run's own), and
    ``reorder = (iteration, seed)`` changes the batch order at that iteration
    (:func:`lthkit.train.batch_order`).
    """

    model: nn.Module
    mask: Masks
    start_iteration: int = 0
    train: "TrainConfig | None" = None
    reorder: tuple | None = None
    #: whether the network may be trained as part of a batched model (a plain copy of the
    #: registered model); ``False`` for networks with layers of their own (frozen pruned weights).
    batchable: bool = True


@dataclass(frozen=True)
class Branch:
    """A registered kind of run.

    Attributes:
        start_round: ``RoundInputs -> RoundStart``, called once per round.
        needs: names of branches whose mask of the same round this one reads (the run with the
            same config and that ``control``); the driver runs them first, or alongside.
        uses_rewind_point: whether rounds start from the rewind weights, so that round 0 must
            capture θ_k when k > 0.
        requires_rewind_point: whether ``rewind="none"`` is refused for this branch.
    """

    start_round: Callable[[RoundInputs], RoundStart]
    needs: tuple[str, ...] = ()
    uses_rewind_point: bool = True
    requires_rewind_point: bool = False


#: Every branch by name: the values :attr:`lthkit.lottery.LotteryConfig.control` accepts. A test
#: or a notebook may add entries (``monkeypatch.setitem(BRANCHES, "mine", Branch(...))``).
BRANCHES: dict[str, Branch] = {}


def register_branch(name: str, *, needs=(), uses_rewind_point: bool = True, requires_rewind_point: bool = False,
                    registry: dict[str, Branch] | None = None):
    """A decorator that registers ``start_round`` as the branch ``name`` (in :data:`BRANCHES` by default).

    Raises:
        LthkitError: the name is taken.
    """
    target = BRANCHES if registry is None else registry

    def register(start_round: Callable[[RoundInputs], RoundStart]):
        if name in target:
            raise LthkitError(f"a branch named {name!r} is registered already")
        target[name] = Branch(start_round, needs=tuple(needs), uses_rewind_point=uses_rewind_point,
                              requires_rewind_point=requires_rewind_point)
        return start_round
    return register


def get_branch(name: str) -> Branch:
    """The branch registered as ``name``.

    Raises:
        LthkitError: no such branch.
    """
    if name not in BRANCHES:
        raise LthkitError(f"unknown control {name!r}; choose one of {', '.join(BRANCHES)}")
    return BRANCHES[name]


def _rewound(inputs: RoundInputs, model: nn.Module, mask: Masks) -> RoundStart:
    """``model`` at the rewind weights from round 1 on (θ₀ in round 0), starting at k."""
    if inputs.round == 0:
        model.load_state_dict(inputs.theta0)
        return RoundStart(model, mask)
    model.load_state_dict(inputs.rewind_state)
    return RoundStart(model, mask, start_iteration=inputs.rewind_k)


@register_branch("ticket")
def ticket(inputs: RoundInputs) -> RoundStart:
    """The winning ticket: prune the previous round's trained weights by magnitude, then rewind.

    With another mask criterion (``config.criterion``, :mod:`lthkit.criteria`) the surviving
    weights are ranked by it instead, from the weights the previous round started and ended with.
    """
    config, previous = inputs.config, inputs.previous
    model = inputs.model()
    if inputs.round == 0:
        return _rewound(inputs, model, full_masks(model))
    # Rank the previous round's trained weights, never θ₀.
    model.load_state_dict(previous.trained_state)
    if config.criterion == DEFAULT_CRITERION:
        mask = magnitude_masks(prunable_weights(model), previous.mask, config.per_round_rate, scope=config.scope,
                               layer_rates=inputs.layer_rates)
    else:
        started = inputs.rewind_state if inputs.rewind_state is not None else inputs.theta0
        generator = torch.Generator().manual_seed(derive_seed(config.seed, "criterion", config.criterion,
                                                              inputs.round))
        mask = criterion_masks(config.criterion, started, previous.trained_state, previous.mask,
                               config.per_round_rate, scope=config.scope, layer_rates=inputs.layer_rates,
                               generator=generator)
    if inputs.rewind_k is None:  # rewind "none": keep the trained weights (pruning + fine-tuning)
        return RoundStart(model, mask)
    return _rewound(inputs, model, mask)


@register_branch("reinit", needs=("ticket",), uses_rewind_point=False)
def reinit(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask of this round with a fresh random initialization."""
    seed = derive_seed(inputs.config.seed, "reinit", inputs.round)
    return RoundStart(inputs.model(seed=seed), inputs.needed_masks["ticket"])


@register_branch("random_prune", needs=("ticket",), requires_rewind_point=True)
def random_prune(inputs: RoundInputs) -> RoundStart:
    """The ticket's per-layer counts at random positions, from the ticket's own starting weights."""
    ticket_mask = inputs.needed_masks["ticket"]
    if inputs.round == 0:
        return _rewound(inputs, inputs.model(), ticket_mask)
    generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "random_prune", inputs.round))
    return _rewound(inputs, inputs.model(), random_masks_like(ticket_mask, generator))


# --- retraining after pruning (Renda, Frankle & Carbin 2020) ---------------------------------------
#
# Three ways to retrain the pruned network of each round, each its own IMP chain, with one budget:
# every round after the first trains T − k iterations (k: the run's rewind point, T: the budget).

def _pruned_trained(inputs: RoundInputs) -> tuple[nn.Module, Masks]:
    """The previous round's trained weights and this round's magnitude mask of them."""
    model = inputs.model()
    model.load_state_dict(inputs.previous.trained_state)
    mask = magnitude_masks(prunable_weights(model), inputs.previous.mask, inputs.config.per_round_rate,
                           scope=inputs.config.scope, layer_rates=inputs.layer_rates)
    return model, mask


def final_rate_config(config: "TrainConfig", total_iterations: int) -> "TrainConfig":
    """``config`` at a constant learning rate: the rate its schedule reaches at its last step."""
    import dataclasses

    return dataclasses.replace(config, lr=config.lr_at(total_iterations - 1), lr_milestones=(), warmup_iterations=0)


@register_branch("finetune", uses_rewind_point=False, requires_rewind_point=True)
def finetune(inputs: RoundInputs) -> RoundStart:
    """Fine-tuning: keep the trained weights, train T − k more iterations at the final learning rate."""
    if inputs.round == 0:
        return _rewound(inputs, inputs.model(), full_masks(inputs.model()))
    model, mask = _pruned_trained(inputs)
    return RoundStart(model, mask, start_iteration=inputs.rewind_k,
                      train=final_rate_config(inputs.config.train, inputs.total_iterations))


@register_branch("weight_rewind", requires_rewind_point=True)
def weight_rewind(inputs: RoundInputs) -> RoundStart:
    """Weight rewinding: survivors back to θ_k, the schedule replayed from k (IMP's ticket, by this name)."""
    if inputs.round == 0:
        return _rewound(inputs, inputs.model(), full_masks(inputs.model()))
    model, mask = _pruned_trained(inputs)
    return _rewound(inputs, model, mask)


@register_branch("lr_rewind", uses_rewind_point=False, requires_rewind_point=True)
def lr_rewind(inputs: RoundInputs) -> RoundStart:
    """Learning-rate rewinding: keep the trained weights, replay the learning-rate schedule from k."""
    if inputs.round == 0:
        return _rewound(inputs, inputs.model(), full_masks(inputs.model()))
    model, mask = _pruned_trained(inputs)
    return RoundStart(model, mask, start_iteration=inputs.rewind_k)


#: The three retraining branches, in Renda et al.'s order.
RETRAINING = ("finetune", "weight_rewind", "lr_rewind")


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


@register_branch("ticket_twin", needs=("ticket",), requires_rewind_point=True)
def ticket_twin(inputs: RoundInputs) -> RoundStart:
    """The winning ticket's round (its mask, from θ_k), with another batch order from k on."""
    return _twin(inputs, _rewound(inputs, inputs.model(), inputs.needed_masks["ticket"]))


@register_branch("random_prune_twin", needs=("random_prune",), requires_rewind_point=True)
def random_prune_twin(inputs: RoundInputs) -> RoundStart:
    """The random-pruning control's round (its random mask, from θ_k), with another batch order from k on."""
    return _twin(inputs, _rewound(inputs, inputs.model(), inputs.needed_masks["random_prune"]))


@register_branch("reinit_twin", needs=("reinit",), uses_rewind_point=False, requires_rewind_point=True)
def reinit_twin(inputs: RoundInputs) -> RoundStart:
    """The re-init control's round (the ticket's mask, fresh weights, from iteration 0), another order from k on."""
    seed = derive_seed(inputs.config.seed, "reinit", inputs.round)
    return _twin(inputs, RoundStart(inputs.model(seed=seed), inputs.needed_masks["reinit"]))


#: Each run of instability analysis and its twin.
TWINS = {"ticket": "ticket_twin", "random_prune": "random_prune_twin", "reinit": "reinit_twin"}
# --- Ticket anatomy (issue 16): resets, frozen zeros, pruning at initialization -----------------
# Zhou et al. 2019 (resets of the ticket's survivors, pruned weights frozen at θ₀) and the
# pruning-at-initialization methods with the sanity checks of Frankle et al. 2021; the scores live
# in lthkit.resets and lthkit.pai. Every branch here starts from θ₀ (k = 0).

from . import pai as _pai  # noqa: E402
from . import resets as _resets  # noqa: E402

#: Images in the batch SNIP and GraSP score θ₀ on (Lee et al.: one batch of 100 for MNIST).
PAI_BATCH_SIZE = 100


@register_branch("sign_constant", needs=("ticket",), uses_rewind_point=False)
def sign_constant(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask with its survivors at sign(θ₀) × the layer's θ₀ standard deviation."""
    mask = inputs.needed_masks["ticket"]
    return RoundStart(_resets.sign_constant_reinit(inputs.model(), inputs.theta0, mask), mask)


@register_branch("shuffled_init", needs=("ticket",), uses_rewind_point=False)
def shuffled_init(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask with θ₀'s surviving values shuffled within each layer."""
    mask = inputs.needed_masks["ticket"]
    generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "shuffled_init", inputs.round))
    return RoundStart(_resets.shuffle_survivors(inputs.model(), inputs.theta0, mask, generator), mask)


@register_branch("frozen_pruned", needs=("ticket",), uses_rewind_point=False)
def frozen_pruned(inputs: RoundInputs) -> RoundStart:
    """The ticket's mask and θ₀, with the pruned weights frozen at θ₀ instead of zero."""
    mask = inputs.needed_masks["ticket"]
    return RoundStart(_resets.freeze_pruned_at_init(inputs.model(), inputs.theta0, mask), mask, batchable=False)


def ticket_survivors(config: "LotteryConfig", round_index: int, model: nn.Module) -> int:
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
            return RoundStart(model, full_masks(model))
        keep = ticket_survivors(inputs.config, inputs.round, model)
        batch = (None, None)
        if method in _pai.DATA_METHODS:
            if inputs.data is None:
                raise LthkitError(f"pai_{method} needs the run's data to score θ₀ on a batch")
            generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "pai_batch"))
            batch = _pai.pai_batch(inputs.data, PAI_BATCH_SIZE, generator)
        generator = torch.Generator().manual_seed(derive_seed(inputs.config.seed, "pai_random", inputs.round))
        mask = _pai.prune_at_init(method, model, keep=keep, inputs=batch[0], targets=batch[1], generator=generator)
        return RoundStart(model, mask)
    start_round.__doc__ = (f"θ₀ pruned once by {method} (lthkit.pai) to the IMP ticket's count of the round "
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


for _method in _pai.PAI_METHODS:
    register_branch(f"pai_{_method}", uses_rewind_point=False)(_pai_branch(_method))
    register_branch(f"pai_{_method}_shuffled", needs=(f"pai_{_method}",), uses_rewind_point=False)(
        _pai_shuffled(_method))
    register_branch(f"pai_{_method}_reinit", needs=(f"pai_{_method}",), uses_rewind_point=False)(_pai_reinit(_method))
