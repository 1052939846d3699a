"""A feed-forward network as a chain of steps: the one shape every export understands.

To shrink a layer, an export must know which layer reads which: the units a ``Linear`` or ``Conv2d``
writes are the units the next one reads, through elementwise activations, max-pooling and
flattening. :func:`trace_chain` reads that from the network's own ``forward`` with ``torch.fx``
and checks it: a chain of ``Linear`` and ``Conv2d`` layers (``groups=1``, zero padding) with
``ReLU``, ``max_pool2d`` and ``flatten(1)`` between them, each layer used once. Dropout and
``Identity`` are skipped (exports are for inference). Anything else (a residual connection,
batch normalization, a reshape the trace cannot read) is a one-line :class:`~lthkit.LthkitError`
naming it. The networks of :mod:`lthkit.core.models` are such chains, and so is any plain
``nn.Sequential`` of those modules.

:func:`run_chain` runs a chain with any modules standing in for its layers: the compact network
and the sparse networks of this package are chains with other layers.

Example:
    >>> from lthkit.core.models import build_model
    >>> chain = trace_chain(build_model("lenet300_100"), (1, 28, 28))
    >>> [step.kind for step in chain.steps]
    ['flatten', 'linear', 'relu', 'linear', 'relu', 'linear']
    >>> chain.layers, chain.shapes["fc1"]
    (['fc1', 'fc2', 'fc3'], ((784,), (300,)))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LthkitError

#: The kinds of step that are layers (their weights can be pruned, their units removed).
LAYER_KINDS = ("linear", "conv")
#: The kinds of step between layers: they act on each unit alone (ReLU), on each channel's map alone
#: (max-pooling) or only rearrange the units (flattening), so a unit's outputs stay its own.
BETWEEN_KINDS = ("relu", "max_pool", "flatten")
_SKIPPED_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_RELU_FUNCTIONS = {torch.relu, F.relu, torch.relu_, F.relu_}
_POOL_FUNCTIONS = {torch.max_pool2d, F.max_pool2d}
_SUPPORTED = ("a chain of nn.Linear and nn.Conv2d layers with ReLU, max_pool2d and flatten(1) between them")


@dataclass(frozen=True)
class Step:
    """One step of a chain.

    Attributes:
        kind: ``"linear"``, ``"conv"`` (layers), ``"relu"``, ``"max_pool"`` or ``"flatten"``.
        name: the layer's module name (``"fc1"``, ``"features.0"``); empty for the other steps.
        options: ``max_pool``'s ``(kernel_size, stride, padding, dilation, ceil_mode)``; empty otherwise.
    """

    kind: str
    name: str = ""
    options: tuple = ()


@dataclass(frozen=True)
class Chain:
    """A network's forward pass as steps, with the shape of every layer's input and output.

    Attributes:
        steps: the steps, in order.
        input_shape: one example's input shape (``(1, 28, 28)``).
        shapes: ``{layer: (input shape, output shape)}`` of one example, without the batch dimension.
    """

    steps: tuple[Step, ...]
    input_shape: tuple[int, ...]
    shapes: dict = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        """The layers' module names, in order."""
        return [step.name for step in self.steps if step.kind in LAYER_KINDS]

    def kind(self, layer: str) -> str:
        """``"linear"`` or ``"conv"``."""
        return next(step.kind for step in self.steps if step.name == layer)

    def between(self, layer: str) -> list[Step]:
        """The steps after ``layer`` and before the next layer (after the last: to the end)."""
        index = next(i for i, step in enumerate(self.steps) if step.name == layer)
        found = []
        for step in self.steps[index + 1:]:
            if step.kind in LAYER_KINDS:
                break
            found.append(step)
        return found

    def before_first(self) -> list[Step]:
        """The steps before the first layer (LeNet's ``flatten``)."""
        found = []
        for step in self.steps:
            if step.kind in LAYER_KINDS:
                break
            found.append(step)
        return found


def _constant(value, what: str):
    if isinstance(value, torch.fx.Node):
        raise LthkitError(f"{what} is computed in forward, not a constant; an export needs {_SUPPORTED}")
    return value


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pool_options(args, kwargs) -> tuple:
    names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
    values = dict(zip(names, args))
    values.update({key: value for key, value in kwargs.items() if key in names})
    for key in kwargs:
        if key not in names and key != "return_indices":
            raise LthkitError(f"max_pool2d with {key}= is not supported by the exports")
    if kwargs.get("return_indices"):
        raise LthkitError("max_pool2d with return_indices=True is not supported by the exports")
    kernel = _pair(_constant(values["kernel_size"], "max_pool2d's kernel_size"))
    stride = values.get("stride")
    stride = kernel if stride in (None, (), []) else _pair(_constant(stride, "max_pool2d's stride"))
    return (kernel, stride, _pair(_constant(values.get("padding", 0), "max_pool2d's padding")),
            _pair(_constant(values.get("dilation", 1), "max_pool2d's dilation")),
            bool(_constant(values.get("ceil_mode", False), "max_pool2d's ceil_mode")))


