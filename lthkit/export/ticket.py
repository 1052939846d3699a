"""A ticket as the exports take it: a network with its trained weights, and its masks, checked.

Every export starts from :func:`prepare_ticket`: the network (any ``nn.Module`` that is a chain,
:mod:`lthkit.export.chain`) and its masks: a ``dict`` from weight name (``"fc1.weight"``,
``"features.0.weight"``) to a boolean tensor of the weight's shape, or anything with such a dict
as ``.masks`` (a winning ticket object), or nothing, when the network itself carries its masks
under ``torch.nn.utils.prune``. A layer the masks do not name is kept whole.

The result holds a copy of the network with every pruned weight exactly zero (the **masked dense
network**: what an lthkit ticket is, and what every export is checked against), its masks and its
chain. Exports are for inference: a BatchNorm right after a layer is folded into that layer with its
running statistics (:func:`fold_batchnorm_`; its mask still holds), checked on an example. The
network given is never changed.

Example:
    >>> from lthkit.core.models import build_model
    >>> from lthkit.core.masks import full_masks
    >>> model = build_model("lenet300_100")
    >>> masks = full_masks(model)
    >>> masks["fc1.weight"][:, :392] = False
    >>> ticket = prepare_ticket(model, masks)
    >>> bool(ticket.model.fc1.weight[:, :392].eq(0).all()), round(ticket.density, 3)
    (True, 0.558)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import prune

from ..core.masks import Masks, density
from ..errors import LthkitError
from .chain import Chain, trace_chain


@dataclass
class PreparedTicket:
    """A network ready to export.

    Attributes:
        model: a copy of the network in eval mode, plain parameters (no pruning hooks), every pruned
            weight exactly zero, gradients off: the masked dense network.
        masks: one boolean mask per layer of the chain, ``True`` where a weight survives.
        chain: the network's :class:`~lthkit.export.chain.Chain`.
        folded: the BatchNorm modules folded into the layers before them (:func:`fold_batchnorm_`).
        unfolded: where something was folded, the masked network as it was (its BatchNorm kept).
    """

    model: nn.Module
    masks: Masks
    chain: Chain
    folded: list = field(default_factory=list)
    unfolded: nn.Module | None = field(default=None, repr=False)

    def state_dict(self) -> dict:
        """The masked network's weights as the network itself names them (a folded BatchNorm not folded): what a file
        of the ticket stores, for ``model.load_state_dict``."""
        return (self.unfolded if self.unfolded is not None else self.model).state_dict()

    @property
    def density(self) -> float:
        """The fraction of the layers' weights that survive."""
        return density(self.masks)

    def weight(self, layer: str) -> torch.Tensor:
        """The masked weight of ``layer``."""
        return self.model.get_submodule(layer).weight.detach()

    def bias(self, layer: str) -> torch.Tensor | None:
        """The bias of ``layer`` (``None`` when it has none)."""
        bias = self.model.get_submodule(layer).bias
        return None if bias is None else bias.detach()


def masks_of(masks) -> Mapping | None:
    """The mask dict of ``masks``: a mapping as it is, or the ``.masks`` of a ticket object, or ``None``.

    Raises:
        LthkitError: ``masks`` is neither.
    """
    if masks is None or isinstance(masks, Mapping):
        return masks
    found = getattr(masks, "masks", None)
    if isinstance(found, Mapping):
        return found
    raise LthkitError(f"masks must be a dict from weight name to a boolean tensor, or a ticket with such a dict as "
                      f".masks; got a {type(masks).__name__}")


