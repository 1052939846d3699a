"""Masked training with the paper's early-stopping records.

:func:`train` trains a network on in-memory :class:`~lthkit.core.data.MNISTData` with Adam or SGD,
keeping pruned weights at exactly zero, and records what Frankle & Carbin report: the
*early-stopping iteration* (the evaluation point of minimum validation loss) and the validation
and test accuracy there and at the end of training.

Pruned weights stay zero through every optimizer step because the mask is applied twice per
step: to the gradient before the step (so Adam's moments and SGD's momentum buffers of pruned
weights stay zero and never push them) and to the weights after it (so nothing, not weight decay
nor a stale optimizer state, can revive them). Masking only in ``forward`` is not enough: the
optimizer would keep moving the pruned weights, which then leak back when the mask changes.

Test accuracy at the early-stopping iteration is measured on a copy of the weights taken when
the validation loss reached its minimum, so the test set is evaluated only at the early-stop and
final points unless ``test_every_eval`` asks for a full test curve. The numbers are identical
either way; the test set never chooses anything.

Speed: one training step is the forward and backward pass, then :class:`MaskedStep` (gradient
mask, optimizer, weight mask, gradients released), all on the data's device; for LeNet-300-100
and the fused Adam, :mod:`lthkit.core.fastpath` makes both cheaper, bit-for-bit the same. Nothing in the loop
waits for the device: the only host synchronizations are at evaluation points (one per point),
so on a GPU the step kernels queue up back to back. ``benchmarks/train_throughput.py`` measures
the loop against a per-sample ``DataLoader`` pipeline and against the FLOP bound.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import LthkitError
from . import fastpath
from .data import MNISTData, batches
from .fields import check_bool, check_choice, check_int, check_number, document_fields, parse_positive, set_fields
from .masks import Masks, check_masks_fit

OPTIMIZERS = ("adam", "sgd")


@document_fields
@dataclass(frozen=True)
class TrainConfig:
    """How to train one network.

    Every field is checked at construction (a one-line :class:`~lthkit.LthkitError` names the
    field); whole numbers given for the float fields are stored as floats.
    """

    optimizer: str = field(default="adam", metadata={"help": '"adam" or "sgd"', "choices": OPTIMIZERS})
    lr: float = field(default=1.2e-3, metadata={"help": "learning rate (the paper's LeNet: Adam, 1.2e-3)"})
    momentum: float = field(default=0.0, metadata={"help": "SGD momentum (ignored by Adam)"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 penalty, applied by the optimizer"})
    batch_size: int = field(default=60, metadata={"help": "examples per iteration (the paper: 60)"})
    iterations: int | None = field(default=50_000, metadata={
        "help": "training budget in iterations (the paper: 50,000)", "doc": "Give this or ``epochs``.",
        "replaces": "epochs"})
    epochs: float | None = field(default=None, metadata={
        "help": "training budget in passes over the training set, as an alternative", "replaces": "iterations"})
    eval_every: int = field(default=100, metadata={
        "help": "evaluate on the validation set every this many iterations (the paper: 100)"})
    patience: int | None = field(default=None, metadata={
        "help": "stop once the validation loss has not improved for this many iterations "
                "(None: always train the whole budget)"})
    test_every_eval: bool = field(default=False, metadata={
        "help": "also evaluate the test set at every evaluation point (for a test curve)"})
    lr_milestones: tuple = field(default=(), metadata={
        "help": "iterations at which the learning rate is multiplied by lr_gamma (step decay; repeatable)",
        "doc": "Default: none, a constant learning rate. Left out of the config's dict (and so of its cache "
               "key) while at the default, like the other schedule fields.",
        "flag": "--lr-milestone", "parse": parse_positive(int), "repeat": True, "metavar": "ITERATION",
        "omit_default": True})
    lr_gamma: float = field(default=0.1, metadata={
        "help": "the factor of each step-decay milestone", "omit_default": True})
    warmup_iterations: int = field(default=0, metadata={
        "help": "linear learning-rate warm-up over this many iterations (0: none)", "omit_default": True})

    def __post_init__(self):
        check_choice(self.optimizer, "optimizer", OPTIMIZERS, what="optimizer")
        set_fields(self, lr=check_number(self.lr, "lr", positive=True),
                   momentum=check_number(self.momentum, "momentum"),
                   weight_decay=check_number(self.weight_decay, "weight_decay"),
                   batch_size=check_int(self.batch_size, "batch_size", minimum=1),
                   iterations=check_int(self.iterations, "iterations", minimum=1, optional=True),
                   epochs=check_number(self.epochs, "epochs", positive=True, optional=True),
                   eval_every=check_int(self.eval_every, "eval_every", minimum=1),
                   patience=check_int(self.patience, "patience", minimum=1, optional=True),
                   test_every_eval=check_bool(self.test_every_eval, "test_every_eval"),
                   lr_milestones=_milestones(self.lr_milestones),
                   lr_gamma=check_number(self.lr_gamma, "lr_gamma", positive=True),
                   warmup_iterations=check_int(self.warmup_iterations, "warmup_iterations", minimum=0))
        if (self.iterations is None) == (self.epochs is None):
            raise LthkitError("give exactly one training budget: iterations or epochs")

    @property
    def scheduled(self) -> bool:
        """Whether the learning rate changes during training (step decay or warm-up)."""
        return bool(self.lr_milestones) or self.warmup_iterations > 0

    def lr_at(self, iteration: int) -> float:
        """The learning rate of the step taken at ``iteration`` (the step from ``iteration`` to ``iteration + 1``).

        ``lr × min(1, (iteration + 1) / warmup_iterations) × lr_gamma ** (milestones ≤ iteration)``:
        what ``torch.optim.lr_scheduler.LinearLR`` (warm-up) chained with ``MultiStepLR`` give after
        ``iteration`` scheduler steps. A run rewound to θ_k starts at ``iteration = k``, so it replays
        the schedule from k.

        Example:
            >>> config = TrainConfig(lr=0.1, lr_milestones=(100,), warmup_iterations=10)
            >>> [round(config.lr_at(i), 6) for i in (0, 9, 99, 100)]
            [0.01, 0.1, 0.1, 0.01]
        """
        factor = min(1.0, (iteration + 1) / self.warmup_iterations) if self.warmup_iterations else 1.0
        passed = sum(1 for milestone in self.lr_milestones if milestone <= iteration)
        return self.lr * factor * self.lr_gamma ** passed

    def check_fits(self, total_iterations: int, num_train: int) -> None:
        """Raise a one-line :class:`~lthkit.LthkitError` when the schedule or the batch does not fit the run:
        a step-decay milestone or the warm-up at or past the budget of ``total_iterations`` (it would never take
        effect), or a batch larger than the ``num_train`` training images."""
        late = [milestone for milestone in self.lr_milestones if milestone >= total_iterations]
        if late:
            raise LthkitError(f"lr milestone {late[0]} is past the training budget of {total_iterations} iterations "
                              "(it would never take effect): give --lr-milestone values inside the budget, or a "
                              "longer one")
        if self.warmup_iterations > total_iterations:
            raise LthkitError(f"warmup_iterations {self.warmup_iterations} is longer than the training budget of "
                              f"{total_iterations} iterations")
        if self.batch_size > num_train:
            raise LthkitError(f"batch_size {self.batch_size} is larger than the {num_train:,} training images")

    def total_iterations(self, num_train: int) -> int:
        """The budget in iterations for a training set of ``num_train`` images."""
        if self.iterations is not None:
            return self.iterations
        return max(1, math.ceil(self.epochs * num_train / self.batch_size))


def _milestones(value) -> tuple:
    """Step-decay milestones as a sorted tuple of distinct positive ints (from a tuple, a list or one int)."""
    items = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, (tuple, list)):
        raise LthkitError(f"lr_milestones must be a list of positive iterations, got {value!r}")
    checked = [check_int(item, "each of lr_milestones", minimum=1) for item in items]
    if len(set(checked)) != len(checked):
        raise LthkitError(f"lr_milestones repeats an iteration: {sorted(checked)}")
    return tuple(sorted(checked))


@dataclass
class TrainResult:
    """What one training run measured. Accuracies are fractions in [0, 1].

    ``curve`` holds one entry per evaluation point: ``iteration``, ``train_loss`` (mean over the
    iterations since the previous point), ``val_loss``, ``val_acc`` and ``test_acc`` (``None``
    where the test set was not evaluated).
    """

    start_iteration: int
    iterations: int
    early_stop_iteration: int
    val_loss_early_stop: float
    val_acc_early_stop: float
    test_acc_early_stop: float
    val_loss_final: float
    val_acc_final: float
    test_acc_final: float
    train_acc_final: float
    stopped_by_patience: bool
    seconds: float
    curve: dict = field(default_factory=dict)
    #: weights captured at the requested iterations (``snapshot_at``); never serialized.
    snapshots: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        """A JSON-ready dict (snapshots left out)."""
        data = asdict(self)
        data.pop("snapshots")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainResult":
        return cls(**data)


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model.state_dict()`` (on the model's device)."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             state: dict[str, torch.Tensor] | None = None, chunk: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy loss and accuracy of ``model`` (or of ``state`` loaded into it) on a set.

    Every example counts (no dropped last batch). Returns 0-dim tensors, so that no host
    synchronization happens until the caller asks for the numbers.

    Args:
        model: the network.
        images, labels: the evaluation set.
        state: evaluate these weights instead of the model's own (the model is not modified).
        chunk: examples per forward pass.
    """
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start in range(0, len(labels), chunk):
        x, y = images[start:start + chunk], labels[start:start + chunk]
        logits = model(x) if state is None else torch.func.functional_call(model, state, (x,))
        total_loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return total_loss / len(labels), correct.double() / len(labels)