def _flatten_dims(args, kwargs) -> None:
    start = kwargs.get("start_dim", args[0] if args else 0)
    end = kwargs.get("end_dim", args[1] if len(args) > 1 else -1)
    if (start, end) != (1, -1):
        raise LthkitError(f"flatten({start}, {end}) is not supported by the exports: only flatten(1), which keeps "
                          "the batch dimension")


def _step_of(model: nn.Module, node: torch.fx.Node) -> Step | None:
    """The step a traced node is, ``None`` for one the exports skip; a one-line error for anything else."""
    if node.op == "call_module":
        module = model.get_submodule(node.target)
        if isinstance(module, nn.Linear):
            return Step("linear", node.target)
        if isinstance(module, nn.Conv2d):
            if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
                raise LthkitError(f"{node.target} is a Conv2d with groups={module.groups}, padding={module.padding!r}, "
                                  f"padding_mode={module.padding_mode!r}; the exports support groups=1 and numeric "
                                  "zero padding")
            return Step("conv", node.target)
        if isinstance(module, nn.ReLU):
            return Step("relu")
        if isinstance(module, nn.MaxPool2d):
            if module.return_indices:
                raise LthkitError(f"{node.target}: max-pooling with return_indices=True is not supported")
            return Step("max_pool", options=_pool_options((module.kernel_size, module.stride, module.padding,
                                                           module.dilation, module.ceil_mode), {}))
        if isinstance(module, nn.Flatten):
            _flatten_dims((module.start_dim, module.end_dim), {})
            return Step("flatten")
        if isinstance(module, _SKIPPED_MODULES):
            return None
        raise LthkitError(f"{node.target} is a {type(module).__name__}; the exports support {_SUPPORTED}")
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return Step("relu")
        if node.target in _POOL_FUNCTIONS:
            return Step("max_pool", options=_pool_options(node.args[1:], node.kwargs))
        if node.target is torch.flatten:
            _flatten_dims(node.args[1:], node.kwargs)
            return Step("flatten")
        if node.target in (F.dropout, torch.dropout):
            return None
        name = getattr(node.target, "__name__", str(node.target))
        raise LthkitError(f"forward calls {name}; the exports support {_SUPPORTED}")
    if node.op == "call_method":
        if node.target in ("relu", "relu_"):
            return Step("relu")
        if node.target == "flatten":
            _flatten_dims(node.args[1:], node.kwargs)
            return Step("flatten")
        if node.target == "contiguous":
            return None
        raise LthkitError(f"forward calls the tensor method .{node.target}(); the exports support {_SUPPORTED}")
    raise LthkitError(f"forward reads {node.op} {node.target}; the exports support {_SUPPORTED}")


def _trace(model: nn.Module) -> list[Step]:
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as error:  # noqa: BLE001 - any tracing failure is the same problem for the user
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise LthkitError(f"cannot follow {type(model).__name__}'s forward with torch.fx ({reason}); the exports "
                          f"support {_SUPPORTED}") from None
    nodes = [node for node in graph.nodes]
    inputs = [node for node in nodes if node.op == "placeholder"]
    if len(inputs) != 1:
        raise LthkitError(f"{type(model).__name__}'s forward takes {len(inputs)} inputs; the exports need one")
    steps, previous = [], inputs[0]
    for node in nodes:
        if node.op in ("placeholder", "output"):
            if node.op == "output" and node.args[0] is not previous:
                raise LthkitError(f"{type(model).__name__}'s forward does not return its last step's output; the "
                                  f"exports support {_SUPPORTED}")
            continue
        tensors = [arg for arg in node.all_input_nodes]
        if tensors != [previous]:
            raise LthkitError(f"{node.name} of {type(model).__name__}'s forward reads "
                              f"{', '.join(t.name for t in tensors) or 'no tensor'}, not the step before it; the "
                              f"exports support {_SUPPORTED}")
        step = _step_of(model, node)
        if step is not None:
            steps.append(step)
        previous = node
    return steps


def _check_order(steps: list[Step], model_name: str) -> None:
    layers = [step.name for step in steps if step.kind in LAYER_KINDS]
    if not layers:
        raise LthkitError(f"{model_name} has no nn.Linear or nn.Conv2d layer to export")
    repeated = sorted({name for name in layers if layers.count(name) > 1})
    if repeated:
        raise LthkitError(f"{model_name} uses {', '.join(repeated)} more than once in forward; the exports need each "
                          "layer once")
    flat = False
    for step in steps:
        if step.kind == "flatten":
            flat = True
        elif step.kind == "conv" and flat:
            raise LthkitError(f"{step.name} is a Conv2d after a flatten; the exports support convolutions first, then "
                              "fully connected layers")
        elif step.kind == "max_pool" and flat:
            raise LthkitError("max-pooling after a flatten is not supported by the exports")


