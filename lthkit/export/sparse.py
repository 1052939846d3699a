"""Sparse kernels: the ticket's weights stored and multiplied as sparse matrices.

Two kinds:

* **CSR** (compressed sparse row, ``torch.sparse_csr_tensor``): each layer keeps only its surviving
  weights, their column indices and where each row starts, and multiplies with a sparse-dense
  matrix product (MKL on a CPU, cuSPARSE on a GPU). Any pattern of survivors fits; the price is an
  index read per weight and a product that vectorizes worse than a dense one. A ``Conv2d`` becomes
  an ``unfold`` (im2col) of its input and one CSR product, which is how sparse convolution is done
  without a dedicated kernel.
* **2:4 semi-structured** (``torch.sparse.to_sparse_semi_structured``): at most two surviving weights
  in every group of four consecutive weights of a row, a pattern the sparse tensor cores of NVIDIA
  GPUs of compute capability 8.0 and later multiply at up to twice the dense rate. A ticket's
  unstructured mask is not 2:4, so :func:`two_four_masks` **re-prunes** it: in every group, the two
  largest surviving weights stay. That changes the network, so its accuracy cost is measured, and
  the 2:4 network is checked against the masked network with the re-pruned masks. Only fully
  connected layers get the 2:4 kernel (float16); convolutions stay dense.

The survivors are read from the masks, never from the weights' non-zeros: a surviving weight that
happens to be exactly 0 is still part of the ticket.

Example:
    >>> w = torch.tensor([[0.1, -0.9, 0.5, 0.2, 0.3, 0.0, 0.0, 0.7]])
    >>> m = torch.tensor([[True, True, True, False, True, False, False, True]])
    >>> two_four_masks({"w": w}, {"w": m})["w"].int().tolist()
    [[0, 1, 1, 0, 1, 0, 0, 1]]
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..core.masks import Masks
from ..errors import LthkitError
from .chain import LAYER_KINDS, ChainNetwork
from .ticket import PreparedTicket

#: The compute capability (major, minor) the 2:4 sparse tensor cores need (NVIDIA Ampere and later).
SEMI_STRUCTURED_CAPABILITY = (8, 0)
#: The 2:4 pattern: at most ``KEEP`` survivors in every group of ``GROUP`` consecutive weights of a row.
GROUP, KEEP = 4, 2


def csr_from_mask(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A 2-D weight as a CSR tensor holding exactly the entries its mask keeps (a kept 0 included).

    Args:
        weight: ``(rows, columns)``.
        mask: a boolean tensor of the same shape.

    Returns:
        A ``torch.sparse_csr`` tensor of ``weight``'s shape and dtype.

    Example:
        >>> csr = csr_from_mask(torch.tensor([[0.0, 2.0], [3.0, 4.0]]), torch.tensor([[True, False], [False, True]]))
        >>> csr.crow_indices().tolist(), csr.col_indices().tolist(), csr.values().tolist()
        ([0, 1, 2], [0, 1], [0.0, 4.0])
    """
    if weight.dim() != 2 or mask.shape != weight.shape:
        raise LthkitError(f"csr_from_mask needs a 2-D weight and a mask of its shape, got {tuple(weight.shape)} and "
                          f"{tuple(mask.shape)}")
    mask = mask.to(device=weight.device, dtype=torch.bool)
    crow = torch.zeros(weight.shape[0] + 1, dtype=torch.int64, device=weight.device)
    crow[1:] = mask.sum(1).cumsum(0)
    columns = mask.nonzero()[:, 1].contiguous()  # row-major: sorted by row, then column, as CSR stores them
    with warnings.catch_warnings():  # torch says once per process that CSR support is in beta; we know
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, columns, weight[mask].contiguous(), tuple(weight.shape),
                                       check_invariants=True)


