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
(:func:`run_lottery` runs it when none is given; :mod:`lthkit.runs.experiments` caches both).

Example:
    >>> config = LotteryConfig(rounds=3, train=TrainConfig(iterations=300))
    >>> result = run_lottery(config, load_mnist(DataConfig(train_size=5000)))  # doctest: +SKIP
    >>> [round(d, 3) for d in result.densities]  # doctest: +SKIP
    [1.0, 0.8, 0.64, 0.512]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from tqdm.auto import tqdm

from ..core import batched
from ..core.data import MNISTData
from ..core.fields import check_int
from ..core.masks import Masks, density, layer_densities, layer_rate_overrides
from ..core.train import TrainConfig, TrainResult, train
from ..errors import LthkitError
from .branches import RoundInputs, get_branch
from .branches.base import Network, kit_network
from .config import LotteryConfig
from .records import LotteryResult, MemoryStore, RoundRecord, RoundResult, RoundStore


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _dependency_depth(control: str, visiting=()) -> int:
    """0 for a branch that needs nothing, else one more than the deepest branch it needs."""
    if control in visiting:
        raise LthkitError(f"branch {control!r} depends on itself (through {' -> '.join(visiting)})")
    needs = get_branch(control).needs
    return 1 + max(_dependency_depth(need, (*visiting, control)) for need in needs) if needs else 0


def with_dependencies(configs, have: Callable[[LotteryConfig], bool] = lambda config: False) -> list[LotteryConfig]:
    """``configs`` plus every run they need (:attr:`lthkit.imp.branches.base.Branch.needs`) that ``have`` lacks.

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

    The driver of every run of the kit's own models: :func:`drive` with :class:`KitTrainer`, lthkit's
    training loop on ``data``. Round r of every run is trained before round r + 1 of any. The
    runs of one round are independent (a control's round r needs only its ticket's mask of round
    r, fixed before the ticket's round r trains), so those that share a model, training config and
    start iteration are trained together with :func:`lthkit.core.batched.train_batched` when ``batch``
    says so, else one after another. What each run trains is its branch's choice
    (:data:`lthkit.imp.branches.base.BRANCHES`, by ``config.control``); a run a branch needs is run
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
            :func:`lthkit.core.batched.use_batched` for the data's device and the group's size.
        progress: show progress bars.
        on_round: called with ``(config, round_result)`` as each run's round becomes available.
        until_round: stop after this round (``None``: after each run's last). With rounds
            ``0 .. r - 1`` in the stores, ``until_round=r`` trains round r alone: one task of a
            sweep (:mod:`lthkit.runs.sweep`). A needed run given in ``tickets`` then needs only its
            masks of rounds ``0 .. r``.

    Returns:
        One :class:`LotteryResult` per config, in order (up to ``until_round`` when given).

    Example:
        >>> configs = [preset("fast", seed=s, control=c) for s in range(5) for c in CONTROLS]  # doctest: +SKIP
        >>> results = run_lotteries(configs, data)  # doctest: +SKIP
    """
    if batch not in (True, False, "auto"):
        raise LthkitError(f"batch must be True, False or 'auto', got {batch!r}")
    return drive(configs, KitTrainer(data, batch=batch), stores=stores, tickets=tickets, progress=progress,
                 on_round=on_round, until_round=until_round)


class RoundTrainer(Protocol):
    """How the rounds of :func:`drive` are trained, and where their networks come from.

    Two implement it: :class:`KitTrainer` (the kit's models, lthkit's own training loop on
    in-memory data) and :class:`lthkit.imp.find.FunctionTrainer` (any ``nn.Module``, a user's own
    training function). Everything else of IMP (rounds, θ₀, θ_k, masks, pruning, rewinding, the
    controls) is the driver's and the branches', the same for both.
    """

    #: the data a branch may read (SNIP's batch), or ``None``
    data: Any

    def network(self, config) -> Network:
        """Where the networks of run ``config`` come from (θ₀, fresh initializations, what is prunable)."""

    def budget(self, config) -> int | None:
        """The iterations one round trains, checked against ``config``; ``None``: known only once trained."""

    def train(self, members: list[tuple["_Run", "RoundPlan"]], round_index: int, progress: bool) -> list:
        """Train the planned round of each run; one outcome per member, each with ``snapshots`` (θ_k where asked)."""

    def postfix(self, result: RoundResult) -> dict:
        """What the rounds' progress bar shows of a finished round."""