def run_chain(steps, layers, inputs: torch.Tensor, *, select: dict | None = None) -> torch.Tensor:
    """Run ``steps`` on ``inputs`` with ``layers[name]`` standing in for each layer.

    Args:
        steps: the chain's :class:`Step` s.
        layers: ``{layer name: module}`` (a ``ModuleDict`` or a dict).
        inputs: a batch.
        select: ``{layer name: index}``: before that layer, keep only these units of dimension 1
            (a compact network's first layer reads only the inputs it uses).

    Returns:
        The output of the last step.
    """
    x = inputs
    for step in steps:
        if step.kind in LAYER_KINDS:
            if select and step.name in select:
                x = x.index_select(1, select[step.name])
            x = layers[step.name](x)
        elif step.kind == "relu":
            x = torch.relu(x)
        elif step.kind == "max_pool":
            kernel, stride, padding, dilation, ceil_mode = step.options
            x = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        else:
            x = x.flatten(1)
    return x


def trace_chain(model: nn.Module, input_shape=(1, 28, 28)) -> Chain:
    """Read ``model``'s forward pass as a :class:`Chain`, checked, with every layer's shapes.

    The chain is checked by running it: on one seeded random example it must give what
    ``model`` gives (so nothing the trace skipped mattered).

    Args:
        model: the network (its weights are only read).
        input_shape: one example's shape, without the batch dimension (MNIST: ``(1, 28, 28)``).

    Returns:
        The :class:`Chain`.

    Raises:
        LthkitError: the network is not such a chain, or ``input_shape`` does not fit it.
    """
    if not isinstance(model, nn.Module):
        raise LthkitError(f"model must be a torch.nn.Module, got a {type(model).__name__}")
    try:
        input_shape = tuple(int(size) for size in input_shape)
    except (TypeError, ValueError):
        raise LthkitError(f"input_shape must be a tuple of sizes such as (1, 28, 28), got {input_shape!r}") from None
    if not input_shape or any(size < 1 for size in input_shape):
        raise LthkitError(f"input_shape must be a tuple of positive sizes such as (1, 28, 28), got {input_shape!r}")
    name = type(model).__name__
    steps = _trace(model)
    _check_order(steps, name)
    modules = dict(model.named_modules())
    parameter = next(model.parameters())
    example = torch.randn((1, *input_shape), generator=torch.Generator().manual_seed(0)).to(parameter)
    shapes, x = {}, example
    with torch.no_grad():
        try:
            for index, step in enumerate(steps):
                before = tuple(x.shape[1:])
                x = run_chain(steps[index:index + 1], modules, x)
                if step.kind in LAYER_KINDS:
                    shapes[step.name] = (before, tuple(x.shape[1:]))
            expected = _in_eval(model, example)
        except RuntimeError as error:
            raise LthkitError(f"an input of shape {input_shape} does not fit {name} "
                              f"({(str(error).splitlines() or [''])[0][:160]})") from None
    if not isinstance(expected, torch.Tensor) or expected.shape != x.shape or \
            not torch.allclose(expected, x, rtol=1e-4, atol=1e-5):
        raise LthkitError(f"{name}'s forward computes more than its traced steps show; the exports support {_SUPPORTED}")
    return Chain(tuple(steps), input_shape, shapes)


def _in_eval(model: nn.Module, example: torch.Tensor) -> torch.Tensor:
    """``model(example)`` in eval mode, the model's training flags put back."""
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        return model(example)
    finally:
        for module, flag in flags.items():
            module.training = flag


class ChainNetwork(nn.Module):
    """A chain run with layers of its own: the shape of every exported network.

    Args:
        steps: the chain's :class:`Step` s (the layers' names are kept, their modules replaced).
        layers: ``{layer name: module}``, one per layer of ``steps``.
        select: ``{layer name: index tensor}``: before that layer, keep only these units of dimension 1.

    Example:
        >>> steps = (Step("linear", "a"), Step("relu"), Step("linear", "b"))
        >>> network = ChainNetwork(steps, {"a": nn.Linear(4, 3), "b": nn.Linear(3, 2)})
        >>> network(torch.zeros(5, 4)).shape
        torch.Size([5, 2])
    """

    def __init__(self, steps, layers: dict, select: dict | None = None):
        super().__init__()
        self.steps = tuple(steps)
        self.layer_names = [step.name for step in self.steps if step.kind in LAYER_KINDS]
        missing = [name for name in self.layer_names if name not in layers]
        if missing:
            raise LthkitError(f"no module given for layer {', '.join(missing)}")
        # Layer names may hold dots ("features.0"), which a ModuleDict key may not: store them by position.
        self.layers = nn.ModuleList([layers[name] for name in self.layer_names])
        self.selected = [name for name in self.layer_names if select and name in select]
        for index, name in enumerate(self.selected):
            self.register_buffer(f"select_{index}", select[name].to(torch.long))

    def layer(self, name: str) -> nn.Module:
        """The module standing in for layer ``name``."""
        return self.layers[self.layer_names.index(name)]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        layers = dict(zip(self.layer_names, self.layers))
        select = {name: getattr(self, f"select_{index}") for index, name in enumerate(self.selected)}
        return run_chain(self.steps, layers, inputs, select=select)
