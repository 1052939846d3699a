"""The config of one IMP run (and its cache key), with every field checked at construction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import torch

from ..core.data import DataConfig
from ..core.fields import (
    SEED_LIMIT,
    check_choice,
    check_fraction,
    check_int,
    config_dict,
    document_fields,
    nested_config,
    parse_fraction,
    parse_layer_rate,
    parse_positive,
    set_fields,
)
from ..core.masks import SCOPES, layer_rate_overrides, prunable_weights
from ..core.models import MODELS
from ..core.train import TrainConfig
from ..errors import LthkitError
from .branches import get_branch
from .scorers import DEFAULT_CRITERION, SCORERS

#: Where survivors go after pruning: θ₀, θ_k (an iteration), θ_k at a fraction of training, or
#: nowhere (keep the trained weights and train again: pruning + fine-tuning).
REWINDS = ("init", "iteration", "fraction", "none")
#: The paper's default per-round rate when neither ``prune_rate`` nor ``target_sparsity`` is given.
DEFAULT_PRUNE_RATE = 0.2


@document_fields
@dataclass(frozen=True)
class LotteryConfig:
    """Everything that determines one IMP run (and its cache key).

    Every field is checked at construction, together with what the fields must agree on (the
    layer names of ``layer_rates`` exist in ``model``; the rewind point lies inside the training
    budget of the data split); each problem is a one-line :class:`~lthkit.LthkitError` that names
    the field. ``train`` and ``data`` may be given as dicts of their fields.
    """

    model: str = field(default="lenet300_100", metadata={"help": "the network", "choices": sorted(MODELS)})
    rounds: int = field(default=5, metadata={
        "help": "pruning rounds after the dense round 0", "parse": parse_positive(int)})
    prune_rate: float | None = field(default=None, metadata={
        "help": "fraction of the surviving weights pruned per round, in [0, 1)", "flag": "--rate",
        "parse": parse_fraction, "exclusive": "rate", "replaces": "target_sparsity"})
    target_sparsity: float | None = field(default=None, metadata={
        "help": "target sparsity after all rounds, in [0, 1); the per-round rate becomes "
                "1 - (1 - sparsity)^(1/rounds)",
        "doc": "Give at most one of prune_rate and target_sparsity (neither: 0.2, the paper's).",
        "flag": "--sparsity", "parse": parse_fraction, "exclusive": "rate", "replaces": "prune_rate"})
    scope: str = field(default="layer", metadata={
        "help": "one magnitude threshold across layers (global) or per layer", "choices": SCOPES})
    layer_rates: tuple = field(default=(("output", 0.1),), metadata={
        "help": "per-layer rate override, e.g. output=0.1 or fc1=0.3 (repeatable; replaces the preset's overrides)",
        "doc": 'Given as ``(("output", 0.1),)`` or a dict; keys are module or weight names, or ``"output"`` for '
               "the last layer. Overridden layers are pruned on their own.",
        "flag": "--layer-rate", "parse": parse_layer_rate, "repeat": True, "metavar": "NAME=RATE"})
    rewind: str = field(default="init", metadata={
        "help": "where survivors go after pruning: init (θ₀), iteration (θ_k), fraction (θ_k at a fraction of "
                "training) or none (keep the trained weights)", "choices": REWINDS})
    rewind_iteration: int = field(default=0, metadata={"help": "k for --rewind iteration"})
    rewind_fraction: float = field(default=0.0, metadata={
        "help": "fraction of training for --rewind fraction", "parse": parse_fraction})
    control: str = field(default="ticket", metadata={
        "help": 'what each round trains: "ticket", "reinit" or "random_prune"', "cli": False})
    criterion: str = field(default=DEFAULT_CRITERION, metadata={
        "help": "which surviving weights IMP keeps each round: large_final (the magnitude of the trained weights, "
                "IMP's), large_init, magnitude_increase, movement, large_final_same_sign or random",
        "doc": "See :mod:`lthkit.imp.scorers`. The default is left out of :meth:`to_dict`, so configs that do not "
               "change it keep the cache keys they had before it existed.",
        "choices": SCORERS.criteria})
    train: TrainConfig = field(default=TrainConfig(), metadata={
        "help": "the training hyperparameters of every round", "cli": False})
    data: DataConfig = field(default=DataConfig(), metadata={"help": "the data split", "cli": False})
    seed: int = field(default=0, metadata={
        "help": "the trial: seeds θ₀, the batch order and the controls' random draws", "cli": False})

    def __post_init__(self):
        set_fields(self, train=nested_config(self.train, TrainConfig, "train"),
                   data=nested_config(self.data, DataConfig, "data"))
        check_choice(self.model, "model", sorted(MODELS), what="model")
        check_schedule(self)
        # Accept a dict or lists (from JSON or a CLI) but store a hashable tuple of pairs.
        set_fields(self, layer_rates=layer_rate_pairs(self.layer_rates))
        layer_rate_overrides(list(model_layout(self.model)[0]), dict(self.layer_rates))  # unknown layers fail here
        check_choice(self.scope, "scope", SCOPES, what="scope")
        check_choice(self.rewind, "rewind", REWINDS, what="rewind strategy")
        check_choice(self.criterion, "criterion", SCORERS.criteria(), what="mask criterion")
        branch = get_branch(self.control)  # the registered branches (lthkit.imp.branches), not only the paper's three
        check_int(self.rewind_iteration, "rewind_iteration", minimum=0)
        set_fields(self, rewind_fraction=check_fraction(self.rewind_fraction, "rewind_fraction"))
        check_int(self.seed, "seed", minimum=0, limit=SEED_LIMIT)
        if branch.requires_rewind_point and self.rewind == "none":
            raise LthkitError(f"{self.control} needs a rewind point (init, iteration or fraction), not 'none'")
        # A rewind point past the budget fails now (with the split's nominal size; run_lottery checks the real data),
        # and so does a schedule or a batch that the budget and the split cannot hold.
        total = self.train.total_iterations(self.data.train_count)
        self.rewind_point(total)
        self.train.check_fits(total, self.data.train_count)

    @property
    def per_round_rate(self) -> float:
        """The default fraction of surviving weights pruned each round."""
        return per_round_rate(self.rounds, self.prune_rate, self.target_sparsity)

    def rewind_point(self, total_iterations: int) -> int | None:
        """The iteration k whose weights survivors rewind to (``None`` for ``rewind="none"``).

        Raises:
            LthkitError: k is not inside the training budget.
        """
        return rewind_point(self.rewind, self.rewind_iteration, self.rewind_fraction, total_iterations)

    def replace(self, **changes) -> "LotteryConfig":
        """A copy with some fields changed (``train`` and ``data`` may be given as dicts of changes)."""
        for name, cls_value in (("train", self.train), ("data", self.data)):
            if isinstance(changes.get(name), dict):
                changes[name] = dataclasses.replace(cls_value, **changes[name])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["train"] = config_dict(self.train)  # schedule fields at their defaults stay out of the key
        data["data"] = config_dict(self.data)  # so does the data set, MNIST by default
        data["layer_rates"] = [list(pair) for pair in self.layer_rates]
        if self.criterion == DEFAULT_CRITERION:  # absent by default: every earlier config keeps its key
            del data["criterion"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "LotteryConfig":
        """Rebuild a config from :meth:`to_dict`'s output; unknown or missing keys are named."""
        if not isinstance(data, dict):
            raise LthkitError(f"bad lottery config: expected a dict, got {type(data).__name__}")
        try:
            return cls(**data)  # train and data come as dicts of their fields
        except TypeError as error:
            raise LthkitError(f"bad lottery config: {error}") from None

    def key(self) -> str:
        """A stable hash of the config (the cache adds the code version)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def check_schedule(config) -> None:
    """Check (and normalise in place) a config's pruning schedule: ``rounds``, and ``prune_rate`` or
    ``target_sparsity`` (at most one of them, each a fraction in [0, 1)).

    Shared by :class:`LotteryConfig` and :class:`lthkit.imp.find.TicketConfig`, which schedule rounds alike.

    Raises:
        LthkitError: rounds below 1, both amounts given, or an amount outside [0, 1).
    """
    check_int(config.rounds, "rounds", minimum=1)
    if config.prune_rate is not None and config.target_sparsity is not None:
        raise LthkitError("give prune_rate or target_sparsity, not both")
    set_fields(config, prune_rate=None if config.prune_rate is None else check_fraction(config.prune_rate, "prune_rate"),
               target_sparsity=None if config.target_sparsity is None
               else check_fraction(config.target_sparsity, "target_sparsity"))


def per_round_rate(rounds: int, prune_rate: float | None, target_sparsity: float | None) -> float:
    """The fraction of the surviving weights pruned each round: ``prune_rate``, or the rate that reaches
    ``target_sparsity`` after ``rounds`` rounds, ``1 - (1 - sparsity)^(1/rounds)``, or the paper's 0.2.

    Example:
        >>> round(per_round_rate(3, None, 0.875), 6), per_round_rate(3, 0.3, None), per_round_rate(3, None, None)
        (0.5, 0.3, 0.2)
    """
    if target_sparsity is not None:
        return 1.0 - (1.0 - target_sparsity) ** (1.0 / rounds)
    return DEFAULT_PRUNE_RATE if prune_rate is None else prune_rate


def rewind_point(rewind: str, iteration: int, fraction: float, total_iterations: int | None) -> int | None:
    """The iteration k whose weights a run's survivors rewind to: 0 (``"init"``), ``iteration``, ``fraction`` of
    the budget, or ``None`` (``"none"``: no rewinding).

    Args:
        rewind: one of :data:`REWINDS`.
        iteration, fraction: k for ``"iteration"``, its fraction of the budget for ``"fraction"``.
        total_iterations: the budget T, or ``None`` where it is known only once a round has trained
            (a user's training function: ``"iteration"`` is then checked against the steps it takes).

    Raises:
        LthkitError: k is not inside the budget, or a fraction is asked of an unknown budget.

    Example:
        >>> rewind_point("fraction", 0, 0.1, 500), rewind_point("none", 0, 0.0, 500)
        (50, None)
    """
    if rewind == "none":
        return None
    if rewind == "init":
        return 0
    if rewind == "iteration":
        k = iteration
    elif total_iterations is None:
        raise LthkitError(f"rewinding to a fraction ({fraction:g}) of training needs the number of optimizer steps "
                          "one round takes: give steps=")
    else:
        k = round(fraction * total_iterations)
    if total_iterations is not None and k >= total_iterations:
        raise LthkitError(f"rewind iteration {k} is past the training budget of {total_iterations} iterations")
    return k


def layer_rate_pairs(layer_rates) -> tuple:
    """``layer_rates`` (a dict, or pairs as tuples or lists) as a tuple of ``(name, rate)`` pairs."""
    pairs = list(layer_rates.items()) if isinstance(layer_rates, dict) else layer_rates
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)) or \
            not all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in pairs):
        raise LthkitError("layer_rates must be a dict of layer name to rate or (name, rate) pairs, "
                          f"got {layer_rates!r}")
    checked: dict[str, float] = {}
    for name, rate in pairs:
        if not isinstance(name, str):
            raise LthkitError(f"layer_rates names must be strings, got {name!r}")
        rate = check_fraction(rate, f"layer rate of {name}")
        if name in checked and checked[name] != rate:
            raise LthkitError(f"layer rate of {name} given twice with different values ({checked[name]:g} and "
                              f"{rate:g})")
        checked[name] = rate
    return tuple(checked.items())


@lru_cache(maxsize=None)
def model_layout(model_name: str) -> tuple[dict, dict]:
    """The shapes of a model's prunable weights and of its whole ``state_dict``, by name.

    Built on the meta device, so it costs no memory and draws no random numbers.

    Returns:
        ``(weight_shapes, state_shapes)``, dicts from name to a tuple of ints, in layer order.
    """
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = MODELS[model_name]()
    return ({name: tuple(weight.shape) for name, weight in prunable_weights(model).items()},
            {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()})