def drive(configs, trainer: RoundTrainer, *, stores=None, tickets=(), progress: bool = True,
          on_round: Callable[[Any, RoundResult], None] | None = None,
          until_round: int | None = None) -> list[LotteryResult]:
    """The one IMP engine: run several IMP runs side by side, round by round, with ``trainer``.

    :func:`run_lotteries` (the kit's models and training loop) and :func:`lthkit.imp.find.find_ticket`
    (any model and training function) both go through it: each run's θ₀ and rewind weights θ_k, the
    rounds, the mask of each round and the weights it starts from (its branch's choice), the runs a
    branch needs, and the records in the stores are all kept here, whatever trains the rounds.

    Args:
        configs: the runs (each at most once): :class:`~lthkit.imp.config.LotteryConfig`, or any config with
            its IMP fields (``control``, ``seed``, ``rounds``, ``per_round_rate``, ``scope``, ``criterion``,
            ``layer_rates``, ``rewind_point``, ``replace``).
        trainer: how the rounds are trained (a :class:`RoundTrainer`).
        stores, tickets, progress, on_round, until_round: as for :func:`run_lotteries`.

    Returns:
        One :class:`LotteryResult` per config, in order.
    """
    configs = list(configs)
    if len(set(configs)) != len(configs):
        raise LthkitError("run_lotteries got the same config twice")
    stores = [None] * len(configs) if stores is None else list(stores)
    if len(stores) != len(configs):
        raise LthkitError(f"run_lotteries got {len(stores)} stores for {len(configs)} configs")
    finished = {result.config: result for result in tickets}
    store_of = dict(zip(configs, stores))
    runs: dict[Any, _Run] = {}  # in dependency order: a needed run's mask is planned first
    for config in with_dependencies(configs, have=finished.__contains__):
        needed_masks = {}
        for need in get_branch(config.control).needs:
            needed = config.replace(control=need)
            needed_masks[need] = finished[needed].masks.__getitem__ if needed in finished else \
                runs[needed].mask_of_round
        runs[config] = _Run(config, trainer, store_of.get(config), needed_masks=needed_masks)

    last_round = max(config.rounds for config in runs)
    if until_round is not None:
        check_int(until_round, "until_round", minimum=0)
        last_round = min(last_round, until_round)
    description = f"IMP {configs[0].control}" if len(runs) == 1 else f"IMP, {len(runs)} runs"
    bar = tqdm(total=sum(min(config.rounds, last_round) + 1 for config in runs), desc=description, disable=not progress,
               unit="round")
    try:
        for round_index in range(last_round + 1):
            _train_round(list(runs.values()), round_index, trainer, progress=progress)
            for config, run in runs.items():
                if round_index <= config.rounds:
                    result = run.results[round_index]
                    bar.update(1)
                    bar.set_postfix(**trainer.postfix(result), refresh=False)
                    if on_round is not None and config in store_of:
                        on_round(config, result)
    finally:
        bar.close()
    return [runs[config].result() for config in configs]


def _train_round(runs: list["_Run"], round_index: int, trainer: RoundTrainer, *, progress: bool) -> None:
    """Plan and train round ``round_index`` of every run that has it and lacks it in its store.

    The round's networks are freed when this returns.
    """
    members = []  # in the runs' (dependency) order, so a needed run's mask is planned first
    for run in runs:
        if round_index <= run.config.rounds and not run.load(round_index):
            members.append((run, run.plan(round_index)))
    if members:
        for (run, plan), outcome in zip(members, trainer.train(members, round_index, progress)):
            run.finish(plan, outcome)


