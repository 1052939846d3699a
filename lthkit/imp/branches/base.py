"""The branch registry: what a branch receives, what it returns, and how it is registered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ...core.masks import Masks, prunable_weights
from ...core.models import build_model
from ...core.registry import Registry


def derive_seed(*parts) -> int:
    """A 63-bit seed from any parts (``derive_seed(3, "reinit", 2)``), stable across runs and machines."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _kit_prunable(model: nn.Module) -> list[str]:
    return list(prunable_weights(model))


@dataclass(frozen=True)
class Network:
    """Where a run's networks come from: θ₀ of its trial, a fresh initialization, and which weights are prunable.

    The driver and the branches never build a network any other way, so one engine prunes the
    kit's own models (:func:`kit_network`) and any ``nn.Module`` (:func:`lthkit.imp.find.find_ticket`).

    Attributes:
        build: ``build(seed)``: a new network, at the trial's θ₀ for ``seed=None``, else freshly
            initialized from ``seed`` (a control's re-initialization).
        prunable: ``prunable(model)``: the names of its prunable parameters, in the model's order
            (default: every Linear and Conv2d weight, :func:`lthkit.core.masks.prunable_weights`).

    Example:
        >>> network = kit_network("lenet300_100", seed=0)
        >>> list(network.full_masks(network.build(None)))
        ['fc1.weight', 'fc2.weight', 'fc3.weight']
    """

    build: Callable[[int | None], nn.Module]
    prunable: Callable[[nn.Module], list[str]] = _kit_prunable

    def full_masks(self, model: nn.Module) -> Masks:
        """An all-``True`` mask of every prunable parameter of ``model`` (the dense round)."""
        parameters = dict(model.named_parameters())
        return {name: torch.ones_like(parameters[name], dtype=torch.bool) for name in self.prunable(model)}


def kit_network(model_name: str, seed: int) -> Network:
    """The :class:`Network` of one of the kit's models (:data:`lthkit.core.models.MODELS`) for trial ``seed``."""
    return Network(lambda init_seed=None: build_model(model_name, seed=seed if init_seed is None else init_seed))


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
        network: where the run's networks come from (``None``: the kit's model ``config.model``).
    """

    #: the run's :class:`~lthkit.imp.config.LotteryConfig` (typed loosely: the config module imports this one)
    config: Any
    round: int
    theta0: dict
    rewind_k: int | None
    rewind_state: dict | None
    #: the previous round's :class:`~lthkit.imp.records.RoundRecord`
    previous: Any
    needed_masks: dict[str, Masks] = field(default_factory=dict)
    layer_rates: dict = field(default_factory=dict)
    total_iterations: int | None = None
    #: the run's data (MNIST in memory), for branches that look at a batch before training (SNIP, GraSP).
    data: Any = None
    network: Network | None = None

    def __post_init__(self):
        if self.network is None:
            self.network = kit_network(self.config.model, self.config.seed)

    def model(self, seed: int | None = None) -> nn.Module:
        """A freshly built network of the run: θ₀ by default, or initialized from ``seed``."""
        return self.network.build(seed)

    def full_masks(self, model: nn.Module) -> Masks:
        """An all-``True`` mask of every prunable weight of ``model`` (the dense round's mask)."""
        return self.network.full_masks(model)


@dataclass
class RoundStart:
    """What a branch returns: the network at its starting weights, its mask, where training starts.

    ``train`` replaces the run's training config for this round (``None``: the run's own), and
    ``reorder = (iteration, seed)`` changes the batch order at that iteration
    (:func:`lthkit.core.train.batch_order`).
    """

    model: nn.Module
    mask: Masks
    start_iteration: int = 0
    #: a :class:`~lthkit.core.train.TrainConfig`, or ``None``
    train: Any = None
    reorder: tuple | None = None
    #: whether the network may be trained as part of a batched model (a plain copy of the
    #: registered model); ``False`` for networks with layers of their own (frozen pruned weights).
    batchable: bool = True


@dataclass(frozen=True)
class Branch:
    """A kind of run: what each of its rounds trains, and how it is shown.

    Attributes:
        name: what :attr:`lthkit.imp.config.LotteryConfig.control` says to select it (``"reinit"``).
        start_round: ``RoundInputs -> RoundStart``, called once per round.
        label: what figures, the dashboard and reports call it (``"random re-init"``).
        colour: its colour in every figure (``None``: the next of matplotlib's cycle).
        needs: names of branches whose mask of the same round this one reads (the run with the
            same config and that ``control``); the driver runs them first, or alongside.
        uses_rewind_point: whether rounds start from the rewind weights, so that round 0 must
            capture θ_k when k > 0.
        requires_rewind_point: whether ``rewind="none"`` is refused for this branch.
        control: offered where one chooses what to train beside the ticket: ``--control`` of
            ``run`` and ``reproduce``, and the dashboard's control choice.
    """

    name: str
    start_round: Callable[[RoundInputs], RoundStart]
    label: str
    colour: str | None = None
    needs: tuple[str, ...] = ()
    uses_rewind_point: bool = True
    requires_rewind_point: bool = False
    control: bool = False


class Branches(Registry):
    """The registry of branches, in order: each family module lists its own, and every edge (the config's
    check, the CLI's choices, the plots' labels and colours, the summary reader, the dashboard) reads it.

    Example:
        >>> registry = Branches([Branch("plain", lambda inputs: None, label="plain")])
        >>> list(registry), registry.label("plain"), registry.label("other")
        (['plain'], 'plain', 'other')
    """

    def __init__(self, branches=()):
        super().__init__(branches, kind="control")

    def controls(self) -> tuple[str, ...]:
        """The names of the branches offered as controls, in order (the paper's three by default)."""
        return tuple(name for name, branch in self._items.items() if branch.control)

    def label(self, name: str) -> str:
        """What figures call branch ``name`` (the name itself for anything unregistered)."""
        return self._items[name].label if name in self._items else name

    def colour(self, name: str) -> str | None:
        """The colour of branch ``name`` in figures, or ``None``."""
        return self._items[name].colour if name in self._items else None


def _rewound(inputs: RoundInputs, model: nn.Module, mask: Masks) -> RoundStart:
    """``model`` at the rewind weights from round 1 on (θ₀ in round 0), starting at k.

    The weights are loaded as a state dict: the model's real parameters and buffers, so a
    rewind can never land on a computed ``module.weight`` instead of what trains.
    """
    if inputs.round == 0:
        model.load_state_dict(inputs.theta0)
        return RoundStart(model, mask)
    model.load_state_dict(inputs.rewind_state)
    return RoundStart(model, mask, start_iteration=inputs.rewind_k)
