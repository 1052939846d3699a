"""Masked training with the paper's early-stopping records.

:func:`train` trains a network on in-memory :class:`~lthkit.data.MNISTData` with Adam or SGD,
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
mask, optimizer, weight mask, gradients released), all on the data's device. Nothing in the loop
waits for the device: the only host synchronizations are at evaluation points (one per point),
so on a GPU the step kernels queue up back to back. ``benchmarks/train_throughput.py`` measures
the loop against a per-sample ``DataLoader`` pipeline and against the FLOP bound.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import LthkitError
from .data import MNISTData, batches
from .fields import check_bool, check_choice, check_int, check_number, document_fields, set_fields
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
                   test_every_eval=check_bool(self.test_every_eval, "test_every_eval"))
        if (self.iterations is None) == (self.epochs is None):
            raise LthkitError("give exactly one training budget: iterations or epochs")

    def total_iterations(self, num_train: int) -> int:
        """The budget in iterations for a training set of ``num_train`` images."""
        if self.iterations is not None:
            return self.iterations
        return max(1, math.ceil(self.epochs * num_train / self.batch_size))


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
    try:
        return cls(parameters, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
        return cls(parameters, **options)


def autograd_pass(model: nn.Module):
    """``pass(images, labels)``: cross-entropy of ``model`` on the batch, gradients by autograd; returns the loss."""
    def forward_backward(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        return loss.detach()
    return forward_backward


class LeNetPass:
    """LeNet-300-100's forward and backward pass written out: the ATen calls autograd makes, without autograd.

    For ``F.cross_entropy(model(x), y).backward()`` on a :class:`~lthkit.models.LeNet300100`
    autograd runs ``addmm`` and ``relu`` forward, then ``nll_loss_backward``,
    ``_log_softmax_backward_data``, ``mm`` for weight and input gradients, a sum for each bias and
    ``threshold_backward`` for each ReLU. This class makes exactly those calls, with the same
    arguments and memory layouts, so the gradients are bit-for-bit autograd's
    (``tests/test_train.py`` checks whole training runs); it saves the autograd engine's
    bookkeeping, 10-15% of a step of this small network on a CPU, and on a GPU launches no more
    kernels than the arithmetic needs.

    Only a plain LeNet300100 qualifies (:meth:`supports`): no subclass, no hooks on the model,
    its layers or parameters, no reparametrization. Anything else trains through autograd.

    Example:
        >>> forward_backward = LeNetPass(model)  # doctest: +SKIP
        >>> loss = forward_backward(images, labels)  # doctest: +SKIP
    """

    NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")

    def __init__(self, model: nn.Module):
        self.layers = [model.fc1, model.fc2, model.fc3]
        self.seed = None  # d loss / d loss = 1, as autograd seeds the backward pass

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        """Whether ``model`` is a plain LeNet-300-100 whose training autograd would not touch otherwise."""
        from torch.nn.modules import module as module_hooks

        from .models import LeNet300100

        if type(model) is not LeNet300100 or tuple(name for name, _ in model.named_parameters()) != cls.NAMES:
            return False
        if any(getattr(module_hooks, name, None) for name in (
                "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                "_global_backward_pre_hooks")):
            return False
        for module in model.modules():
            if type(module) not in (LeNet300100, nn.Linear) or any(getattr(module, name, None) for name in (
                    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                    "parametrizations")):
                return False
        return all(p.requires_grad and p.dtype == torch.float32 and not getattr(p, "_backward_hooks", None)
                   and getattr(p, "_post_accumulate_grad_hooks", None) is None for p in model.parameters())

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        inputs = [images.flatten(1)]  # each layer's input, kept for its weight gradient
        hidden = inputs[0]
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            hidden = torch.addmm(layer.bias, hidden, layer.weight.t())
            if index < last:
                hidden = torch.relu(hidden)
                inputs.append(hidden)
        log_probs = torch.log_softmax(hidden, 1)
        loss, total_weight = torch.ops.aten.nll_loss_forward(log_probs, labels, None, 1, -100)  # 1: mean
        if self.seed is None:
            self.seed = torch.ones_like(loss)
        grad = torch.ops.aten.nll_loss_backward(self.seed, log_probs, labels, None, 1, -100, total_weight)
        grad = torch.ops.aten._log_softmax_backward_data(grad, log_probs, 1, log_probs.dtype)
        for index in range(last, -1, -1):
            layer = self.layers[index]
            # addmm's backward for weight.t(), a column-major matrix: (grad^T @ input), row-major.
            layer.weight.grad = grad.t().mm(inputs[index])
            layer.bias.grad = grad.sum(0)
            if index > 0:
                grad = torch.ops.aten.threshold_backward(grad.mm(layer.weight), inputs[index], 0)
        return loss


class MaskedStep:
    """One optimizer step with masks enforced, as cheap as the optimizer's own kernel allows.

    Calling it after ``loss.backward()``

    1. multiplies the gradients of the masked weights by their masks (so optimizer state of a
       pruned weight never moves),
    2. runs the optimizer,
    3. multiplies the masked weights by their masks (so nothing can revive a pruned weight),
    4. releases every gradient (``grad = None``), so that the next backward pass writes fresh
       gradients instead of adding into zeroed ones: no ``zero_grad`` pass, no accumulation pass.

    For the fused Adam of :func:`make_optimizer` (the paper's optimizer), steps after the first
    call the same fused kernel that :meth:`torch.optim.Adam.step` calls, on the optimizer's own
    state tensors, without the per-step Python bookkeeping around it; the first step goes
    through ``optimizer.step()``, which creates that state. The result is bit-for-bit that of
    ``optimizer.step()`` (``tests/test_train.py`` checks it). Any other optimizer or setting
    always goes through ``optimizer.step()``.

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
        self._direct = None  # (kernel, state lists, options) once the fused Adam state exists

    @torch.no_grad()
    def __call__(self) -> None:
        grads = [p.grad for p in self.params]
        if self.masked_params:
            torch._foreach_mul_([p.grad for p in self.masked_params], self.mask_values)
        if self._direct and all(g is not None for g in grads):
            kernel, exp_avgs, exp_avg_sqs, steps, options = self._direct
            torch._foreach_add_(steps, 1)
            kernel(self.params, grads, exp_avgs, exp_avg_sqs, [], steps, **options)
        else:
            self.optimizer.step()
            if self._direct is None:
                self._direct = self._fused_adam_arguments()
        if self.masked_params:
            torch._foreach_mul_(self.masked_params, self.mask_values)
        for p in self.params:
            p.grad = None

    def _fused_adam_arguments(self):
        """The fused Adam kernel and its arguments, or ``False`` where ``optimizer.step()`` must run."""
        optimizer = self.optimizer
        if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
            return False
        group = optimizer.param_groups[0]
        kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
        plain = (group.get("fused") and not group.get("amsgrad") and not group.get("maximize")
                 and not group.get("capturable") and not group.get("differentiable")
                 and not torch.is_tensor(group["lr"]) and getattr(optimizer, "grad_scale", None) is None
                 and getattr(optimizer, "found_inf", None) is None)
        states = [optimizer.state.get(p, {}) for p in self.params]
        if not plain or not all({"step", "exp_avg", "exp_avg_sq"} <= set(state) for state in states):
            return False
        beta1, beta2 = group["betas"]
        options = dict(amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                       eps=group["eps"], maximize=False)
        return (kernel, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                [s["step"] for s in states], options)


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
          description: str = "train") -> TrainResult:
    """Train ``model`` in place with ``masks`` enforced, and record early-stopping metrics.

    Args:
        model: the network; moved to ``data``'s device. Pruned weights are zeroed first.
        data: in-memory MNIST (see :func:`lthkit.data.load_mnist`).
        config: optimizer, budget and evaluation schedule.
        masks: a mask set for ``model`` (``None``: dense).
        seed: seed of the order of training batches.
        start_iteration: the iteration the weights come from (after rewinding to θ_k, k); training
            runs from here to the end of the budget and iterations are reported on that scale.
        snapshot_at: iterations at which to capture the weights (``start_iteration`` included),
            returned in ``result.snapshots``; used to rewind to θ_k.
        progress: show a tqdm progress bar (a widget in notebooks, text in a terminal).
        description: the progress bar's label.

    Returns:
        A :class:`TrainResult`.

    Example:
        >>> result = train(build_model("lenet300_100"), data, TrainConfig(iterations=500))  # doctest: +SKIP
        >>> result.early_stop_iteration, result.test_acc_early_stop  # doctest: +SKIP
        (500, 0.93...)
    """
    from tqdm.auto import tqdm

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
        with torch.no_grad():
            torch._foreach_mul_(masked_params, mask_values)

    for parameter in parameters.values():
        parameter.grad = None  # stale gradients from before train() must not join the first step
    optimizer = make_optimizer(model, config)
    masked_step = MaskedStep(optimizer, masked_params, mask_values)
    forward_backward = LeNetPass(model) if LeNetPass.supports(model) else autograd_pass(model)
    generator = torch.Generator().manual_seed(int(seed))
    batch_indices = batches(len(data.train_y), config.batch_size, generator, device=device)
    for _ in range(start_iteration):
        # Resume the batch order where iteration start_iteration left it, so that training
        # rewound to θ_k sees the same data as the run θ_k came from.
        next(batch_indices)
    log = RunLog(config, start_iteration)
    loss_sum = torch.zeros((), device=device)
    steps_since_eval = 0
    began = time.perf_counter()

    def record(iteration: int) -> None:
        nonlocal loss_sum, steps_since_eval
        val_loss, val_acc = evaluate(model, data.val_x, data.val_y)
        numbers = [val_loss.double(), val_acc, loss_sum.double()]
        if config.test_every_eval:
            numbers.append(evaluate(model, data.test_x, data.test_y)[1])
        numbers = torch.stack(numbers).tolist()  # the one host synchronization of this point
        log.add_point(iteration, val_loss=numbers[0], val_acc=numbers[1],
                      train_loss=numbers[2] / steps_since_eval if steps_since_eval else None,
                      test_acc=numbers[3] if config.test_every_eval else None, state=lambda: state_copy(model))
        loss_sum = torch.zeros((), device=device)
        steps_since_eval = 0

    if start_iteration in snapshot_at:
        log.snapshots[start_iteration] = state_copy(model)
    record(start_iteration)
    bar = tqdm(total=total - start_iteration, desc=description, disable=not progress, leave=False,
               unit="it", dynamic_ncols=True)
    iteration = start_iteration
    model.train()
    try:
        while iteration < total:
            iteration += 1
            index = next(batch_indices)
            loss_sum += forward_backward(data.train_x[index], data.train_y[index])
            masked_step()  # gradients masked, optimizer step, weights masked, gradients released
            steps_since_eval += 1
            if iteration in snapshot_at:
                log.snapshots[iteration] = state_copy(model)
            if iteration % config.eval_every == 0 or iteration == total:
                record(iteration)
                bar.update(iteration - start_iteration - bar.n)
                bar.set_postfix(val_acc=f"{log.curve['val_acc'][-1]:.4f}", refresh=False)
                if log.patience_exhausted(iteration, total):
                    break
    finally:
        bar.close()
    log.iterations = iteration

    test_acc_final = log.curve["test_acc"][-1]
    if test_acc_final is None:
        test_acc_final = evaluate(model, data.test_x, data.test_y)[1].item()
    test_acc_best = log.best["test_acc"]
    if test_acc_best is None:
        test_acc_best = test_acc_final if log.best_is_last else \
            evaluate(model, data.test_x, data.test_y, state=log.best["state"])[1].item()
    train_acc_final = evaluate(model, data.train_x, data.train_y)[1].item()
    return log.result(test_acc_final=test_acc_final, test_acc_best=test_acc_best, train_acc_final=train_acc_final,
                      seconds=time.perf_counter() - began)


class RunLog:
    """What one training run records as it goes: the curve, the best point, snapshots, the stop.

    :func:`train` and :func:`lthkit.batched.train_batched` share it, so a run trained alone and
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