def _improves(val_loss: float, best_loss: float | None) -> bool:
    """Whether ``val_loss`` beats the best so far (the first point always counts; NaN never wins)."""
    if best_loss is None or math.isnan(best_loss):
        return best_loss is None or not math.isnan(val_loss)
    return val_loss < best_loss


def make_optimizer(model: nn.Module | list[torch.Tensor], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over all of ``model``'s parameters (or a list of tensors).

    The fused implementations are used where torch has them (CPU and CUDA): one kernel per step
    instead of a dozen elementwise passes, which is a quarter of an epoch's time on a CPU.
    """
    parameters = list(model.parameters()) if isinstance(model, nn.Module) else list(model)
    if config.optimizer == "adam":
        cls, options = torch.optim.Adam, {"lr": config.lr, "weight_decay": config.weight_decay}
    else:
        cls, options = torch.optim.SGD, {"lr": config.lr, "momentum": config.momentum,
                                         "weight_decay": config.weight_decay}
    with _dynamo_import_deferred():
        try:
            return cls(parameters, fused=True, **options)
        except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
            return cls(parameters, **options)


@contextmanager
def _dynamo_import_deferred():
    """Build an optimizer without importing ``torch._dynamo`` (about a second of every start-up).

    ``Optimizer.add_param_group`` is wrapped by ``torch._disable_dynamo``, whose first call imports
    ``torch._dynamo`` to build the disabled function, which it caches on the wrapped function as
    ``__dynamo_disable``. Outside ``torch.compile`` (where an optimizer is built) the disabled
    function behaves as the function itself, so for the construction the cache is given the function
    itself, and taken away again afterwards: later calls, compiled or not, behave as torch made them.
    Where torch's internals differ, this does nothing.
    """
    function = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", None)
    if function is None or "torch._dynamo" in sys.modules or hasattr(function, "__dynamo_disable"):
        yield
        return
    function.__dynamo_disable = function
    try:
        yield
    finally:
        del function.__dynamo_disable


def autograd_pass(model: nn.Module):
    """``pass(images, labels)``: cross-entropy of ``model`` on the batch, gradients by autograd; returns the loss."""
    def forward_backward(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        return loss.detach()
    return forward_backward


class MaskedStep:
    """One optimizer step with masks enforced.

    Calling it after ``loss.backward()``

    1. multiplies the gradients of the masked weights by their masks (so optimizer state of a
       pruned weight never moves),
    2. runs the optimizer,
    3. multiplies the masked weights by their masks (so nothing can revive a pruned weight),
    4. releases every gradient (``grad = None``), so that the next backward pass writes fresh
       gradients instead of adding into zeroed ones: no ``zero_grad`` pass, no accumulation pass.

    For the fused Adam of :func:`make_optimizer` (the paper's optimizer), steps after the first
    go through :class:`lthkit.core.fastpath.FusedAdamStep` where the fast path is on: the same kernel
    ``optimizer.step()`` calls, bit-for-bit the same result. Anything else always goes through
    ``optimizer.step()``.

    Args:
        optimizer: an optimizer over the parameters being trained.
        masked_params: the parameters that have a mask (each also in ``optimizer``).
        mask_values: their masks, as tensors of the parameters' dtype and device (1 keeps, 0 prunes).

    Example:
        >>> step = MaskedStep(optimizer, [model.fc1.weight], [mask.float()])  # doctest: +SKIP
        >>> loss.backward(); step()  # doctest: +SKIP
    """

    def __init__(self, optimizer: torch.optim.Optimizer, masked_params=(), mask_values=()):
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.masked_params, self.mask_values = list(masked_params), list(mask_values)
        if len(self.masked_params) != len(self.mask_values):
            raise LthkitError("MaskedStep needs one mask per masked parameter")
        self._direct = None  # the fast path's direct step once the optimizer state exists; False: none

    def set_lr(self, lr: float) -> None:
        """Use learning rate ``lr`` from the next step on (every parameter group, and the direct step)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self._direct:
            self._direct.options["lr"] = lr

    @torch.no_grad()
    def __call__(self) -> None:
        grads = [p.grad for p in self.params]
        if self.masked_params:
            torch._foreach_mul_([p.grad for p in self.masked_params], self.mask_values)
        if self._direct is None:  # the first step: through the kernel too where the fast path applies
            self._direct = fastpath.fused_adam_step(self.optimizer, create_state=True) or False
        if self._direct and all(g is not None for g in grads):
            self._direct(self.params, grads)
        else:
            self.optimizer.step()
        if self.masked_params:
            torch._foreach_mul_(self.masked_params, self.mask_values)
        for p in self.params:
            p.grad = None


def masked_step_for(parameters, masked_params, mask_values, config: TrainConfig) -> MaskedStep:
    """Zero the pruned weights, drop stale gradients, and build the optimizer's :class:`MaskedStep`.

    Args:
        parameters: every parameter trained (a list of tensors).
        masked_params: those with a mask.
        mask_values: their masks, in the parameters' dtype and device.
        config: the optimizer's settings.
    """
    with torch.no_grad():
        if masked_params:
            torch._foreach_mul_(list(masked_params), list(mask_values))
    for parameter in parameters:
        parameter.grad = None  # stale gradients from before training must not join the first step
    return MaskedStep(make_optimizer(list(parameters), config), masked_params, mask_values)


def check_schedule(config: TrainConfig, data: MNISTData, start_iteration: int, snapshot_at) -> tuple[int, set]:
    """The budget in iterations and the set of snapshot iterations, after checking both fit it.

    Raises:
        LthkitError: ``start_iteration`` or a snapshot iteration lies outside the budget.
    """
    total = config.total_iterations(len(data.train_y))
    if not 0 <= start_iteration < total:
        raise LthkitError(f"start iteration {start_iteration} is outside the training budget of {total} iterations")
    snapshot_at = set(snapshot_at)
    if any(k < start_iteration or k > total for k in snapshot_at):
        raise LthkitError(f"snapshot iterations {sorted(snapshot_at)} must lie in [{start_iteration}, {total}]")
    return total, snapshot_at


def train(model: nn.Module, data: MNISTData, config: TrainConfig, *, masks: Masks | None = None,
          seed: int = 0, start_iteration: int = 0, snapshot_at=(), progress: bool = True,
          description: str = "train", reorder: tuple[int, int] | None = None) -> TrainResult:
    """Train ``model`` in place with ``masks`` enforced, and record early-stopping metrics.

    Args:
        model: the network; moved to ``data``'s device. Pruned weights are zeroed first.
        data: in-memory MNIST (see :func:`lthkit.core.data.load_mnist`).
        config: optimizer, budget and evaluation schedule.
        masks: a mask set for ``model`` (``None``: dense).
        seed: seed of the order of training batches.
        start_iteration: the iteration the weights come from (after rewinding to θ_k, k); training
            runs from here to the end of the budget and iterations are reported on that scale.
        snapshot_at: iterations at which to capture the weights (``start_iteration`` included),
            returned in ``result.snapshots``; used to rewind to θ_k. Patience never stops the run
            before the last of them.
        progress: show a tqdm progress bar (a widget in notebooks, text in a terminal).
        description: the progress bar's label.
        reorder: ``(iteration, seed)``: from that iteration on, the batches come from a fresh order
            seeded by ``seed`` (see :func:`batch_order`): two runs that share everything up to
            the iteration and then differ only in the SGD noise (instability analysis).

    Returns:
        A :class:`TrainResult`.

    Example:
        >>> result = train(build_model("lenet300_100"), data, TrainConfig(iterations=500))  # doctest: +SKIP
        >>> result.early_stop_iteration, result.test_acc_early_stop  # doctest: +SKIP
        (500, 0.93...)
    """
    device = data.device
    model.to(device)
    total, snapshot_at = check_schedule(config, data, start_iteration, snapshot_at)
    parameters = dict(model.named_parameters())
    masked_params, mask_values = [], []
    if masks is not None:
        check_masks_fit(model, masks)
        for name, mask in masks.items():
            masked_params.append(parameters[name])
            mask_values.append(mask.to(device=device, dtype=parameters[name].dtype))
    masked_step = masked_step_for(list(parameters.values()), masked_params, mask_values, config)
    forward_backward = fastpath.lenet_pass(model) or autograd_pass(model)
    batch_indices = batch_order(len(data.train_y), config.batch_size, seed, device=device, reorder=reorder)
    (result,) = training_loop(_LoneRun(model, data, forward_backward, masked_step), data, config, batch_indices,
                              total=total, start_iteration=start_iteration, snapshot_at=snapshot_at,
                              progress=progress, description=description)
    return result


def batch_order(num_examples: int, batch_size: int, seed: int, *, device=None, reorder: tuple[int, int] | None = None):
    """The endless batch order of a run: :func:`lthkit.core.data.batches` seeded by ``seed``.

    With ``reorder = (k, seed2)``, the first ``k`` batches are those of ``seed`` and every later
    one comes from a fresh order seeded by ``seed2``.

    Example:
        >>> a = [b.tolist() for b in itertools.islice(batch_order(6, 2, 0), 4)]
        >>> b = [b.tolist() for b in itertools.islice(batch_order(6, 2, 0, reorder=(2, 1)), 4)]
        >>> a[:2] == b[:2], a[2:] == b[2:]
        (True, False)
    """
    stream = batches(num_examples, batch_size, torch.Generator().manual_seed(int(seed)), device=device)
    if reorder is None:
        return stream
    at, second_seed = reorder
    return itertools.chain(itertools.islice(stream, int(at)),
                           batches(num_examples, batch_size, torch.Generator().manual_seed(int(second_seed)),
                                   device=device))


class _LoneRun:
    """One network as :func:`training_loop` drives it (the batched counterpart: :mod:`lthkit.core.batched`)."""

    runs = 1

    def __init__(self, model: nn.Module, data: MNISTData, forward_backward, masked_step: MaskedStep):
        self.model, self.data, self.forward_backward, self.masked_step = model, data, forward_backward, masked_step

    def train_mode(self) -> None:
        self.model.train()

    def set_lr(self, lr: float) -> None:
        self.masked_step.set_lr(lr)

    def step(self, index: torch.Tensor) -> torch.Tensor:
        loss = self.forward_backward(self.data.train_x[index], self.data.train_y[index])
        self.masked_step()  # gradients masked, optimizer step, weights masked, gradients released
        return loss

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, accuracy = evaluate(self.model, images, labels)
        return loss.reshape(1), accuracy.reshape(1)

    def state(self, run: int) -> dict[str, torch.Tensor]:
        return state_copy(self.model)

    def stop(self, run: int) -> None:
        pass  # the loop ends with the only run: its weights are the final ones

    def finish(self) -> None:
        pass

    def accuracies(self, images: torch.Tensor, labels: torch.Tensor, states) -> list[float]:
        return [evaluate(self.model, images, labels, state=states[0])[1].item()]


def training_loop(trainee, data: MNISTData, config: TrainConfig, batch_indices, *, total: int, start_iteration: int,
                  snapshot_at: set, progress: bool, description: str) -> list[TrainResult]:
    """The training loop of :func:`train` and :func:`lthkit.core.batched.train_batched`: one skeleton for both.

    It skips the batches before ``start_iteration``, evaluates at the schedule's points into one
    :class:`RunLog` per run, captures snapshots, stops each run by its patience (never before the
    last snapshot iteration, so θ_k is always captured), shows one progress bar, and measures the
    final and early-stopping test accuracy by one rule. What a step and an evaluation are is the
    trainee's: one network, or K runs as one batched model.

    Args:
        trainee: ``runs`` (K), ``train_mode()``, ``step(index) -> losses`` (K or scalar, no host
            sync), ``evaluate(images, labels) -> (losses, accuracies)`` as ``(K,)`` tensors,
            ``set_lr(lr)`` (the learning rate of the next steps; called only for a scheduled config),
            ``state(run)`` (a copy of a run's weights), ``stop(run)`` (a run stops before the end:
            keep its weights), ``finish()`` (training is over: final weights in place) and
            ``accuracies(images, labels, states) -> list`` (``None`` in ``states``: the final weights).
        data: the data (``batch_indices`` index its training set).
        config: the shared training config.
        batch_indices: an iterator of training batch indices from iteration 0.
        total, start_iteration, snapshot_at: the schedule (see :func:`check_schedule`).
        progress, description: the progress bar.

    Returns:
        One :class:`TrainResult` per run.
    """
    runs = trainee.runs
    for _ in range(start_iteration):
        # Resume the batch order where iteration start_iteration left it, so that training
        # rewound to θ_k sees the same data as the run θ_k came from.
        next(batch_indices)
    logs = [RunLog(config, start_iteration) for _ in range(runs)]
    active = list(range(runs))  # runs not yet stopped by patience
    stoppable_from = max(snapshot_at, default=start_iteration)  # patience must not lose a snapshot
    loss_sums = torch.zeros(runs, device=data.device)
    steps_since_eval = 0
    began = time.perf_counter()

    def record(iteration: int) -> None:
        nonlocal loss_sums, steps_since_eval
        val_loss, val_acc = trainee.evaluate(data.val_x, data.val_y)
        rows = [val_loss.double(), val_acc, loss_sums.double()]
        if config.test_every_eval:
            rows.append(trainee.evaluate(data.test_x, data.test_y)[1])
        numbers = torch.stack(rows).tolist()  # the one host synchronization of this point
        for run in active:
            logs[run].add_point(
                iteration, val_loss=numbers[0][run], val_acc=numbers[1][run],
                train_loss=numbers[2][run] / steps_since_eval if steps_since_eval else None,
                test_acc=numbers[3][run] if config.test_every_eval else None, state=partial(trainee.state, run))
        loss_sums = torch.zeros(runs, device=data.device)
        steps_since_eval = 0

    def snapshot(iteration: int) -> None:
        for run in active:
            logs[run].snapshots[iteration] = trainee.state(run)

    if start_iteration in snapshot_at:
        snapshot(start_iteration)
    record(start_iteration)
    bar = tqdm(total=total - start_iteration, desc=description, disable=not progress, leave=False,
               unit="it", dynamic_ncols=True)
    iteration = start_iteration
    trainee.train_mode()
    try:
        lr_now = None
        while iteration < total and active:
            if config.scheduled and config.lr_at(iteration) != lr_now:
                lr_now = config.lr_at(iteration)  # the schedule from start_iteration on: replayed from k
                trainee.set_lr(lr_now)
            iteration += 1
            loss_sums += trainee.step(next(batch_indices))
            steps_since_eval += 1
            if iteration in snapshot_at:
                snapshot(iteration)
            if iteration % config.eval_every == 0 or iteration == total:
                record(iteration)
                bar.update(iteration - start_iteration - bar.n)
                if runs == 1:
                    bar.set_postfix(val_acc=f"{logs[0].curve['val_acc'][-1]:.4f}", refresh=False)
                for run in list(active):
                    logs[run].iterations = iteration
                    if iteration >= stoppable_from and logs[run].patience_exhausted(iteration, total):
                        active.remove(run)
                        if iteration < total:
                            trainee.stop(run)
    finally:
        bar.close()
    trainee.finish()

    # Test accuracy at the end and at the early-stopping point: from the test curve where there is
    # one, else measured now (the best point's weights were kept unless it is the last point).
    test_final = [log.curve["test_acc"][-1] for log in logs]
    if any(accuracy is None for accuracy in test_final):
        measured = trainee.accuracies(data.test_x, data.test_y, [None] * runs)
        test_final = [measured[run] if accuracy is None else accuracy for run, accuracy in enumerate(test_final)]
    test_best = [log.best["test_acc"] for log in logs]
    needs_best = [run for run, log in enumerate(logs) if test_best[run] is None and not log.best_is_last]
    if needs_best:
        measured = trainee.accuracies(data.test_x, data.test_y,
                                      [logs[run].best["state"] if run in needs_best else None for run in range(runs)])
        for run in needs_best:
            test_best[run] = measured[run]
    test_best = [test_final[run] if accuracy is None else accuracy for run, accuracy in enumerate(test_best)]
    train_final = trainee.accuracies(data.train_x, data.train_y, [None] * runs)
    seconds = (time.perf_counter() - began) / runs
    return [log.result(test_acc_final=test_final[run], test_acc_best=test_best[run], train_acc_final=train_final[run],
                       seconds=seconds) for run, log in enumerate(logs)]


class RunLog:
    """What one training run records as it goes: the curve, the best point, snapshots, the stop.

    :func:`train` and :func:`lthkit.core.batched.train_batched` share it, so a run trained alone and
    the same run trained in a batch keep their records by the same rules.

    Args:
        config: the run's training config (patience, ``test_every_eval``).
        start_iteration: the iteration training starts from.
    """

    def __init__(self, config: TrainConfig, start_iteration: int):
        self.config = config
        self.start_iteration = start_iteration
        self.curve = {"iteration": [], "train_loss": [], "val_loss": [], "val_acc": [], "test_acc": []}
        self.best = {"iteration": start_iteration, "val_loss": None, "val_acc": None, "state": None, "test_acc": None}
        self.snapshots: dict[int, dict] = {}
        self.iterations = start_iteration  # the last iteration trained
        self.stopped_by_patience = False

    def add_point(self, iteration: int, *, val_loss: float, val_acc: float, train_loss: float | None,
                  test_acc: float | None, state) -> None:
        """Append an evaluation point; ``state()`` gives a copy of the weights (taken if this is the best point)."""
        for key, value in (("iteration", iteration), ("train_loss", train_loss), ("val_loss", val_loss),
                           ("val_acc", val_acc), ("test_acc", test_acc)):
            self.curve[key].append(value)
        if _improves(val_loss, self.best["val_loss"]):
            # With a test curve the test accuracy of the best point is known; else keep its weights.
            self.best.update(iteration=iteration, val_loss=val_loss, val_acc=val_acc, test_acc=test_acc,
                             state=None if self.config.test_every_eval else state())

    def patience_exhausted(self, iteration: int, total: int) -> bool:
        """Whether the run stops at this evaluation point (validation loss flat for ``patience`` iterations)."""
        patience = self.config.patience
        if patience is not None and iteration - self.best["iteration"] >= patience:
            self.stopped_by_patience = iteration < total
            return True
        return False

    @property
    def best_is_last(self) -> bool:
        """Whether the best point is the last one (its weights are then the final weights)."""
        return self.best["iteration"] == self.curve["iteration"][-1]

    def result(self, *, test_acc_final: float, test_acc_best: float, train_acc_final: float,
               seconds: float) -> TrainResult:
        """The :class:`TrainResult` of the finished run."""
        return TrainResult(
            start_iteration=self.start_iteration, iterations=self.iterations,
            early_stop_iteration=self.best["iteration"], val_loss_early_stop=self.best["val_loss"],
            val_acc_early_stop=self.best["val_acc"], test_acc_early_stop=test_acc_best,
            val_loss_final=self.curve["val_loss"][-1], val_acc_final=self.curve["val_acc"][-1],
            test_acc_final=test_acc_final, train_acc_final=train_acc_final,
            stopped_by_patience=self.stopped_by_patience, seconds=seconds, curve=self.curve,
            snapshots=self.snapshots)