class KitTrainer:
    """The kit's models (:data:`lthkit.core.models.MODELS`), trained by lthkit's loop on in-memory data.

    The runs of a round that share a model, training config and start iteration are trained
    batched where ``batch`` says so (:func:`lthkit.core.batched.train_batched`), else one after
    another with :func:`lthkit.core.train.train`.

    Args:
        data: MNIST in memory; training happens on its device.
        batch: ``True``, ``False`` or ``"auto"`` (see :func:`run_lotteries`).
    """

    def __init__(self, data: MNISTData, batch="auto"):
        self.data, self.batch = data, batch

    def network(self, config: LotteryConfig) -> Network:
        return kit_network(config.model, config.seed)

    def budget(self, config: LotteryConfig) -> int:
        total = config.train.total_iterations(len(self.data.train_y))
        config.train.check_fits(total, len(self.data.train_y))  # against the data actually loaded
        return total

    def postfix(self, result: RoundResult) -> dict:
        return {"density": f"{result.density:.3f}", "test_acc": f"{result.test_acc_early_stop:.4f}"}

    def train(self, members, round_index: int, progress: bool) -> list[TrainResult]:
        groups: dict[tuple, list] = {}
        for index, (run, plan) in enumerate(members):
            train_config = plan.train or run.config.train  # the run's own, unless its branch chose another
            key = (run.config.model, train_config, plan.start_iteration, tuple(sorted(plan.snapshot_at)), plan.reorder,
                   plan.batchable or id(plan))  # a network of its own layers (frozen weights) trains alone
            groups.setdefault(key, []).append((index, run, plan))
        outcomes: list = [None] * len(members)
        for (_, train_config, start_iteration, snapshot_at, reorder, batchable), group in groups.items():
            # A run whose batch order changes mid-way (reorder) trains alone: batches draw one order per run.
            if reorder is None and batchable is True and (
                    self.batch is True or (self.batch == "auto" and batched.use_batched(self.data.device, len(group)))):
                trained = batched.train_batched([plan.model for _, _, plan in group], self.data, train_config,
                                                masks=[plan.mask for _, _, plan in group],
                                                seeds=[run.config.seed for _, run, _ in group],
                                                start_iteration=start_iteration, snapshot_at=snapshot_at,
                                                progress=progress, description=f"round {round_index}")
            else:
                trained = [train(plan.model, self.data, train_config, masks=plan.mask, seed=run.config.seed,
                                 start_iteration=start_iteration, snapshot_at=snapshot_at, progress=progress,
                                 description=plan.description, reorder=plan.reorder) for _, run, plan in group]
            for (index, _, _), outcome in zip(group, trained):
                outcomes[index] = outcome
        return outcomes


@dataclass
class RoundPlan:
    """What one round trains: the network at its starting weights, its mask, where it starts."""

    round: int
    model: torch.nn.Module
    mask: Masks
    start_iteration: int
    snapshot_at: set
    description: str
    #: the round's training config, where its branch chose one (fine-tuning's final rate); ``None``: the run's own
    train: TrainConfig | None = None
    #: ``(iteration, seed)``: the batch order changes there (see :func:`lthkit.core.train.batch_order`)
    reorder: tuple | None = None
    batchable: bool = True


class _Run:
    """One IMP run as it advances: its branch, its store, θ₀, the rewind weights and the rounds so far.

    ``needed_masks[name](r)`` gives the mask of round r of the run its branch needs as ``name``.
    """

    def __init__(self, config, trainer: RoundTrainer, store: RoundStore | None, needed_masks=None):
        self.config = config
        self.trainer = trainer
        self.branch = get_branch(config.control)
        self.store = store if store is not None else MemoryStore()
        self.needed_masks = needed_masks or {}
        self.network = trainer.network(config)
        self.total_iterations = trainer.budget(config)
        self.rewind_k = config.rewind_point(self.total_iterations)
        # Round 0 captures θ_k for a branch that starts from it, when k > 0.
        self.captures_rewind_state = bool(self.rewind_k) and self.branch.uses_rewind_point
        model = self.network.build(None)
        self.theta0 = _cpu(model.state_dict())
        self.layer_rates = dict(config.layer_rates)
        # unknown layer names fail before training
        layer_rate_overrides(list(self.network.full_masks(model)), self.layer_rates)
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
                             layer_rates=self.layer_rates, total_iterations=self.total_iterations,
                             data=self.trainer.data, network=self.network)
        start = self.branch.start_round(inputs)
        snapshot_at = {self.rewind_k} if (round_index == 0 and self.captures_rewind_state) else set()
        self.planned = RoundPlan(round=round_index, model=start.model, mask=start.mask,
                                 start_iteration=start.start_iteration, snapshot_at=snapshot_at,
                                 description=f"round {round_index} ({density(start.mask):.1%} left)",
                                 train=start.train, reorder=start.reorder, batchable=start.batchable)
        return self.planned

    def finish(self, plan: RoundPlan, outcome) -> None:
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