class SparseLinear(nn.Module):
    """A fully connected layer whose weight is a CSR matrix: ``y = x Wᵀ + b`` with a sparse ``W``.

    Args:
        weight: the dense weight ``(out, in)``; only the entries ``mask`` keeps are stored.
        bias: ``(out,)`` or ``None``.
        mask: which entries survive.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor):
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight", csr_from_mask(weight.detach(), mask))
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.linear(inputs, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, stored={self.weight.values().numel()}"


class SparseConv2d(nn.Module):
    """A convolution as ``unfold`` (im2col) and one CSR product: ``W (out, in·kh·kw)`` sparse, the patches dense.

    Args:
        conv: the dense ``nn.Conv2d`` (its stride, padding and dilation are kept).
        mask: its weight's mask ``(out, in, kh, kw)``.
    """

    def __init__(self, conv: nn.Conv2d, mask: torch.Tensor):
        super().__init__()
        weight = conv.weight.detach()
        self.out_channels, self.kernel_size = weight.shape[0], tuple(conv.kernel_size)
        self.stride, self.padding, self.dilation = tuple(conv.stride), tuple(conv.padding), tuple(conv.dilation)
        self.register_buffer("weight", csr_from_mask(weight.reshape(weight.shape[0], -1), mask.reshape(weight.shape[0],
                                                                                                          -1)))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = inputs.shape
        patches = F.unfold(inputs, self.kernel_size, self.dilation, self.padding, self.stride)  # (N, C·kh·kw, L)
        out_h = (height + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
        out_w = (width + 2 * self.padding[1] - self.dilation[1] * (self.kernel_size[1] - 1) - 1) // self.stride[1] + 1
        if batch == 1:
            product = torch.sparse.mm(self.weight, patches[0]).unsqueeze(0)  # (1, out, L)
        else:
            columns = patches.transpose(0, 1).reshape(patches.shape[1], -1)  # (C·kh·kw, N·L)
            product = torch.sparse.mm(self.weight, columns).view(self.out_channels, batch, -1).transpose(0, 1)
        output = product.reshape(batch, self.out_channels, out_h, out_w)
        return output if self.bias is None else output + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}, "
                f"stored={self.weight.values().numel()}")


def _chain_parts(network) -> tuple:
    """``(steps, {layer: module}, {layer: mask}, select)`` of a prepared ticket or a compact network."""
    if isinstance(network, PreparedTicket):
        steps = network.chain.steps
        modules = {layer: network.model.get_submodule(layer) for layer in network.chain.layers}
        masks = {layer: network.masks[f"{layer}.weight"] for layer in modules}
        return steps, modules, masks, None
    if isinstance(network, ChainNetwork) and hasattr(network, "masks"):
        modules = {name: network.layer(name) for name in network.layer_names}
        masks = {name: network.masks[f"{name}.weight"] for name in network.layer_names}
        select = {name: getattr(network, f"select_{index}") for index, name in enumerate(network.selected)}
        return network.steps, modules, masks, select
    raise LthkitError(f"expected a prepared ticket or a compact network, got a {type(network).__name__}")


def csr_network(network) -> ChainNetwork:
    """Every layer of a ticket (or of its compact network) as a CSR layer.

    Args:
        network: a :class:`~lthkit.export.ticket.PreparedTicket` (:func:`~lthkit.export.ticket.prepare_ticket`)
            or a :class:`~lthkit.export.compact.CompactNetwork`.

    Returns:
        A :class:`~lthkit.export.chain.ChainNetwork` of :class:`SparseLinear` and :class:`SparseConv2d`
        layers, in eval mode: the masked network's outputs up to float rounding.
    """
    steps, modules, masks, select = _chain_parts(network)
    layers = {}
    for name, module in modules.items():
        if isinstance(module, nn.Conv2d):
            layers[name] = SparseConv2d(module, masks[name])
        else:
            layers[name] = SparseLinear(module.weight, module.bias, masks[name])
    return ChainNetwork(steps, layers, select).eval()


def two_four_masks(weights, masks) -> Masks:
    """Re-prune masks to the 2:4 pattern: in each group of 4 consecutive weights of a row, the 2 largest survivors stay.

    A row is the weight's first dimension; a convolution's ``(out, in, kh, kw)`` is read as
    ``(out, in·kh·kw)``, the matrix its product multiplies. A last group shorter than 4 (a row
    length that is not a multiple of 4) is treated as if padded with pruned weights. Groups with 2
    or fewer survivors are left as they are; ties go to ``torch.topk``.

    Args:
        weights: ``{name: weight}`` (ranked by magnitude).
        masks: ``{name: bool mask}`` of the same names and shapes.

    Returns:
        New masks, each a subset of the given one with at most 2 survivors per group of 4.

    Raises:
        LthkitError: the names or shapes differ.
    """
    if set(weights) != set(masks):
        raise LthkitError(f"weights and masks name different tensors: {sorted(weights)} vs {sorted(masks)}")
    result = {}
    for name, mask in masks.items():
        weight = weights[name]
        if tuple(weight.shape) != tuple(mask.shape) or weight.dim() < 2:
            raise LthkitError(f"{name}: a 2:4 mask needs a weight of at least 2 dimensions and a mask of its shape, "
                              f"got {tuple(weight.shape)} and {tuple(mask.shape)}")
        rows = weight.shape[0]
        flat_mask = mask.reshape(rows, -1).bool()
        scores = torch.where(flat_mask, weight.detach().reshape(rows, -1).abs().float(), torch.tensor(-1.0))
        padding = (-scores.shape[1]) % GROUP
        if padding:
            scores = F.pad(scores, (0, padding), value=-1.0)
        groups = scores.view(rows, -1, GROUP)
        chosen = torch.zeros_like(groups, dtype=torch.bool)
        chosen.scatter_(2, groups.topk(KEEP, dim=2).indices, True)
        chosen = chosen.view(rows, -1)[:, :flat_mask.shape[1]]
        result[name] = (chosen & flat_mask).view(mask.shape)
    return result


def semi_structured_support(device) -> str | None:
    """Why the 2:4 kernel cannot run on ``device``, in one line, or ``None`` when it can.

    Example:
        >>> semi_structured_support("cpu")
        '2:4 semi-structured kernels need a CUDA GPU of compute capability 8.0 or later; the device is cpu'
    """
    device = torch.device(device)
    need = f"{SEMI_STRUCTURED_CAPABILITY[0]}.{SEMI_STRUCTURED_CAPABILITY[1]}"
    if device.type != "cuda":
        return f"2:4 semi-structured kernels need a CUDA GPU of compute capability {need} or later; the device is {device}"
    if not torch.cuda.is_available():
        return f"2:4 semi-structured kernels need a CUDA GPU of compute capability {need} or later; torch sees none"
    capability = torch.cuda.get_device_capability(device)
    if tuple(capability) < SEMI_STRUCTURED_CAPABILITY:
        name = torch.cuda.get_device_name(device)
        return (f"2:4 semi-structured kernels need a CUDA GPU of compute capability {need} or later; {name} has "
                f"{capability[0]}.{capability[1]}")
    return None


def _shape_multiples(dtype: torch.dtype) -> tuple[int, int]:
    """The (rows, columns) a 2:4 weight's shape must be a multiple of for ``dtype``, from torch's own table."""
    from torch.sparse import (
        SparseSemiStructuredTensor,
        SparseSemiStructuredTensorCUSPARSELT,
        SparseSemiStructuredTensorCUTLASS,
    )

    backend = SparseSemiStructuredTensorCUTLASS if SparseSemiStructuredTensor._FORCE_CUTLASS else \
        SparseSemiStructuredTensorCUSPARSELT
    constraints = getattr(backend, "_DTYPE_SHAPE_CONSTRAINTS", {}).get(dtype)
    if constraints is None:
        return 64, 64
    return int(constraints.sparse_min_rows), int(constraints.sparse_min_cols)


class SemiStructuredLinear(nn.Module):
    """A fully connected layer with a 2:4 weight, zero-padded to the shapes the kernel takes.

    The weight is padded with zero rows and columns up to multiples of what the kernel needs; the
    input is padded to the padded width when narrower, and the output is cut back to ``out_features``
    unless ``keep_padding`` (then the next such layer reads the padded width as it is: the padded
    units are exactly 0 after a ReLU, and the next layer's padded columns are 0).

    Args:
        weight: the 2:4-masked dense weight ``(out, in)``.
        bias: ``(out,)`` or ``None``.
        convert: dense → 2:4 tensor (``torch.sparse.to_sparse_semi_structured``).
        multiples: ``(rows, columns)`` to pad the weight's shape to.
        keep_padding: return the padded width.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, convert, multiples: tuple[int, int],
                 keep_padding: bool = False):
        super().__init__()
        rows, cols = weight.shape
        self.in_features, self.out_features, self.keep_padding = cols, rows, keep_padding
        # One multiple for both sides, so that a padded output is exactly the next layer's padded input.
        step = math.lcm(*multiples)
        padded_rows, padded_cols = -(-rows // step) * step, -(-cols // step) * step
        self.padded_in, self.padded_out = padded_cols, padded_rows
        padded = F.pad(weight.detach(), (0, padded_cols - cols, 0, padded_rows - rows)).contiguous()
        self.weight = nn.Parameter(convert(padded), requires_grad=False)
        padded_bias = None if bias is None else F.pad(bias.detach(), (0, padded_rows - rows))
        self.register_buffer("bias", padded_bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.shape[-1] < self.padded_in:
            inputs = F.pad(inputs, (0, self.padded_in - inputs.shape[-1]))
        output = F.linear(inputs, self.weight, self.bias)
        return output if self.keep_padding else output[..., :self.out_features]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"padded=({self.padded_out}, {self.padded_in})")


def semi_structured_network(ticket: PreparedTicket, *, device="cuda", dtype: torch.dtype = torch.float16,
                            convert=None) -> tuple[ChainNetwork, Masks]:
    """The ticket with its fully connected layers re-pruned to 2:4 and run on the sparse tensor cores.

    Args:
        ticket: a prepared ticket (:func:`~lthkit.export.ticket.prepare_ticket`).
        device: a CUDA device of compute capability 8.0 or later.
        dtype: the kernel's dtype (``float16``; ``bfloat16`` also works).
        convert: dense → 2:4 tensor; default ``torch.sparse.to_sparse_semi_structured`` (a stand-in
            lets the plumbing be tested on a CPU: then ``device`` is not checked).

    Returns:
        ``(network, masks)``: the network on ``device`` in ``dtype`` (convolutions dense), and the
        re-pruned masks of every layer (convolutions' unchanged), against which it is checked.

    Raises:
        LthkitError: the device has no 2:4 kernel (one line: :func:`semi_structured_support`).
    """
    if convert is None:
        reason = semi_structured_support(device)
        if reason is not None:
            raise LthkitError(reason)
        from torch.sparse import to_sparse_semi_structured as convert
    steps, modules, masks, _ = _chain_parts(ticket)
    repruned = two_four_ticket_masks(ticket)
    pruned = {name: repruned[f"{name}.weight"] for name, module in modules.items() if isinstance(module, nn.Linear)}
    multiples = _shape_multiples(dtype)
    layers, order = {}, [step.name for step in steps if step.kind in LAYER_KINDS]
    for index, name in enumerate(order):
        module = modules[name]
        if name in pruned:
            following = order[index + 1] if index + 1 < len(order) else None
            feeds_linear = following in pruned and not any(step.kind == "flatten" for step in _between(steps, name))
            weight = (module.weight * pruned[name]).to(device=device, dtype=dtype)
            bias = None if module.bias is None else module.bias.to(device=device, dtype=dtype)
            layers[name] = SemiStructuredLinear(weight, bias, convert, multiples, keep_padding=feeds_linear)
        else:
            copy = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                             module.dilation, bias=module.bias is not None).to(device=device, dtype=dtype)
            with torch.no_grad():
                copy.weight.copy_(module.weight * masks[name])
                if module.bias is not None:
                    copy.bias.copy_(module.bias)
            layers[name] = copy.requires_grad_(False)
    return ChainNetwork(steps, layers).to(device).eval(), repruned


def two_four_ticket_masks(ticket: PreparedTicket) -> Masks:
    """The ticket's masks with every fully connected layer re-pruned to 2:4 (:func:`two_four_masks`; the layers the
    2:4 kernel takes), the convolutions' as they are.

    Raises:
        LthkitError: the network has no fully connected layer.
    """
    linear = [layer for layer in ticket.chain.layers if ticket.chain.kind(layer) == "linear"]
    if not linear:
        raise LthkitError("the network has no fully connected layer for the 2:4 kernel")
    names = [f"{layer}.weight" for layer in linear]
    repruned = two_four_masks({name: ticket.model.get_parameter(name) for name in names},
                              {name: ticket.masks[name] for name in names})
    return {name: repruned.get(name, mask) for name, mask in ticket.masks.items()}


def _between(steps, layer: str) -> list:
    index = next(i for i, step in enumerate(steps) if step.name == layer)
    found = []
    for step in steps[index + 1:]:
        if step.kind in LAYER_KINDS:
            break
        found.append(step)
    return found
