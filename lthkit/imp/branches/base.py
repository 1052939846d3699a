"""The branch registry: what a branch receives, what it returns, and how it is registered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ...core.masks import Masks
from ...core.models import build_model
from ...core.registry import Registry


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

    def model(self, seed: int | None = None) -> nn.Module:
        """A freshly built network of the run's model: θ₀ by default, or initialized from ``seed``."""
        return build_model(self.config.model, seed=self.config.seed if seed is None else seed)


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
    """``model`` at the rewind weights from round 1 on (θ₀ in round 0), starting at k."""
    if inputs.round == 0:
        model.load_state_dict(inputs.theta0)
        return RoundStart(model, mask)
    model.load_state_dict(inputs.rewind_state)
    return RoundStart(model, mask, start_iteration=inputs.rewind_k)
