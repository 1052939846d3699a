"""Iterative magnitude pruning (IMP) with rewinding and the paper's controls.

One IMP run is a sequence of rounds. Round 0 trains the dense network from θ₀. Every later round

1. prunes a fraction of the weights that survived the previous round, ranked by the magnitude of
   that round's *trained* weights (never θ₀),
2. rewinds the survivors (to θ₀, to θ_k of the dense run, or not at all), and
3. trains the pruned network with its mask enforced.

Two controls make the result mean something (Frankle & Carbin, §2):

* ``reinit``: the ticket's mask of each round, with a fresh random initialization;
* ``random_prune``: a random mask with the ticket's per-layer counts, from the ticket's own
  starting weights (θ₀ or θ_k).

A control reuses the winning ticket's masks, so it needs the ticket run first
(:func:`run_lottery` runs it when none is given; :mod:`lthkit.experiments` caches both).

Example:
    >>> config = LotteryConfig(rounds=3, train=TrainConfig(iterations=300))
    >>> result = run_lottery(config, load_mnist(DataConfig(train_size=5000)))  # doctest: +SKIP
    >>> [round(d, 3) for d in result.densities]  # doctest: +SKIP
    [1.0, 0.8, 0.64, 0.512]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

import torch

from tqdm.auto import tqdm

from . import LthkitError, __version__, batched
from .branches import RoundInputs, derive_seed, get_branch
from .criteria import CRITERIA, DEFAULT_CRITERION  # noqa: F401 (derive_seed: lthkit.lottery's API)
from .data import DataConfig, MNISTData
from .files import atomic_save_tensors, atomic_write_json
from .fields import (SEED_LIMIT, check_bool, check_choice, check_fraction, check_int, check_number, config_dict,
                     document_fields, nested_config, parse_fraction, parse_layer_rate, parse_positive, set_fields)
from .masks import SCOPES, Masks, density, full_masks, layer_densities, layer_rate_overrides, prunable_weights
from .models import MODELS, build_model
from .train import TrainConfig, TrainResult, train

#: Where survivors go after pruning: θ₀, θ_k (an iteration), θ_k at a fraction of training, or
#: nowhere (keep the trained weights and train again: pruning + fine-tuning).
REWINDS = ("init", "iteration", "fraction", "none")
#: The paper's three kinds of run: the winning ticket and its two controls (every registered
#: branch, :data:`lthkit.branches.BRANCHES`, is a valid ``control``).
CONTROLS = ("ticket", "reinit", "random_prune")
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
        "doc": "See :mod:`lthkit.criteria`. The default is left out of :meth:`to_dict`, so configs that do not "
               "change it keep the cache keys they had before it existed.",
        "choices": tuple(CRITERIA)})
    train: TrainConfig = field(default=TrainConfig(), metadata={
        "help": "the training hyperparameters of every round", "cli": False})
    data: DataConfig = field(default=DataConfig(), metadata={"help": "the data split", "cli": False})
    seed: int = field(default=0, metadata={
        "help": "the trial: seeds θ₀, the batch order and the controls' random draws", "cli": False})

    def __post_init__(self):
        set_fields(self, train=nested_config(self.train, TrainConfig, "train"),
                   data=nested_config(self.data, DataConfig, "data"))
        check_choice(self.model, "model", sorted(MODELS), what="model")
        check_int(self.rounds, "rounds", minimum=1)
        if self.prune_rate is not None and self.target_sparsity is not None:
            raise LthkitError("give prune_rate or target_sparsity, not both")
        set_fields(self, prune_rate=None if self.prune_rate is None else check_fraction(self.prune_rate, "prune_rate"),
                   target_sparsity=None if self.target_sparsity is None
                   else check_fraction(self.target_sparsity, "target_sparsity"))
        # Accept a dict or lists (from JSON or a CLI) but store a hashable tuple of pairs.
        set_fields(self, layer_rates=_layer_rate_pairs(self.layer_rates))
        layer_rate_overrides(list(model_layout(self.model)[0]), dict(self.layer_rates))  # unknown layers fail here
        check_choice(self.scope, "scope", SCOPES, what="scope")
        check_choice(self.rewind, "rewind", REWINDS, what="rewind strategy")
        check_choice(self.criterion, "criterion", tuple(CRITERIA), what="mask criterion")
        branch = get_branch(self.control)  # the registered branches (lthkit.branches), not only the paper's three
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
        if self.target_sparsity is not None:
            return 1.0 - (1.0 - self.target_sparsity) ** (1.0 / self.rounds)
        return DEFAULT_PRUNE_RATE if self.prune_rate is None else self.prune_rate

    def rewind_point(self, total_iterations: int) -> int | None:
        """The iteration k whose weights survivors rewind to (``None`` for ``rewind="none"``).

        Raises:
            LthkitError: k is not inside the training budget.
        """
        if self.rewind == "none":
            return None
        if self.rewind == "init":
            return 0
        if self.rewind == "iteration":
            k = self.rewind_iteration
        else:
            k = round(self.rewind_fraction * total_iterations)
        if k >= total_iterations:
            raise LthkitError(f"rewind iteration {k} is past the training budget of {total_iterations} iterations")
        return k

    def replace(self, **changes) -> "LotteryConfig":
        """A copy with some fields changed (``train`` and ``data`` may be given as dicts of changes)."""
        for name, cls_value in (("train", self.train), ("data", self.data)):
            if isinstance(changes.get(name), dict):
                changes[name] = dataclasses.replace(cls_value, **changes[name])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["train"] = config_dict(self.train)  # schedule fields at their defaults stay out of the key
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


def _layer_rate_pairs(layer_rates) -> tuple:
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


@dataclass
class RoundResult:
    """One IMP round: the mask's densities and what training it measured."""

    round: int
    density: float
    layer_density: dict
    train: TrainResult
    #: where and with what the round was trained (see :func:`lthkit.experiments.provenance`); set by
    #: the disk cache, empty for rounds kept in memory. Not part of :meth:`to_dict` nor of equality.
    provenance: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def early_stop_iteration(self) -> int:
        return self.train.early_stop_iteration

    @property
    def test_acc_early_stop(self) -> float:
        return self.train.test_acc_early_stop

    @property
    def test_acc_final(self) -> float:
        return self.train.test_acc_final

    @property
    def val_acc_early_stop(self) -> float:
        return self.train.val_acc_early_stop

    def to_dict(self) -> dict:
        return {"round": self.round, "density": self.density, "layer_density": self.layer_density,
                "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "RoundResult":
        """Rebuild a round from :meth:`to_dict`'s output, checking every value's type and range.

        Raises:
            LthkitError: a key is missing or unknown, or a value is not what the round recorded
                (a density that is not a fraction, a null accuracy, a non-integer iteration ...),
                so that nothing downstream (summaries, plots, the next round) sees it.
        """
        _check_keys(data, [f.name for f in dataclasses.fields(cls) if f.name != "provenance"], "round result")
        train = data["train"]
        _check_keys(train, [f.name for f in dataclasses.fields(TrainResult) if f.name != "snapshots"], "train")
        check_int(data["round"], "round", minimum=0)
        _check_share(data["density"], "density")
        if not isinstance(data["layer_density"], dict) or not data["layer_density"]:
            raise LthkitError(f"layer_density must be a non-empty dict, got {data['layer_density']!r}"[:200])
        for name, value in data["layer_density"].items():
            _check_share(value, f"layer_density[{name!r}]")
        for name in ("start_iteration", "iterations", "early_stop_iteration"):
            check_int(train[name], f"train.{name}", minimum=0)
        for name in ("val_acc_early_stop", "test_acc_early_stop", "val_acc_final", "test_acc_final", "train_acc_final"):
            _check_share(train[name], f"train.{name}")
        for name in ("val_loss_early_stop", "val_loss_final"):  # NaN is a real outcome (a diverged run)
            if not isinstance(train[name], (int, float)) or isinstance(train[name], bool):
                raise LthkitError(f"train.{name} must be a number, got {train[name]!r}")
        check_bool(train["stopped_by_patience"], "train.stopped_by_patience")
        check_number(train["seconds"], "train.seconds")
        _check_curve(train["curve"])
        return cls(round=data["round"], density=data["density"], layer_density=dict(data["layer_density"]),
                   train=TrainResult.from_dict(train))


def _check_keys(data, expected, what: str) -> None:
    if not isinstance(data, dict):
        raise LthkitError(f"{what} must be a dict, got {type(data).__name__}")
    missing, unknown = [k for k in expected if k not in data], [k for k in data if k not in expected]
    if missing or unknown:
        raise LthkitError(f"{what} has " + "; ".join(
            part for part in (f"no {', '.join(missing)}" if missing else "",
                              f"unknown keys {', '.join(map(str, unknown))}" if unknown else "") if part))


def _check_share(value, name: str) -> float:
    """A number in [0, 1]: a density or an accuracy."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise LthkitError(f"{name} must be a number in [0, 1], got {value!r}"[:200])
    return value


#: The columns of a training curve and whether an entry may be None (no train loss before the first
#: step; the test set is evaluated only at some points).
_CURVE_COLUMNS = {"iteration": False, "train_loss": True, "val_loss": False, "val_acc": False, "test_acc": True}


def _check_curve(curve) -> None:
    _check_keys(curve, list(_CURVE_COLUMNS), "train.curve")
    lengths = {len(column) if isinstance(column, list) else -1 for column in curve.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise LthkitError("train.curve must hold lists of one length")
    for name, nullable in _CURVE_COLUMNS.items():
        for value in curve[name]:
            if not (value is None and nullable) and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise LthkitError(f"train.curve[{name!r}] holds {value!r}, not a number"[:200])


@dataclass
class RoundRecord:
    """What a store keeps per round: the metrics, the mask, and the tensors needed to go on.

    ``trained_state`` is the round's trained weights (the next ticket round ranks them);
    ``rewind_state`` is θ_k, captured in round 0 when rewinding to an iteration k > 0.
    """

    result: RoundResult
    mask: Masks
    trained_state: dict | None = None
    rewind_state: dict | None = None


class RoundStore(Protocol):
    """Where :func:`run_lottery` keeps finished rounds (so an interrupted run can resume)."""

    def load(self, round_index: int) -> RoundRecord | None: ...

    def save(self, round_index: int, record: RoundRecord) -> None: ...


class MemoryStore:
    """A :class:`RoundStore` in a dict: resumable within one Python session."""

    def __init__(self):
        self.records: dict[int, RoundRecord] = {}

    def load(self, round_index: int) -> RoundRecord | None:
        return self.records.get(round_index)

    def save(self, round_index: int, record: RoundRecord) -> None:
        self.records[round_index] = record


@dataclass
class LotteryResult:
    """A finished IMP run: per-round metrics and every round's mask."""

    config: LotteryConfig
    rounds: list[RoundResult]
    masks: list[Masks] = field(repr=False)
    version: str = __version__

    @property
    def densities(self) -> list[float]:
        return [r.density for r in self.rounds]

    @property
    def test_acc_early_stop(self) -> list[float]:
        return [r.test_acc_early_stop for r in self.rounds]

    @property
    def early_stop_iterations(self) -> list[int]:
        return [r.early_stop_iteration for r in self.rounds]

    @property
    def final_masks(self) -> Masks:
        return self.masks[-1]

    def to_dict(self) -> dict:
        return {"lthkit_version": self.version, "config": self.config.to_dict(),
                "rounds": [r.to_dict() for r in self.rounds], "provenance": [r.provenance for r in self.rounds]}

    def save(self, directory) -> Path:
        """Write ``result.json`` (metrics) and ``masks.pt`` (every round's masks) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "result.json", self.to_dict())
        atomic_save_tensors(directory / "masks.pt", [{k: v.cpu() for k, v in m.items()} for m in self.masks])
        return directory

    @classmethod
    def load(cls, directory) -> "LotteryResult":
        """Read a result written by :meth:`save` (tensors with ``weights_only=True``)."""
        directory = Path(directory)
        try:
            data = json.loads((directory / "result.json").read_text())
            masks = torch.load(directory / "masks.pt", weights_only=True)
            rounds = [RoundResult.from_dict(r) for r in data["rounds"]]
            for round_result, round_provenance in zip(rounds, data.get("provenance", [])):
                round_result.provenance = dict(round_provenance)
            return cls(config=LotteryConfig.from_dict(data["config"]), rounds=rounds, masks=masks,
                       version=data.get("lthkit_version", "unknown"))
        except FileNotFoundError as error:
            raise LthkitError(f"no saved result in {directory}: {Path(error.filename).name} is missing") from None
        except Exception as error:  # JSON, unpickling (weights_only refuses anything else), missing keys
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise LthkitError(f"broken result in {directory}: {type(error).__name__}: {reason}") from None


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _dependency_depth(control: str, visiting=()) -> int:
    """0 for a branch that needs nothing, else one more than the deepest branch it needs."""
    if control in visiting:
        raise LthkitError(f"branch {control!r} depends on itself (through {' -> '.join(visiting)})")
    needs = get_branch(control).needs
    return 1 + max(_dependency_depth(need, (*visiting, control)) for need in needs) if needs else 0


def with_dependencies(configs, have: Callable[[LotteryConfig], bool] = lambda config: False) -> list[LotteryConfig]:
    """``configs`` plus every run they need (:attr:`lthkit.branches.Branch.needs`) that ``have`` lacks.

    Needed runs are added after the configs that need them, then the list is ordered so that a
    run comes after every run it needs (stably: the paper's tickets first, then the controls).

    Args:
        configs: the requested runs.
        have: whether a needed run is available already (finished, or cached); it is then not added.

    Returns:
        The runs to train, in an order in which each round's masks are known before they are read.

    Example:
        >>> [c.control for c in with_dependencies([LotteryConfig(control="reinit")])]
        ['ticket', 'reinit']
    """
    order = list(configs)
    seen = set(order)
    for config in order:  # grows as needed runs are found, so their own needs are found too
        for need in get_branch(config.control).needs:
            needed = config.replace(control=need)
            if needed not in seen and not have(needed):
                seen.add(needed)
                order.append(needed)
    return sorted(order, key=lambda config: _dependency_depth(config.control))


def run_lottery(config: LotteryConfig, data: MNISTData, *, store: RoundStore | None = None,
                ticket: LotteryResult | None = None, progress: bool = True,
                on_round: Callable[[RoundResult], None] | None = None) -> LotteryResult:
    """Run IMP (or one of its controls) round by round: :func:`run_lotteries` of one config.

    Args:
        config: the run.
        data: MNIST in memory; training happens on its device.
        store: where finished rounds are kept; rounds already in it are not run again, so a run
            interrupted after round r resumes at round r + 1. Default: a fresh :class:`MemoryStore`.
        ticket: for a control, the winning-ticket run whose masks it reuses (same config with
            ``control="ticket"``); run alongside if not given.
        progress: show progress bars (rounds, and iterations within a round).
        on_round: called with each round's result as soon as it is available (cached or new).

    Returns:
        A :class:`LotteryResult` with ``config.rounds + 1`` rounds (round 0 is dense).

    Raises:
        LthkitError: the config does not fit the data (e.g. a rewind iteration past the budget),
            or ``ticket`` is not the ticket run of this config.
    """
    if ticket is not None and ticket.config != config.replace(control="ticket"):
        raise LthkitError("the ticket run given to a control must have the same config with control='ticket'")
    # One run at a time, never batched: exactly the numbers of train() alone.
    return run_lotteries([config], data, stores=[store], tickets=() if ticket is None else [ticket], batch=False,
                         progress=progress,
                         on_round=None if on_round is None else lambda _config, result: on_round(result))[0]


def run_lotteries(configs, data: MNISTData, *, stores=None, tickets=(), batch="auto", progress: bool = True,
                  on_round: Callable[[LotteryConfig, RoundResult], None] | None = None,
                  until_round: int | None = None) -> list[LotteryResult]:
    """Run several IMP runs (trials, controls) side by side, round by round, training each round's runs at once.

    The one driver of every run: round r of every run is trained before round r + 1 of any. The
    runs of one round are independent (a control's round r needs only its ticket's mask of round
    r, fixed before the ticket's round r trains), so those that share a model, training config and
    start iteration are trained together with :func:`lthkit.batched.train_batched` when ``batch``
    says so, else one after another. What each run trains is its branch's choice
    (:data:`lthkit.branches.BRANCHES`, by ``config.control``); a run a branch needs is run
    alongside unless it is finished already. Each run's result is what :func:`run_lottery` gives
    for it, up to float rounding where batched.

    Args:
        configs: the runs (each at most once).
        data: MNIST in memory; training happens on its device.
        stores: one :class:`RoundStore` per config (``None``: fresh memory stores); rounds already
            in a store are not run again, so an interrupted set of runs resumes where it stopped.
        tickets: finished runs that runs among ``configs`` need (the controls' tickets). A needed
            run that is neither here nor among ``configs`` is run alongside (in memory, not returned).
        batch: ``True`` (always batch), ``False`` (never), or ``"auto"``:
            :func:`lthkit.batched.use_batched` for the data's device and the group's size.
        progress: show progress bars.
        on_round: called with ``(config, round_result)`` as each run's round becomes available.
        until_round: stop after this round (``None``: after each run's last). With rounds
            ``0 .. r - 1`` in the stores, ``until_round=r`` trains round r alone: one task of a
            sweep (:mod:`lthkit.sweep`). A needed run given in ``tickets`` then needs only its
            masks of rounds ``0 .. r``.

    Returns:
        One :class:`LotteryResult` per config, in order (up to ``until_round`` when given).

    Example:
        >>> configs = [preset("fast", seed=s, control=c) for s in range(5) for c in CONTROLS]  # doctest: +SKIP
        >>> results = run_lotteries(configs, data)  # doctest: +SKIP
    """
    configs = list(configs)
    if len(set(configs)) != len(configs):
        raise LthkitError("run_lotteries got the same config twice")
    if batch not in (True, False, "auto"):
        raise LthkitError(f"batch must be True, False or 'auto', got {batch!r}")
    stores = [None] * len(configs) if stores is None else list(stores)
    if len(stores) != len(configs):
        raise LthkitError(f"run_lotteries got {len(stores)} stores for {len(configs)} configs")
    finished = {result.config: result for result in tickets}
    store_of = dict(zip(configs, stores))
    runs: dict[LotteryConfig, _Run] = {}  # in dependency order: a needed run's mask is planned first
    for config in with_dependencies(configs, have=finished.__contains__):
        needed_masks = {}
        for need in get_branch(config.control).needs:
            needed = config.replace(control=need)
            needed_masks[need] = finished[needed].masks.__getitem__ if needed in finished else \
                runs[needed].mask_of_round
        runs[config] = _Run(config, data, store_of.get(config), needed_masks=needed_masks)

    last_round = max(config.rounds for config in runs)
    if until_round is not None:
        check_int(until_round, "until_round", minimum=0)
        last_round = min(last_round, until_round)
    description = f"IMP {configs[0].control}" if len(runs) == 1 else f"IMP, {len(runs)} runs"
    bar = tqdm(total=sum(min(config.rounds, last_round) + 1 for config in runs), desc=description, disable=not progress,
               unit="round")
    try:
        for round_index in range(last_round + 1):
            _train_round(list(runs.values()), round_index, data, batch=batch, progress=progress)
            for config, run in runs.items():
                if round_index <= config.rounds:
                    result = run.results[round_index]
                    bar.update(1)
                    bar.set_postfix(density=f"{result.density:.3f}", test_acc=f"{result.test_acc_early_stop:.4f}",
                                    refresh=False)
                    if on_round is not None and config in store_of:
                        on_round(config, result)
    finally:
        bar.close()
    return [runs[config].result() for config in configs]


def _train_round(runs: list["_Run"], round_index: int, data: MNISTData, *, batch, progress: bool) -> None:
    """Plan and train round ``round_index`` of every run that has it and lacks it in its store.

    Runs sharing a model, training config and start iteration are trained batched where ``batch``
    says so. The round's networks are freed when this returns.
    """
    plans = []  # in the runs' (dependency) order, so a needed run's mask is planned first
    for run in runs:
        if round_index <= run.config.rounds and not run.load(round_index):
            plans.append((run, run.plan(round_index)))
    groups: dict[tuple, list] = {}
    for run, plan in plans:
        key = (run.config.model, plan.train, plan.start_iteration, tuple(sorted(plan.snapshot_at)), plan.reorder,
               plan.batchable or id(plan))  # a network of its own layers (frozen weights) trains alone
        groups.setdefault(key, []).append((run, plan))
    for (_, train_config, start_iteration, snapshot_at, reorder, batchable), members in groups.items():
        # A run whose batch order changes mid-way (reorder) trains alone: batches draw one order per run.
        if reorder is None and batchable is True and (
                batch is True or (batch == "auto" and batched.use_batched(data.device, len(members)))):
            outcomes = batched.train_batched([plan.model for _, plan in members], data, train_config,
                                             masks=[plan.mask for _, plan in members],
                                             seeds=[run.config.seed for run, _ in members],
                                             start_iteration=start_iteration, snapshot_at=snapshot_at,
                                             progress=progress, description=f"round {round_index}")
        else:
            outcomes = [train(plan.model, data, train_config, masks=plan.mask, seed=run.config.seed,
                              start_iteration=start_iteration, snapshot_at=snapshot_at, progress=progress,
                              description=plan.description, reorder=plan.reorder) for run, plan in members]
        for (run, plan), outcome in zip(members, outcomes):
            run.finish(plan, outcome)


@dataclass
class RoundPlan:
    """What one round trains: the network at its starting weights, its mask, where it starts."""

    round: int
    model: torch.nn.Module
    mask: Masks
    start_iteration: int
    snapshot_at: set
    description: str
    #: the round's training config (the run's, unless its branch chose another: fine-tuning's final rate)
    train: TrainConfig | None = None
    #: ``(iteration, seed)``: the batch order changes there (see :func:`lthkit.train.batch_order`)
    reorder: tuple | None = None
    batchable: bool = True


class _Run:
    """One IMP run as it advances: its branch, its store, θ₀, the rewind weights and the rounds so far.

    ``needed_masks[name](r)`` gives the mask of round r of the run its branch needs as ``name``.
    """

    def __init__(self, config: LotteryConfig, data: MNISTData, store: RoundStore | None, needed_masks=None):
        self.config = config
        self.data = data
        self.branch = get_branch(config.control)
        self.store = store if store is not None else MemoryStore()
        self.needed_masks = needed_masks or {}
        self.total_iterations = config.train.total_iterations(len(data.train_y))
        self.rewind_k = config.rewind_point(self.total_iterations)
        config.train.check_fits(self.total_iterations, len(data.train_y))  # against the data actually loaded
        # Round 0 captures θ_k for a branch that starts from it, when k > 0.
        self.captures_rewind_state = bool(self.rewind_k) and self.branch.uses_rewind_point
        model = build_model(config.model, seed=config.seed)
        self.theta0 = _cpu(model.state_dict())
        self.layer_rates = dict(config.layer_rates)
        layer_rate_overrides(list(full_masks(model)), self.layer_rates)  # unknown layer names fail before training
        self.rewind_state = self.theta0 if self.rewind_k == 0 else None
        self.results: list[RoundResult] = []
        self.masks: list[Masks] = []
        self.previous: RoundRecord | None = None
        self.planned: RoundPlan | None = None

    def load(self, round_index: int) -> bool:
        """Take round ``round_index`` from the store if it is there."""
        record = self.store.load(round_index)
        if record is not None:
            self._accept(round_index, record)
        return record is not None

    def mask_of_round(self, round_index: int) -> Masks:
        """This run's mask of a round that is finished or planned."""
        if round_index < len(self.masks):
            return self.masks[round_index]
        return self.planned.mask

    def plan(self, round_index: int) -> RoundPlan:
        """The next round's mask and starting weights, as the run's branch chooses them."""
        inputs = RoundInputs(config=self.config, round=round_index, theta0=self.theta0, rewind_k=self.rewind_k,
                             rewind_state=self.rewind_state, previous=self.previous,
                             needed_masks={name: masks_of(round_index) for name, masks_of in self.needed_masks.items()},
                             layer_rates=self.layer_rates, total_iterations=self.total_iterations, data=self.data)
        start = self.branch.start_round(inputs)
        snapshot_at = {self.rewind_k} if (round_index == 0 and self.captures_rewind_state) else set()
        self.planned = RoundPlan(round=round_index, model=start.model, mask=start.mask,
                                 start_iteration=start.start_iteration, snapshot_at=snapshot_at,
                                 description=f"round {round_index} ({density(start.mask):.1%} left)",
                                 train=start.train or self.config.train, reorder=start.reorder,
                                 batchable=start.batchable)
        return self.planned

    def finish(self, plan: RoundPlan, outcome: TrainResult) -> None:
        """Record a trained round: into the store first, then into this run."""
        result = RoundResult(round=plan.round, density=density(plan.mask), layer_density=layer_densities(plan.mask),
                             train=outcome)
        record = RoundRecord(result=result, mask={k: v.cpu() for k, v in plan.mask.items()},
                             trained_state=_cpu(plan.model.state_dict()),
                             rewind_state=_cpu(outcome.snapshots[self.rewind_k]) if plan.snapshot_at else None)
        self.store.save(plan.round, record)
        self.planned = None
        self._accept(plan.round, record)

    def _accept(self, round_index: int, record: RoundRecord) -> None:
        if round_index == 0 and self.captures_rewind_state:
            self.rewind_state = record.rewind_state
            if self.rewind_state is None:
                raise LthkitError("round 0 record lacks the rewind weights θ_k; clear the cache entry")
        self.results.append(record.result)
        self.masks.append(record.mask)
        self.previous = record

    def result(self) -> LotteryResult:
        return LotteryResult(config=self.config, rounds=self.results, masks=self.masks)