def _plain_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every ``torch.nn.utils.prune`` reparametrization made permanent."""
    # Under torch.nn.utils.prune a layer's `weight` is a computed (non-leaf) tensor, which deepcopy refuses: copy its
    # value instead (prune.remove below replaces it with weight_orig * weight_mask anyway).
    memo = {id(value): value.detach().clone() for module in model.modules() for value in vars(module).values()
            if isinstance(value, torch.Tensor) and not value.is_leaf}
    copied = copy.deepcopy(model, memo)
    for module in copied.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return copied


_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def fold_batchnorm_(model: nn.Module) -> list[str]:
    """Fold every BatchNorm that directly follows a ``Linear`` or ``Conv2d`` into that layer, in place (eval mode).

    With the running statistics, BatchNorm is an affine map per unit, ``y = s·x + t`` with
    ``s = γ / √(var + ε)`` and ``t = β − mean·s``; it is folded into the layer before it
    (``W ← s·W`` row by row, ``b ← s·b + t``) and replaced by ``nn.Identity``. A row scaled by ``s``
    keeps its zeros, so the layer's mask still holds.

    Returns:
        The folded BatchNorm modules' names.

    Raises:
        LthkitError: a BatchNorm that follows no such layer directly, or one without running statistics.
    """
    if not any(isinstance(module, _BATCHNORMS) for module in model.modules()):
        return []
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - trace_chain reports a forward it cannot follow
        return []
    modules, folded = dict(model.named_modules()), []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], _BATCHNORMS):
            continue
        norm = modules[node.target]
        source = node.args[0] if node.args else None
        layer = modules.get(source.target) if isinstance(source, torch.fx.Node) and source.op == "call_module" else None
        if not isinstance(layer, (nn.Linear, nn.Conv2d)) or len(source.users) != 1:
            raise LthkitError(f"{node.target} is a BatchNorm that does not directly follow a Linear or Conv2d layer; the "
                              "exports fold BatchNorm into the layer before it, so it must come right after one")
        if norm.running_mean is None or norm.running_var is None:
            raise LthkitError(f"{node.target} keeps no running statistics (track_running_stats=False), so it cannot be "
                              f"folded into {source.target} for inference")
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale + (norm.bias if norm.bias is not None else 0)
        layer.weight.mul_(scale.view(-1, *([1] * (layer.weight.dim() - 1))))
        if layer.bias is None:
            layer.bias = nn.Parameter(shift.clone(), requires_grad=False)
        else:
            layer.bias.mul_(scale).add_(shift)
        parent, _, child = node.target.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, nn.Identity())
        folded.append(node.target)
    return folded


def _as_bool(mask: torch.Tensor, name: str) -> torch.Tensor:
    if mask.dtype == torch.bool:
        return mask
    if mask.is_floating_point() or mask.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        if bool(((mask == 0) | (mask == 1)).all()):
            return mask != 0
    raise LthkitError(f"masks[{name!r}] is a {str(mask.dtype).replace('torch.', '')} tensor with values other than 0 "
                      "and 1; a mask is a boolean tensor, True where a weight survives")


def prepare_ticket(model: nn.Module, masks=None, input_shape=(1, 28, 28)) -> PreparedTicket:
    """Check a network and its masks against each other and make the masked dense copy every export starts from.

    Args:
        model: the network with its trained weights (not changed).
        masks: ``{weight name: bool tensor}``, or an object with such a dict as ``.masks``, or ``None``
            to read the masks of a network under ``torch.nn.utils.prune``. Tensors of 0 and 1 are
            read as booleans. Layers not named are kept whole.
        input_shape: one example's input shape (MNIST: ``(1, 28, 28)``).

    Returns:
        A :class:`PreparedTicket`.

    Raises:
        LthkitError: the network is not a chain the exports support; a mask names no layer of it,
            has another shape than its weight, or is not boolean; or nothing is left (no weight
            survives, or none of some layer's, so that no input reaches the output).
    """
    masks = masks_of(masks)
    if not isinstance(model, nn.Module):
        raise LthkitError(f"model must be a torch.nn.Module, got a {type(model).__name__}")
    plain = _plain_copy(model).eval()
    for parameter in plain.parameters():
        parameter.requires_grad_(False)
    unfolded = copy.deepcopy(plain) if any(isinstance(module, _BATCHNORMS) for module in plain.modules()) else None
    folded = fold_batchnorm_(plain)
    chain = trace_chain(plain, input_shape)
    weights = {f"{layer}.weight": plain.get_submodule(layer).weight for layer in chain.layers}
    if masks is None:
        pruned = {f"{name}.weight": module.weight_mask for name, module in model.named_modules()
                  if isinstance(getattr(module, "weight_mask", None), torch.Tensor)}
        if not pruned:
            raise LthkitError(f"no masks given, and {type(model).__name__} carries none (no torch.nn.utils.prune "
                              "weight_mask); give the ticket's masks")
        masks = pruned
    if not masks:
        raise LthkitError("masks is empty: name at least one pruned weight")
    unknown = [name for name in masks if name not in weights]
    if unknown:
        raise LthkitError(f"masks name {', '.join(map(str, unknown[:3]))}, which {'is' if len(unknown) == 1 else 'are'} "
                          f"not a layer weight of {type(model).__name__} (its weights: {', '.join(weights)})")
    checked = {}
    for name, weight in weights.items():
        mask = masks.get(name)
        if mask is None:
            checked[name] = torch.ones_like(weight, dtype=torch.bool)
            continue
        if not isinstance(mask, torch.Tensor):
            raise LthkitError(f"masks[{name!r}] must be a tensor, got a {type(mask).__name__}")
        if tuple(mask.shape) != tuple(weight.shape):
            raise LthkitError(f"masks[{name!r}] has shape {tuple(mask.shape)}, but {type(model).__name__}'s {name} has "
                              f"{tuple(weight.shape)}: the masks are not this network's")
        checked[name] = _as_bool(mask.detach(), name).to(weight.device).clone()
    if not any(bool(mask.any()) for mask in checked.values()):
        raise LthkitError("the masks keep no weight at all (density 0): there is nothing left to export")
    for name, mask in checked.items():
        if not bool(mask.any()):
            raise LthkitError(f"the masks keep none of {name}'s {mask.numel():,} weights, so no input reaches the "
                              "output: there is nothing left to export")
    with torch.no_grad():
        for name, weight in weights.items():
            weight.mul_(checked[name].to(weight.dtype))
        if folded:  # the folded network must compute what the network with its BatchNorm computes
            for name, mask in checked.items():
                original = unfolded.get_parameter(name)
                original.mul_(mask.to(original.dtype))
            example = torch.randn((8, *chain.input_shape), generator=torch.Generator().manual_seed(1))
            example = example.to(next(plain.parameters()))
            if not torch.allclose(plain(example), unfolded(example), rtol=1e-4, atol=1e-5):
                raise LthkitError(f"folding {', '.join(folded)} into the layers before them changed the outputs")
    return PreparedTicket(plain, checked, chain, folded, unfolded if folded else None)
