"""IMP on your own network and your own training loop: :func:`find_ticket`.

The kit's experiments prune its three built-in networks with its own training loop
(:func:`lthkit.imp.driver.run_lotteries`). :func:`find_ticket` runs the same IMP engine
(:func:`lthkit.imp.driver.drive`: the same rounds, the same θ₀ and θ_k bookkeeping, the same
branches that prune and rewind, the same controls) on any ``nn.Module``, trained each round by a
function you write::

    def train(model):                      # trains the model it is given, in place
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(); loss.backward(); optimizer.step()

    ticket = find_ticket(model, train, evaluate=accuracy, target_sparsity=0.9, rounds=5,
                         controls=("reinit",))

What lthkit does around your function (:class:`FunctionTrainer`):

* **θ₀** is your model's state when you call :func:`find_ticket`; your model itself is never
  changed (each round trains a copy).
* **Masks are enforced through any optimizer** (:class:`lthkit.core.enforce.MaskEnforcer`): the
  gradients of pruned weights are zeroed as autograd produces them and the pruned weights are
  zeroed again after every ``optimizer.step()``, so SGD's momentum, Adam's moments or weight decay
  cannot revive them. Build the optimizer inside ``train``, over ``model.parameters()``.
* **An iteration is one optimizer step.** Rewinding to iteration k (``rewind=("iteration", k)``)
  captures the model's real parameters and buffers (its ``state_dict``) after the k-th
  ``optimizer.step()`` of the dense round: your loop hands over θ_k without doing anything. Every
  later round starts from θ_k ⊙ mask and runs your loop again. ``("fraction", f)`` needs
  ``steps``, the number of steps one call of ``train`` takes (checked).
* **What is prunable**: every ``nn.Linear`` and convolution weight by default (biases and
  normalization layers never), or the parameters you name (``parameters=``).
* **Controls**: ``controls=("reinit", "random_prune")`` trains Frankle & Carbin's controls beside
  the ticket with the same function: the ticket's masks with a fresh initialization (``init``,
  by default every submodule's ``reset_parameters()``, seeded), and random masks with the
  ticket's per-layer counts from the ticket's starting weights.

Anything wrong (a model with nothing prunable, a ``train`` that raises, returns something, or
changes pruned weights behind the optimizer's back, a rewind point past what the loop ran, an
argument out of range) is a one-line :class:`~lthkit.LthkitError`, raised before any training
where it can be known before.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..core.enforce import MaskEnforcer, state_on_cpu
from ..core.fields import SEED_LIMIT, check_bool, check_choice, check_fraction, check_int, set_fields
from ..core.masks import SCOPES, layer_rate_overrides
from ..core.train import TrainResult
from ..errors import LthkitError
from .branches import BRANCHES, get_branch
from .branches.base import Network
from .config import check_schedule, layer_rate_pairs, per_round_rate, rewind_point
from .driver import drive
from .records import MemoryStore, RoundResult
from .scorers import DEFAULT_CRITERION, SCORERS
from .ticket import TicketRound, WinningTicket, _qualname, _versions

#: Layers whose ``weight`` is prunable by default: every Linear and convolution (biases, norms never).
DEFAULT_PRUNABLE_TYPES = (nn.Linear, nn.modules.conv._ConvNd)
#: Where survivors go after pruning, as :func:`find_ticket` takes it.
REWIND_FORMS = "'init', 'none', ('iteration', k) or ('fraction', f)"


@dataclass(frozen=True)
class TicketConfig:
    """The settings of one :func:`find_ticket` run (of the ticket, or of one control), checked at construction.

    The IMP fields of :class:`~lthkit.imp.config.LotteryConfig` (what the engine reads), without
    the kit's model, data and training config: the network and the training are the user's.
    """

    rounds: int = 5
    prune_rate: float | None = None
    target_sparsity: float | None = None
    scope: str = "global"
    layer_rates: tuple = ()
    rewind: str = "init"
    rewind_iteration: int = 0
    rewind_fraction: float = 0.0
    criterion: str = DEFAULT_CRITERION
    control: str = "ticket"
    seed: int = 0
    #: optimizer steps one call of the training function takes (``None``: not stated; needed for a fraction)
    steps: int | None = None

    def __post_init__(self):
        check_schedule(self)
        check_choice(self.scope, "scope", SCOPES, what="scope")
        set_fields(self, layer_rates=layer_rate_pairs(self.layer_rates))
        check_choice(self.rewind, "rewind", ("init", "iteration", "fraction", "none"), what="rewind strategy")
        check_int(self.rewind_iteration, "rewind iteration", minimum=0)
        set_fields(self, rewind_fraction=check_fraction(self.rewind_fraction, "rewind fraction"))
        check_choice(self.criterion, "criterion", SCORERS.criteria(), what="mask criterion")
        branch = get_branch(self.control)
        check_int(self.seed, "seed", minimum=0, limit=SEED_LIMIT)
        check_int(self.steps, "steps", minimum=1, optional=True)
        if branch.requires_rewind_point and self.rewind == "none":
            raise LthkitError(f"the {self.control} control needs a rewind point (init, iteration or fraction), "
                              "not 'none'")
        self.rewind_point(self.steps)  # a fraction without steps, or a point past them, fails now

    @property
    def per_round_rate(self) -> float:
        """The fraction of surviving weights pruned each round."""
        return per_round_rate(self.rounds, self.prune_rate, self.target_sparsity)

    def rewind_point(self, total_iterations: int | None) -> int | None:
        """The optimizer step k whose weights survivors rewind to (``None`` for ``rewind="none"``)."""
        return rewind_point(self.rewind, self.rewind_iteration, self.rewind_fraction, total_iterations)

    def replace(self, **changes) -> "TicketConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["layer_rates"] = [list(pair) for pair in self.layer_rates]
        return data


@dataclass
class RoundTraining:
    """What one round of a user's training function measured (the ``train`` of its :class:`RoundResult`).

    Attributes:
        steps: optimizer steps the function took.
        metric: ``evaluate(model)`` after training, or ``None``.
        seconds: wall-clock seconds of training and evaluation.
        snapshots: ``{k: state dict}`` captured after step k (θ_k, in the dense round); never saved.
    """

    steps: int
    metric: float | None
    seconds: float
    snapshots: dict = field(default_factory=dict, repr=False)


def parse_rewind(rewind) -> dict:
    """:func:`find_ticket`'s ``rewind`` as :class:`TicketConfig` fields.

    Example:
        >>> parse_rewind(("iteration", 100))
        {'rewind': 'iteration', 'rewind_iteration': 100}
        >>> parse_rewind("init")
        {'rewind': 'init'}
    """
    if isinstance(rewind, str) and rewind in ("init", "none"):
        return {"rewind": rewind}
    if isinstance(rewind, (tuple, list)) and len(rewind) == 2 and rewind[0] == "iteration":
        return {"rewind": "iteration", "rewind_iteration": check_int(rewind[1], "rewind iteration", minimum=0)}
    if isinstance(rewind, (tuple, list)) and len(rewind) == 2 and rewind[0] == "fraction":
        return {"rewind": "fraction", "rewind_fraction": check_fraction(rewind[1], "rewind fraction")}
    raise LthkitError(f"rewind must be {REWIND_FORMS}, got {rewind!r}"[:300])


def prunable_parameters(model: nn.Module, parameters=None) -> list[str]:
    """The names of ``model``'s prunable parameters, in the model's order.

    Args:
        model: the network.
        parameters: ``None`` (every ``nn.Linear`` and convolution weight: :data:`DEFAULT_PRUNABLE_TYPES`),
            names of parameters (``["features.0.weight", "classifier.weight"]``), or a predicate
            ``(name, parameter) -> bool`` over ``model.named_parameters()``.

    Raises:
        LthkitError: nothing is prunable; a name is not a floating-point parameter of ``model``;
            a layer's weight is computed (``torch.nn.utils.prune`` or ``parametrize``), not a parameter.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
        >>> prunable_parameters(net)
        ['0.weight', '3.weight']
        >>> prunable_parameters(net, lambda name, parameter: name.startswith("3."))
        ['3.weight', '3.bias']
    """
    named = dict(model.named_parameters())
    for name, parameter in named.items():
        if isinstance(parameter, nn.parameter.UninitializedParameter):
            raise LthkitError(f"{name} is not initialized yet (a lazy module): run one forward pass first")
    if parameters is None:
        chosen = []
        for module_name, module in model.named_modules():
            if not isinstance(module, DEFAULT_PRUNABLE_TYPES):
                continue
            name = f"{module_name}.weight" if module_name else "weight"
            if name not in named:
                how = "torch.nn.utils.prune" if hasattr(module, "weight_orig") else "a parametrization"
                raise LthkitError(f"{name} is computed by {how}, not a parameter: give the network without it "
                                  "(prune.remove / parametrize.remove_parametrizations) or name the parameters to "
                                  "prune")
            chosen.append(name)
    elif callable(parameters):
        chosen = [name for name, parameter in named.items() if parameters(name, parameter)]
    else:
        if isinstance(parameters, (str, bytes)) or not isinstance(parameters, Iterable):
            raise LthkitError(f"parameters must be None, a list of parameter names or a predicate (name, parameter), "
                              f"got {parameters!r}"[:300])
        given = list(parameters)
        for name in given:
            if not isinstance(name, str):
                raise LthkitError(f"parameters must name parameters as strings, got {name!r}"[:300])
            if name not in named:
                close = [other for other in named if other.endswith(name) or name.endswith(other)]
                raise LthkitError(f"{name!r} is not a parameter of the model"
                                  + (f" (did you mean {close[0]!r}?)" if close else
                                     f"; its parameters are {', '.join(list(named)[:8])}"
                                     + (", ..." if len(named) > 8 else "")))
        if len(set(given)) != len(given):
            raise LthkitError(f"parameters names a parameter twice: {given}"[:300])
        chosen = [name for name in named if name in set(given)]
    if not chosen:
        raise LthkitError(f"{type(model).__name__} has nothing prunable: no nn.Linear or convolution weight"
                          + (" (name the parameters to prune with parameters=)" if parameters is None else
                             " is selected by parameters="))
    for name in chosen:
        if not named[name].is_floating_point():
            raise LthkitError(f"{name} is {named[name].dtype}, not a floating-point weight: it cannot be pruned")
    return chosen


def reset_parameters_init(model: nn.Module) -> None:
    """The default re-initialization of the ``reinit`` control: every submodule's ``reset_parameters()``.

    That is PyTorch's default initialization of each layer (what ``nn.Linear(...)`` draws when
    built). Give :func:`find_ticket` an ``init`` of your own if your network was initialized
    otherwise, so that the control draws from the same distribution as θ₀.
    """
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


class FunctionTrainer:
    """The :class:`~lthkit.imp.driver.RoundTrainer` of :func:`find_ticket`: a user's network and training function.

    Each round trains a copy of the network (at the weights the round's branch chose) by calling
    ``train(copy)`` inside a :class:`~lthkit.core.enforce.MaskEnforcer`, then ``evaluate(copy)``.

    Args:
        model: the network at θ₀ (copied; never changed).
        train: ``train(model)``, training ``model`` in place; returns ``None`` (or ``model``, or the
            :class:`~lthkit.core.train.TrainResult` of lthkit's own :func:`~lthkit.core.train.train`).
        evaluate: ``evaluate(model) -> float``, or ``None``.
        prunable: the names of the prunable parameters.
        init: ``init(model)``, re-initializing ``model`` in place from torch's random state (seeded here).
    """

    data = None  # a user's data is the training function's own

    def __init__(self, model: nn.Module, train: Callable, evaluate: Callable | None, prunable: list[str],
                 init: Callable[[nn.Module], Any]):
        self.theta0_model = copy.deepcopy(model)
        self.train_function, self.evaluate_function = train, evaluate
        self.prunable, self.init = list(prunable), init

    def build(self, seed: int | None) -> nn.Module:
        """A copy of the network at θ₀ (``seed=None``) or re-initialized by ``init`` under torch seed ``seed``."""
        model = copy.deepcopy(self.theta0_model)
        if seed is not None:
            devices = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                self.init(model)
        return model

    def network(self, config: TicketConfig) -> Network:
        return Network(self.build, prunable=lambda model: list(self.prunable))

    def budget(self, config: TicketConfig) -> int | None:
        return config.steps

    def postfix(self, result: RoundResult) -> dict:
        postfix = {"density": f"{result.density:.3f}"}
        if result.train.metric is not None:
            postfix["metric"] = f"{result.train.metric:.4f}"
        return postfix

    def check_reinit(self) -> None:
        """Raise unless ``init`` redraws every prunable parameter (else the re-init control would keep θ₀'s values)."""
        first, second = (dict(self.build(seed=seed).named_parameters()) for seed in (1, 2))
        for name in self.prunable:  # two seeds, one draw: init leaves it alone
            if torch.equal(first[name], second[name]):
                raise LthkitError(f"the reinit control's init does not re-initialize {name} (its module has no "
                                  "reset_parameters): give find_ticket an init(model) that re-initializes it")

    def train(self, members, round_index: int, progress: bool) -> list[RoundTraining]:
        return [self._train_one(run, plan) for run, plan in members]

    def _train_one(self, run, plan) -> RoundTraining:
        where = f"round {plan.round} of the {run.config.control}"
        model = plan.model
        began = time.perf_counter()
        with MaskEnforcer(model, plan.mask, snapshot_at=plan.snapshot_at) as enforcer:
            start = [parameter.detach().clone() for parameter in model.parameters()]  # masked: where training starts
            try:
                returned = self.train_function(model)
            except NotImplementedError:
                raise  # a placeholder not written yet (a learner notebook's exercise): nothing to diagnose
            except Exception as error:  # KeyboardInterrupt and SystemExit go through as they are
                raise LthkitError(f"train(model) raised {type(error).__name__} in {where}: {_first_line(error)}") \
                    from error
        if returned is not None and returned is not model and not isinstance(returned, TrainResult):
            raise LthkitError(f"train(model) must train the model in place and return None, but it returned a "
                              f"{type(returned).__name__} ({where})")
        revived = enforcer.revived()
        if revived is not None:
            raise LthkitError(f"train(model) changed pruned weights of {revived} outside optimizer steps ({where}): "
                              "update the weights only through torch.optim optimizers (or their gradients)")
        if all(torch.equal(before, after.detach()) for before, after in zip(start, model.parameters())):
            raise LthkitError(f"train(model) left every parameter as it was ({where}): it must train the model it "
                              "is given, with an optimizer built inside train over model.parameters()")
        for k in plan.snapshot_at:
            if enforcer.steps <= k:
                raise LthkitError(f"rewind iteration {k} is past what train ran: it took {enforcer.steps} optimizer "
                                  f"steps in {where} (rewind to an earlier step)")
        if run.config.steps is not None and enforcer.steps != run.config.steps:
            raise LthkitError(f"train(model) took {enforcer.steps} optimizer steps in {where}, but steps="
                              f"{run.config.steps} was given")
        metric = None
        if self.evaluate_function is not None:
            trained = [tensor.detach().clone() for tensor in model.state_dict().values()]
            try:
                value = self.evaluate_function(model)
            except Exception as error:
                raise LthkitError(f"evaluate(model) raised {type(error).__name__} in {where}: {_first_line(error)}") \
                    from error
            metric = _metric(value, where)
            # The ticket keeps the trained weights: an evaluation that moves them (a BatchNorm left in training
            # mode updates its running statistics) would keep something training did not produce.
            if not all(torch.equal(before, after) for before, after in zip(trained, model.state_dict().values())):
                raise LthkitError(f"evaluate(model) changed the model ({where}): evaluate in model.eval() mode under "
                                  "torch.no_grad(), without training")
        return RoundTraining(steps=enforcer.steps, metric=metric, seconds=time.perf_counter() - began,
                             snapshots=enforcer.snapshots)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[0] if lines else "(no message)")[:200]


def _metric(value, where: str) -> float:
    """``evaluate``'s result as a float: a Python number or a one-element tensor (NaN kept: a diverged run)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and math.isinf(value)):
        raise LthkitError(f"evaluate(model) must return a finite number, got {value!r} ({where})"[:300])
    return float(value)


def find_ticket(model: nn.Module, train: Callable[[nn.Module], None], *, evaluate: Callable[[nn.Module], float] | None
                = None, target_sparsity: float | None = None, prune_rate: float | None = None, rounds: int = 5,
                rewind="init", scope: str = "global", criterion: str = DEFAULT_CRITERION, parameters=None,
                layer_rates=None, controls=(), seed: int = 0, steps: int | None = None,
                init: Callable[[nn.Module], Any] | None = None, progress: bool = True) -> WinningTicket:
    """Find a winning ticket of ``model`` by iterative magnitude pruning, trained by your own ``train`` function.

    Round 0 trains the dense network from θ₀ (``model`` as it is now); each later round prunes
    ``prune_rate`` of the surviving weights, ranked by the magnitude of the weights the previous
    round trained to, rewinds the survivors (to θ₀, θ_k, or not at all) and trains again, with the
    masks enforced through your optimizer. See :mod:`lthkit.imp.find` for what happens around
    ``train``.

    Args:
        model: any ``nn.Module``, at its initial weights θ₀ (never changed: each round trains a copy).
        train: ``train(model)`` trains ``model`` in place with your loop, optimizer and data, and
            returns ``None`` (the model itself, or what lthkit's own :func:`~lthkit.core.train.train`
            returns, are accepted too). Build the optimizer inside it.
        evaluate: ``evaluate(model) -> float`` after each round's training (accuracy, loss...),
            recorded per round; optional.
        target_sparsity: the sparsity after all rounds, in [0, 1); the per-round rate becomes
            ``1 - (1 - target_sparsity) ** (1 / rounds)``.
        prune_rate: or the fraction of the surviving weights pruned each round, in [0, 1)
            (neither: 0.2, the paper's).
        rounds: pruning rounds after the dense round.
        rewind: where survivors go after pruning: ``"init"`` (θ₀, Frankle & Carbin), ``("iteration",
            k)`` (θ_k, after k optimizer steps of the dense round), ``("fraction", f)`` (θ_k with k
            = f × ``steps``), or ``"none"`` (keep the trained weights: pruning + fine-tuning).
        scope: ``"global"`` (one magnitude threshold across the prunable parameters) or ``"layer"``
            (each loses the same fraction of its own survivors).
        criterion: how survivors are ranked (:mod:`lthkit.imp.scorers`; default ``"large_final"``,
            the trained weights' magnitude).
        parameters: what is prunable: ``None`` (every Linear and convolution weight; biases and
            norms never), a list of parameter names, or a predicate ``(name, parameter) -> bool``.
        layer_rates: per-parameter rate overrides, ``{name: rate}`` (module or parameter names, or
            ``"output"`` for the last prunable one); an overridden parameter is pruned on its own.
        controls: controls trained beside the ticket with the same ``train``: ``"reinit"`` (the
            ticket's masks, a fresh initialization) and ``"random_prune"`` (random masks, the ticket's
            per-layer counts, its starting weights).
        seed: seeds the controls' draws (and a ``random`` criterion).
        steps: optimizer steps one call of ``train`` takes; needed for ``("fraction", f)``, and
            checked every round where given.
        init: ``init(model)`` re-initializes a network in place for the ``reinit`` control, from
            torch's global random state (seeded by lthkit); default: every submodule's
            ``reset_parameters()``.
        progress: show a progress bar over the rounds.

    Returns:
        A :class:`~lthkit.imp.ticket.WinningTicket` (the last round's masks, its rewind and trained
        weights, every round's density and metric, the controls' too).

    Raises:
        LthkitError: a bad argument or a model with nothing prunable (before any training); a
            ``train`` or ``evaluate`` that raises or returns something unexpected, a ``train`` that
            changes pruned weights behind the optimizer, or a rewind point past what ``train`` ran.
            A ``NotImplementedError`` from ``train`` (a placeholder not written yet) goes through as it is.

    Example:
        >>> ticket = find_ticket(net, train, evaluate=accuracy, target_sparsity=0.8, rounds=4,
        ...                      controls=("reinit",))  # doctest: +SKIP
        >>> ticket.density, ticket.metrics, ticket.controls["reinit"][-1].metric  # doctest: +SKIP
    """
    if not isinstance(model, nn.Module):
        raise LthkitError(f"model must be a torch.nn.Module, got a {type(model).__name__}")
    for name, function in (("train", train), ("evaluate", evaluate), ("init", init)):
        if function is not None and not callable(function):
            raise LthkitError(f"{name} must be a function, got a {type(function).__name__}")
    if train is None:
        raise LthkitError("train must be a function train(model) that trains the model in place")
    check_bool(progress, "progress")
    if isinstance(controls, str):
        controls = (controls,)
    if not isinstance(controls, Iterable):
        raise LthkitError(f"controls must be a list of control names, got {controls!r}"[:300])
    controls = tuple(controls)
    offered = tuple(name for name in BRANCHES.controls() if name != "ticket")
    for control in controls:
        check_choice(control, "controls", offered, what="control")
    if len(set(controls)) != len(controls):
        raise LthkitError(f"controls names a control twice: {list(controls)}")
    if layer_rates is None:
        layer_rates = ()
    config = TicketConfig(rounds=rounds, prune_rate=prune_rate, target_sparsity=target_sparsity, scope=scope,
                          layer_rates=layer_rates, criterion=criterion, seed=seed, steps=steps, **parse_rewind(rewind))
    prunable = prunable_parameters(model, parameters)
    layer_rate_overrides(prunable, dict(config.layer_rates))  # names that are not prunable fail now
    trainer = FunctionTrainer(model, train, evaluate, prunable, init or reset_parameters_init)
    if "reinit" in controls:
        trainer.check_reinit()
    configs = [config, *(config.replace(control=control) for control in controls)]
    stores = [MemoryStore() for _ in configs]
    theta0 = state_on_cpu(model)
    results = drive(configs, trainer, stores=stores, progress=progress)

    records = [stores[0].records[index] for index in range(config.rounds + 1)]
    k = config.rewind_point(config.steps)
    if k is None:  # the last round started from the round before's trained weights
        rewind_weights = records[-2].trained_state
    else:
        rewind_weights = theta0 if k == 0 else records[0].rewind_state
    settings = {name: value for name, value in config.to_dict().items() if name != "control"}
    settings.update(controls=list(controls), parameters=prunable, rewind_point=k)
    provenance = {**_versions(), "model_class": _qualname(type(model)), "train_function": _qualname(train),
                  "engine": "lthkit.imp.driver.drive"}
    return WinningTicket(masks=records[-1].mask, rewind_weights=rewind_weights,
                         trained_weights=records[-1].trained_state, rounds=_history(results[0].rounds),
                         controls={control: _history(result.rounds) for control, result in zip(controls, results[1:])},
                         settings=settings, provenance=provenance)


def _history(rounds: list[RoundResult]) -> list[TicketRound]:
    return [TicketRound(round=r.round, density=r.density, metric=r.train.metric, steps=r.train.steps,
                        seconds=r.train.seconds, layer_density=dict(r.layer_density)) for r in rounds]
