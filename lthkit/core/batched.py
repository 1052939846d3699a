"""Several independent training runs at once, as one batched model.

The runs of one IMP round (trials with different seeds, the two controls) are independent: same
architecture and training config, but each with its own initial weights, mask and batch order.
:func:`train_batched` trains K such runs together. Their parameters are stacked along a new
leading dimension, every ``nn.Linear`` becomes one batched matrix multiply (``torch.baddbmm``)
and every ``nn.Conv2d`` one grouped convolution over all K runs, and the optimizer runs once over
the stacked tensors. Adam and SGD act element by element, so one optimizer over the stack is
exactly K independent optimizers; the masks are stacked the same way and enforced as in
:func:`lthkit.core.train.train` (gradients before the step, weights after it).

Each run's result equals :func:`~lthkit.core.train.train` of that run alone up to float rounding (a
batched kernel may add in a different order): ``tests/test_batched.py`` checks weights, curves and
early-stopping records against the sequential runs, and that pruned weights stay exactly zero.

Where it pays: on a GPU, one batched step launches the kernels of one step, not K times as many,
and a 266,200-weight network is far too small to fill the device alone. On a CPU the arithmetic
is the same either way, so the gain is only the Python overhead saved per step.
:func:`use_batched` encodes where the batched path is used automatically, from the measurements in
``benchmarks/README.md`` (``benchmarks/batched_runs.py`` measures it).

Example:
    >>> models = [build_model("lenet300_100", seed=s) for s in range(4)]  # doctest: +SKIP
    >>> results = train_batched(models, data, TrainConfig(iterations=1000), seeds=range(4))  # doctest: +SKIP
    >>> [r.test_acc_early_stop for r in results]  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LthkitError
from .data import MNISTData
from .masks import Masks, apply_masks_, check_masks_fit
from .train import MaskedStep, TrainConfig, TrainResult, check_schedule, masked_step_for, training_loop

#: Smallest number of runs for which :func:`use_batched` picks the batched path, per device type
#: (``None``: never automatically). Measured with ``benchmarks/batched_runs.py``; see
#: ``benchmarks/README.md``. CUDA is not measured on this project's machines: batching is used
#: there because a LeNet step launches a few dozen tiny kernels whose cost does not grow with K.
AUTO_BATCH_FROM = {"cuda": 2, "cpu": None}


def use_batched(device, runs: int) -> bool:
    """Whether ``runs`` independent runs on ``device`` are trained batched when the choice is automatic.

    The rule depends only on the device type and the number of runs, never on a timing taken at
    run time, so the same command always takes the same path and gives the same numbers.

    Example:
        >>> use_batched("cpu", 16), use_batched("cuda", 1)
        (False, False)
    """
    threshold = AUTO_BATCH_FROM.get(torch.device(device).type)
    return threshold is not None and runs >= threshold


def stacked_batches(num_examples: int, batch_size: int, generators: Sequence[torch.Generator], device=None):
    """:func:`lthkit.core.data.batches` for several runs at once.

    Yields ``(K, b)`` index tensors whose row ``k`` is exactly what
    ``batches(num_examples, batch_size, generators[k], device)`` yields at the same step.
    """
    if batch_size < 1:
        raise LthkitError(f"batch_size must be at least 1, got {batch_size}")
    while True:
        orders = torch.stack([torch.randperm(num_examples, generator=g) for g in generators]).to(device)
        yield from orders.split(batch_size, dim=1)


class _BatchedLinear(nn.Module):
    """K ``nn.Linear`` layers as one ``baddbmm``; inputs are ``(K * B, ..., in)``, run-major.

    The weights are kept transposed, ``(K, in, out)``, so that the batched backward pass writes
    their gradient in place, without a transposing copy.
    """

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.runs = len(layers)
        self.weight_t = nn.Parameter(self.stack("weight", [layer.weight.detach() for layer in layers]))
        self.bias = None
        if layers[0].bias is not None:
            self.bias = nn.Parameter(self.stack("bias", [layer.bias.detach() for layer in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leading = x.shape[:-1]
        x = x.reshape(self.runs, -1, x.shape[-1])
        out = torch.bmm(x, self.weight_t) if self.bias is None else torch.baddbmm(self.bias, x, self.weight_t)
        return out.reshape(*leading, out.shape[-1])

    def parameter_for(self, name: str) -> nn.Parameter:
        return self.weight_t if name == "weight" else self.bias

    @staticmethod
    def stack(name: str, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        if name == "weight":
            return torch.stack([t.t() for t in tensors]).contiguous()
        return torch.stack(list(tensors)).unsqueeze(1).contiguous()

    def member(self, name: str, run: int) -> torch.Tensor:
        return self.weight_t[run].t() if name == "weight" else self.bias[run, 0]


class _BatchedConv2d(nn.Module):
    """K ``nn.Conv2d`` layers as one grouped convolution; inputs are ``(K * B, C, H, W)``, run-major."""

    def __init__(self, layers: Sequence[nn.Conv2d]):
        super().__init__()
        first = layers[0]
        self.runs = len(layers)
        self.out_channels = first.out_channels
        self.options = dict(stride=first.stride, padding=first.padding, dilation=first.dilation)
        self.weight = nn.Parameter(self.stack("weight", [layer.weight.detach() for layer in layers]))
        self.bias = None
        if first.bias is not None:
            self.bias = nn.Parameter(self.stack("bias", [layer.bias.detach() for layer in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total, channels, height, width = x.shape
        batch = total // self.runs
        grouped = x.reshape(self.runs, batch, channels, height, width).transpose(0, 1)
        grouped = grouped.reshape(batch, self.runs * channels, height, width)
        out = F.conv2d(grouped, self.weight, self.bias, groups=self.runs, **self.options)
        out = out.reshape(batch, self.runs, self.out_channels, *out.shape[2:]).transpose(0, 1)
        return out.reshape(total, self.out_channels, *out.shape[3:])

    def parameter_for(self, name: str) -> nn.Parameter:
        return self.weight if name == "weight" else self.bias

    @staticmethod
    def stack(name: str, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat(list(tensors)).contiguous()

    def member(self, name: str, run: int) -> torch.Tensor:
        size = self.out_channels
        return self.parameter_for(name)[run * size:(run + 1) * size]


def _batched_layer(layers: Sequence[nn.Module], name: str) -> nn.Module:
    first = layers[0]
    if type(first) is nn.Linear:
        return _BatchedLinear(layers)
    if type(first) is nn.Conv2d and first.groups == 1 and first.padding_mode == "zeros":
        return _BatchedConv2d(layers)
    raise LthkitError(f"cannot train {name or 'the model'} ({type(first).__name__}) batched: only nn.Linear and "
                      f"plain nn.Conv2d layers are supported; train the runs one by one")


class BatchedModel:
    """K networks of one architecture trained as one: stacked parameters, one kernel per layer.

    The networks' own ``forward`` runs on a copy of the first network whose ``nn.Linear`` and
    ``nn.Conv2d`` layers are replaced by batched ones; activations carry the K runs' examples
    one run after another along the batch dimension. That is only correct for a forward pass that
    treats every example on its own (true of lthkit's models); :meth:`check` compares the batched
    forward pass with the K networks' own.

    Args:
        models: the networks (same architecture; unchanged until :meth:`write_back`).
        device: where the stacked parameters live.

    Raises:
        LthkitError: the networks differ in architecture, or have a layer that cannot be batched
            (anything with parameters or buffers other than ``nn.Linear`` and ``nn.Conv2d``).
    """

    def __init__(self, models: Sequence[nn.Module], device):
        models = list(models)
        if not models:
            raise LthkitError("train_batched needs at least one model")
        self.runs = len(models)
        template = models[0]
        shapes = {name: p.shape for name, p in template.named_parameters()}
        for model in models[1:]:
            if type(model) is not type(template) or \
                    {name: p.shape for name, p in model.named_parameters()} != shapes:
                raise LthkitError("runs trained batched must share one architecture")
        if any(True for _ in template.buffers()):
            raise LthkitError(f"cannot train {type(template).__name__} batched: it has buffers (e.g. batch norm)")
        self.twin = copy.deepcopy(template).to(device)
        self.layers: dict[str, nn.Module] = {}  # module name -> batched layer
        for name, module in template.named_modules():
            if isinstance(module, nn.modules.dropout._DropoutNd):
                raise LthkitError(f"cannot train {type(template).__name__} batched: "
                                  f"dropout draws differ from a lone run")
            if not any(True for _ in module.parameters(recurse=False)):
                continue
            layer = _batched_layer([m.get_submodule(name) for m in models], name).to(device)
            self.layers[name] = layer
            if name:
                parent, _, child = name.rpartition(".")
                setattr(self.twin.get_submodule(parent), child, layer)
            else:
                self.twin = layer
        #: Every original parameter name -> (batched layer, "weight" or "bias"), in model order.
        self.names = {}
        for name in shapes:
            module_name, _, attribute = name.rpartition(".")
            if module_name not in self.layers or attribute not in ("weight", "bias"):
                raise LthkitError(f"cannot train {type(template).__name__} batched: parameter {name} is not "
                                  f"the weight or bias of a layer")
            self.names[name] = (self.layers[module_name], attribute)
        self.parameters = [layer.parameter_for(attribute) for layer, attribute in self.names.values()]

    def parameter(self, name: str) -> nn.Parameter:
        """The stacked parameter that holds every run's ``name`` (e.g. ``"fc1.weight"``)."""
        layer, attribute = self.names[name]
        return layer.parameter_for(attribute)

    def stack(self, name: str, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Stack per-run tensors shaped like parameter ``name`` the way its stacked parameter is laid out."""
        layer, attribute = self.names[name]
        return layer.stack(attribute, tensors)

    def state(self, run: int) -> dict[str, torch.Tensor]:
        """A copy of run ``run``'s weights as its own network's ``state_dict``."""
        with torch.no_grad():
            return {name: layer.member(attribute, run).clone(memory_format=torch.contiguous_format)
                    for name, (layer, attribute) in self.names.items()}

    @torch.no_grad()
    def load(self, states: Sequence[dict[str, torch.Tensor]]) -> None:
        """Overwrite every run's weights with ``states`` (one state dict per run)."""
        for name, parameter in zip(self.names, self.parameters):
            parameter.copy_(self.stack(name, [state[name].to(parameter.device) for state in states]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(K, B, classes)`` for images ``(K, B, ...)`` (run ``k`` sees ``images[k]``)."""
        runs, batch = images.shape[:2]
        return self.twin(images.reshape(runs * batch, *images.shape[2:])).reshape(runs, batch, -1)

    def losses(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Each run's mean cross-entropy on its own batch: a ``(K,)`` tensor."""
        logits = self.forward(images)
        losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        return losses.view(labels.shape).mean(1)

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, *, chunk: int = 10_000):
        """Each run's mean loss and accuracy on one evaluation set, as ``(K,)`` tensors (no host sync)."""
        was_training = self.twin.training
        self.twin.eval()
        per_chunk = max(1, chunk // self.runs)  # at most ``chunk`` examples per forward pass in all
        total_loss = torch.zeros(self.runs, device=images.device)
        correct = torch.zeros(self.runs, device=images.device, dtype=torch.long)
        for start in range(0, len(labels), per_chunk):
            x, y = images[start:start + per_chunk], labels[start:start + per_chunk]
            logits = self.forward(x.unsqueeze(0).expand(self.runs, *x.shape))
            losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(self.runs), reduction="none")
            total_loss += losses.view(self.runs, -1).sum(1)
            correct += (logits.argmax(2) == y).sum(1)
        self.twin.train(was_training)
        return total_loss / len(labels), correct.double() / len(labels)

    @torch.no_grad()
    def check(self, models: Sequence[nn.Module], images: torch.Tensor) -> None:
        """Raise :class:`LthkitError` unless the batched forward pass matches each network's own on ``images``."""
        batched = self.forward(images.unsqueeze(0).expand(self.runs, *images.shape))
        for run, model in enumerate(models):
            alone = model(images)
            if alone.shape != batched[run].shape or not torch.allclose(alone, batched[run], rtol=1e-3, atol=1e-4):
                raise LthkitError(f"cannot train {type(model).__name__} batched: its forward pass mixes examples "
                                  f"or runs (batched and lone outputs differ); train the runs one by one")


def train_batched(models: Sequence[nn.Module], data: MNISTData, config: TrainConfig, *,
                  masks: Sequence[Masks | None] | None = None, seeds: Sequence[int], start_iteration: int = 0,
                  snapshot_at=(), progress: bool = True, description: str = "train batched") -> list[TrainResult]:
    """Train K independent runs at once; each as :func:`lthkit.core.train.train` would, up to float rounding.

    Run ``k`` is ``train(models[k], data, config, masks=masks[k], seed=seeds[k],
    start_iteration=start_iteration, snapshot_at=snapshot_at)``: its own weights, mask and batch
    order, the same evaluation schedule and early-stopping records. A run that runs out of
    patience stops there (its record and final weights are those of that point) while the others
    go on. Every model ends with its run's final weights, as after :func:`~lthkit.core.train.train`.

    Args:
        models: the K networks (one architecture); trained in place, moved to ``data``'s device.
        data: in-memory MNIST.
        config: the training config all runs share.
        masks: one mask set (or ``None``: dense) per run; ``None``: all dense.
        seeds: one batch-order seed per run.
        start_iteration: the iteration all runs start from.
        snapshot_at: iterations at which to capture each run's weights (as in ``train``).
        progress: show one progress bar for the batch.
        description: the progress bar's label.

    Returns:
        One :class:`~lthkit.core.train.TrainResult` per run, in order. ``seconds`` is each run's share
        of the batch's wall time (the batch's time divided by K), so the shares add up to it.

    Raises:
        LthkitError: mismatched lengths, masks that do not fit, a bad budget or start, or a
            model that cannot be batched (see :class:`BatchedModel`).
    """
    models, seeds = list(models), [int(seed) for seed in seeds]
    runs = len(models)
    masks = [None] * runs if masks is None else list(masks)
    if runs == 0 or len(seeds) != runs or len(masks) != runs:
        raise LthkitError(f"train_batched needs one seed and one mask set per model: got {runs} models, "
                          f"{len(seeds)} seeds and {len(masks)} mask sets")
    device = data.device
    total, snapshot_at = check_schedule(config, data, start_iteration, snapshot_at)
    for model, mask in zip(models, masks):
        model.to(device)
        if mask is not None:
            check_masks_fit(model, mask)

    batched = BatchedModel(models, device)
    masked_names = sorted({name for mask in masks if mask is not None for name in mask}, key=list(batched.names).index)
    masked_params = [batched.parameter(name) for name in masked_names]
    mask_values = []
    for name in masked_names:
        shape = dict(models[0].named_parameters())[name].shape
        per_run = [torch.ones(shape) if mask is None else mask[name].to(torch.float32) for mask in masks]
        mask_values.append(batched.stack(name, [m.to(device) for m in per_run]).to(batched.parameter(name).dtype))
    masked_step = masked_step_for(batched.parameters, masked_params, mask_values, config)
    batched.check([model if mask is None else apply_masks_(copy.deepcopy(model), mask)
                   for model, mask in zip(models, masks)], data.train_x[:2])

    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    batch_indices = stacked_batches(len(data.train_y), config.batch_size, generators, device=device)
    trainee = _BatchRuns(batched, data, masked_step)
    results = training_loop(trainee, data, config, batch_indices, total=total, start_iteration=start_iteration,
                            snapshot_at=snapshot_at, progress=progress, description=f"{description} ({runs} runs)")
    for model, state in zip(models, trainee.final_states):
        with torch.no_grad():
            model.load_state_dict(state)
    return results


class _BatchRuns:
    """K runs as one :class:`BatchedModel`, as :func:`lthkit.core.train.training_loop` drives them."""

    def __init__(self, batched: BatchedModel, data: MNISTData, masked_step: MaskedStep):
        self.batched, self.data, self.masked_step = batched, data, masked_step
        self.runs = batched.runs
        self.stopped: dict[int, dict] = {}  # run -> its final weights, taken when it stopped early
        self.final_states: list[dict] = []

    def train_mode(self) -> None:
        self.batched.twin.train()

    def set_lr(self, lr: float) -> None:
        self.masked_step.set_lr(lr)

    def step(self, index: torch.Tensor) -> torch.Tensor:
        losses = self.batched.losses(self.data.train_x[index], self.data.train_y[index])
        losses.sum().backward()  # run k's parameters get exactly run k's gradient
        self.masked_step()
        return losses.detach()

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor):
        return self.batched.evaluate(images, labels)

    def state(self, run: int) -> dict[str, torch.Tensor]:
        return self.batched.state(run)

    def stop(self, run: int) -> None:
        self.stopped[run] = self.batched.state(run)

    def finish(self) -> None:
        # Each run's final weights: where it stopped, or where the batch ended.
        self.final_states = [self.stopped[run] if run in self.stopped else self.batched.state(run)
                             for run in range(self.runs)]

    def accuracies(self, images: torch.Tensor, labels: torch.Tensor, states) -> list[float]:
        self.batched.load([self.final_states[run] if state is None else state for run, state in enumerate(states)])
        return self.batched.evaluate(images, labels)[1].tolist()
