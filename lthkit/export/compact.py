"""The compact dense network: the units a ticket cannot use removed, every layer shrunk.

Unstructured pruning removes single weights, so the pruned network is as wide as the dense one and
costs as much. Some structure falls out anyway: a hidden unit (a neuron of a ``Linear``, a channel
of a ``Conv2d``) whose **outgoing** weights are all pruned feeds nothing, and a unit whose
**incoming** weights are all pruned outputs a constant. :func:`compact_network` removes such units
and shrinks the layers on both sides, so the result is an ordinary, smaller dense network that
computes what the masked network computes:

* no surviving outgoing weight: the unit goes, with its row (its incoming weights and bias);
* no surviving incoming weight: the unit outputs ``act(bias)`` whatever the input. If that is 0
  (a ReLU and a bias ≤ 0) the unit goes; otherwise its constant contribution is added to the next
  layer's bias (*folded*) and the unit goes, where the next layer is fully connected or a
  convolution without padding (with zero padding, the border outputs see only part of the
  constant, so such a unit stays);
* an input (a pixel of LeNet's first layer) that no surviving weight reads is dropped from the
  input, which the compact network then reads with one ``index_select``.

Removing a unit can strand others (the units that only fed it lose their last outgoing weight), so
the rules run until nothing changes. The output layer's units always stay. Per layer, the network's
``structure`` says how many units survived and why the others went: how much structure
unstructured pruning left behind.

:func:`compact_linear` is one hidden fully connected layer's part of this (notebook 9's kata).

Example:
    >>> from lthkit.core.models import build_model
    >>> from lthkit.core.masks import full_masks
    >>> model = build_model("lenet300_100", seed=0)
    >>> masks = full_masks(model)
    >>> masks["fc2.weight"][:, 150:] = False   # fc1's neurons 150..299 now feed nothing
    >>> compact = compact_network(model, masks)
    >>> compact.layer("fc1").weight.shape, compact.layer("fc2").weight.shape
    (torch.Size([150, 784]), torch.Size([100, 150]))
    >>> x = torch.rand(8, 1, 28, 28)
    >>> reference = prepare_ticket(model, masks).model
    >>> bool(torch.allclose(compact(x), reference(x), atol=1e-5))
    True
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from ..errors import LthkitError
from .chain import ChainNetwork
from .ticket import PreparedTicket, prepare_ticket

#: Why a unit was removed, as ``structure`` rows count them.
REASONS = ("no_outgoing", "no_incoming", "folded")


def compact_linear(weight: torch.Tensor, bias: torch.Tensor | None, mask_in: torch.Tensor,
                   mask_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Shrink one hidden fully connected layer (followed by a ReLU) to the neurons that can matter.

    A neuron is kept when at least one of its outgoing weights survives (``mask_out``) **and** it
    can output something other than 0: at least one incoming weight survives (``mask_in``), or its
    bias is positive (then it outputs the constant ``relu(bias)``, which the next layer still reads).

    Args:
        weight: the layer's weight, ``(out, in)``.
        bias: its bias, ``(out,)``, or ``None``.
        mask_in: the layer's own mask, ``(out, in)``: its neurons' incoming weights.
        mask_out: the next layer's mask, ``(next, out)``: its neurons' outgoing weights.

    Returns:
        ``(weight, bias, keep)``: the kept rows of the masked weight (pruned entries exactly 0) and
        of the bias (new tensors), and ``keep``, a boolean tensor of shape ``(out,)``. Cut the next
        layer's columns with the same ``keep``.

    Example:
        >>> weight, bias = torch.ones(3, 2), torch.tensor([0.5, -1.0, 0.0])
        >>> mask_in = torch.tensor([[True, False], [False, False], [False, True]])
        >>> mask_out = torch.tensor([[True, True, False]])
        >>> new_weight, new_bias, keep = compact_linear(weight, bias, mask_in, mask_out)
        >>> keep.tolist(), new_weight.tolist(), new_bias.tolist()
        ([True, False, False], [[1.0, 0.0]], [0.5])
    """
    mask_in, mask_out = mask_in.bool(), mask_out.bool()
    if weight.dim() != 2 or mask_in.shape != weight.shape:
        raise LthkitError(f"mask_in has shape {tuple(mask_in.shape)}; it must be the weight's, {tuple(weight.shape)}")
    if mask_out.dim() != 2 or mask_out.shape[1] != weight.shape[0]:
        raise LthkitError(f"mask_out has shape {tuple(mask_out.shape)}; the next layer reads the {weight.shape[0]} "
                          f"neurons of this one, so it must be (next, {weight.shape[0]})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise LthkitError(f"bias has shape {tuple(bias.shape)}; it must be ({weight.shape[0]},)")
    constant = torch.zeros(weight.shape[0], dtype=torch.bool, device=weight.device) if bias is None else bias > 0
    keep = mask_out.any(0) & (mask_in.any(1) | constant)
    new_weight = (weight * mask_in)[keep]
    return new_weight, None if bias is None else bias[keep].clone(), keep


class CompactNetwork(ChainNetwork):
    """A compact dense network (:func:`compact_network`): a chain of smaller ``Linear`` and ``Conv2d`` layers.

    Attributes:
        masks: the surviving weights of each compact layer, ``{"fc1.weight": bool tensor}`` (so the
            compact network can itself be stored or run sparse without losing a survivor that is 0).
        kept: ``{layer: index tensor}``: which of the original layer's output units each compact
            layer keeps.
        kept_inputs: which of the network's input units (of the first layer) are read.
        structure: one dict per layer (:func:`structure_of`'s rows).
    """

    def __init__(self, steps, layers, select, masks, kept, kept_inputs, structure):
        super().__init__(steps, layers, select)
        self.masks, self.kept, self.kept_inputs, self.structure = masks, kept, kept_inputs, structure


def _act(value: torch.Tensor, between) -> torch.Tensor:
    """What a constant unit outputs after the steps between two layers (ReLU; pooling keeps a constant)."""
    return torch.relu(value) if any(step.kind == "relu" for step in between) else value


def compact_network(model: nn.Module | PreparedTicket, masks=None, input_shape=(1, 28, 28)) -> CompactNetwork:
    """The ticket as a compact dense network: every unit it cannot use removed (see the module's text).

    Args:
        model: the trained network (a chain, :mod:`lthkit.export.chain`), or a prepared
            :class:`~lthkit.export.ticket.PreparedTicket`.
        masks: its masks, as for :func:`~lthkit.export.ticket.prepare_ticket` (a dict, or a ticket
            object with ``.masks``); ignored for a prepared ticket.
        input_shape: one example's input shape.

    Returns:
        A :class:`CompactNetwork` in eval mode, on the network's device: same outputs as the masked
        network up to float rounding (its folded biases are summed in another order).

    Raises:
        LthkitError: as :func:`~lthkit.export.ticket.prepare_ticket`, or when no unit of some layer
            can reach the output.
    """
    ticket = model if isinstance(model, PreparedTicket) else prepare_ticket(model, masks, input_shape)
    chain, layers = ticket.chain, ticket.chain.layers
    kinds = {layer: chain.kind(layer) for layer in layers}
    weights = {layer: ticket.weight(layer).double().clone() for layer in layers}
    biases = {layer: (ticket.bias(layer).double().clone() if ticket.bias(layer) is not None
                      else torch.zeros(weights[layer].shape[0], dtype=torch.float64, device=weights[layer].device))
              for layer in layers}
    masks = {layer: ticket.masks[f"{layer}.weight"].clone() for layer in layers}
    # Units of layer i's output that layer i+1 reads per unit: 1, or a channel's map size across a flatten.
    group = {}
    for this, following in pairwise(layers):
        reads = weights[following].shape[1]
        units = weights[this].shape[0]
        if reads % units:
            raise LthkitError(f"{following} reads {reads} inputs, not a whole number per unit of {this} ({units})")
        group[this] = reads // units
    alive = {layer: torch.ones(weights[layer].shape[0], dtype=torch.bool, device=weights[layer].device)
             for layer in layers}
    reasons = {layer: {reason: 0 for reason in REASONS} for layer in layers}

    def columns(layer, following):  # layer i+1's weights and mask as (out, units of layer i, the rest)
        shape = (weights[following].shape[0], weights[layer].shape[0], -1)
        return weights[following].reshape(shape), masks[following].view(shape)

    def foldable(layer, following) -> bool:
        if kinds[following] == "linear":
            return True
        conv = ticket.model.get_submodule(following)
        return all(pad == 0 for pad in conv.padding)

    changed = True
    while changed:
        changed = False
        for this, following in pairwise(layers):
            weight_next, mask_next = columns(this, following)
            incoming = masks[this].flatten(1).any(1)
            outgoing = mask_next.any(2).any(0)
            stranded = alive[this] & ~outgoing
            if stranded.any():
                alive[this] &= ~stranded
                masks[this][stranded] = False
                reasons[this]["no_outgoing"] += int(stranded.sum())
                changed = True
            constant_units = (alive[this] & ~incoming).nonzero().flatten().tolist()
            between = chain.between(this)
            for unit in constant_units:
                constant = _act(biases[this][unit], between)
                if constant == 0:
                    reasons[this]["no_incoming"] += 1
                elif foldable(this, following):
                    # Each surviving weight reading this unit's (constant) outputs adds weight × constant.
                    biases[following] += (weight_next[:, unit] * mask_next[:, unit]).sum(1) * constant
                    reasons[this]["folded"] += 1
                else:
                    continue  # its constant reaches a padded convolution: it stays
                mask_next[:, unit] = False
                weight_next[:, unit] = 0
                alive[this][unit] = False
                changed = True
    for layer in layers:
        if not masks[layer].any():
            raise LthkitError(f"once the units that no surviving weight connects are removed, {layer} keeps no weight: "
                              "the output no longer depends on the input, so there is nothing left to export")
    first = layers[0]
    kept_inputs = masks[first].transpose(0, 1).flatten(1).any(1)
    # A folded or removed unit's columns are gone from the masks; its weights must not survive in the copy either.
    for layer in layers:
        weights[layer] = weights[layer] * masks[layer]
    new_layers, new_masks, kept, structure = {}, {}, {}, []
    previous = kept_inputs.nonzero().flatten()
    for index, layer in enumerate(layers):
        rows = alive[layer].nonzero().flatten() if index < len(layers) - 1 else \
            torch.arange(weights[layer].shape[0], device=weights[layer].device)
        if index > 0:
            size = group[layers[index - 1]]
            cols = (previous[:, None] * size + torch.arange(size, device=previous.device)).flatten()
        else:
            cols = previous
        original = ticket.model.get_submodule(layer)
        dtype = original.weight.dtype
        weight = weights[layer][rows][:, cols].to(dtype)
        mask = masks[layer][rows][:, cols]
        has_bias = original.bias is not None or bool(biases[layer][rows].ne(0).any())
        if kinds[layer] == "linear":
            module = nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
        else:
            module = nn.Conv2d(weight.shape[1], weight.shape[0], original.kernel_size, original.stride,
                               original.padding, original.dilation, bias=has_bias)
        module = module.to(device=weight.device, dtype=dtype)
        with torch.no_grad():
            module.weight.copy_(weight)
            if has_bias:
                module.bias.copy_(biases[layer][rows].to(dtype))
        module.requires_grad_(False)
        new_layers[layer], new_masks[f"{layer}.weight"], kept[layer] = module, mask, rows
        units = ticket.weight(layer).shape[0]
        structure.append({"layer": layer, "kind": kinds[layer], "units": units, "units_kept": int(rows.numel()),
                          **reasons[layer], "inputs": ticket.weight(layer).shape[1],
                          "inputs_kept": int(weight.shape[1]), "weights": ticket.masks[f"{layer}.weight"].numel(),
                          "survivors": int(ticket.masks[f"{layer}.weight"].sum()), "compact_weights": weight.numel(),
                          "compact_survivors": int(mask.sum())})
        previous = rows
    select = None if bool(kept_inputs.all()) else {first: kept_inputs.nonzero().flatten()}
    return CompactNetwork(chain.steps, new_layers, select, new_masks, kept, kept_inputs.nonzero().flatten(),
                          structure).eval()
