"""Masks kept through a training loop lthkit does not own, with the steps it takes counted.

lthkit's own loop enforces masks in :class:`lthkit.core.train.MaskedStep`: the gradients of the
pruned weights are multiplied by the mask before the optimizer step, the weights after it. A
user's training function builds its own optimizer and steps it itself, so :class:`MaskEnforcer`
applies the same two rules from outside, through public torch hooks:

1. a gradient hook on every masked parameter (``Tensor.register_hook``) multiplies its gradient by
   the mask as autograd produces it, so every consumer of the gradient (any optimizer, gradient
   clipping, a hand-written update) sees zero for a pruned weight: SGD's momentum buffers and
   Adam's moments of pruned weights stay zero;
2. a global optimizer step post-hook (``torch.optim.optimizer.register_optimizer_step_post_hook``)
   multiplies the masked parameters by their masks after every step of any optimizer that holds
   one of the model's parameters, so nothing (decoupled weight decay, an optimizer state carried
   over from before the pruning) revives a pruned weight.

Masking only in ``forward`` would not be enough (the optimizer would keep moving the pruned
weights); masking only the gradients would not either (AdamW's decay and stale moments still
move them). The enforcer also counts those optimizer steps (an *iteration* is one step) and
captures the model's real parameters and buffers (its ``state_dict``) after the steps it is asked
for: θ_k, the weights a rewound ticket starts from.

Example:
    >>> from torch import nn
    >>> model = nn.Linear(3, 1, bias=False)
    >>> mask = {"weight": torch.tensor([[True, False, True]])}
    >>> with MaskEnforcer(model, mask, snapshot_at={1}) as enforcer:
    ...     optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    ...     for _ in range(3):
    ...         model(torch.ones(4, 3)).sum().backward()
    ...         optimizer.step()
    ...         optimizer.zero_grad()
    >>> enforcer.steps, model.weight[0, 1].item() == 0, sorted(enforcer.snapshots)
    (3, True, [1])
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from ..errors import LthkitError


def state_on_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model.state_dict()`` (its real parameters and buffers)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


class MaskEnforcer:
    """Keep ``masks`` on ``model`` through any training loop, count its optimizer steps, capture θ_k.

    Use it as a context manager around the loop. On entry the pruned weights are set to zero and
    the hooks are registered (the optimizer may be built inside the block or before it); on exit
    the hooks are removed. Only the optimizer steps that touch one of ``model``'s parameters are
    counted and enforced.

    Args:
        model: the network being trained (its parameters are masked in place).
        masks: ``{parameter name: bool tensor of its shape}``; ``True`` keeps a weight.
        snapshot_at: optimizer-step counts after which to copy ``model.state_dict()`` to the CPU
            (``0``: on entry); kept in :attr:`snapshots`.

    Attributes:
        steps: optimizer steps taken so far inside the block.
        snapshots: ``{step: state dict}`` for each step of ``snapshot_at`` reached.

    Raises:
        LthkitError: a mask names no parameter of ``model``, is not boolean, or has another shape.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor], *, snapshot_at=()):
        parameters = dict(model.named_parameters())
        for name, mask in masks.items():
            if name not in parameters:
                raise LthkitError(f"the mask {name!r} names no parameter of the model")
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise LthkitError(f"the mask of {name} must be a bool tensor, got "
                                  f"{mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__}")
            if tuple(mask.shape) != tuple(parameters[name].shape):
                raise LthkitError(f"the mask of {name} has shape {tuple(mask.shape)}, the parameter "
                                  f"{tuple(parameters[name].shape)}")
        self.model = model
        self.names = list(masks)
        self.masks = {name: mask.detach() for name, mask in masks.items()}
        self.parameters = [parameters[name] for name in self.names]
        self.snapshot_at = set(snapshot_at)
        self.steps = 0
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self._values: dict[tuple, torch.Tensor] = {}  # the masks as multipliers, per (name, device, dtype)
        self._handles: list = []
        self._ids: set[int] = set()

    def _multiplier(self, name: str, like: torch.Tensor) -> torch.Tensor:
        key = (name, like.device, like.dtype)
        if key not in self._values:
            self._values[key] = self.masks[name].to(device=like.device, dtype=like.dtype)
        return self._values[key]

    @torch.no_grad()
    def _mask_weights(self) -> None:
        for name, parameter in zip(self.names, self.parameters):
            parameter.mul_(self._multiplier(name, parameter))

    def _gradient_hook(self, name: str):
        def mask_gradient(gradient: torch.Tensor) -> torch.Tensor:
            return gradient * self._multiplier(name, gradient)
        return mask_gradient

    def _after_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        if not any(id(p) in self._ids for group in optimizer.param_groups for p in group["params"]):
            return  # another network's optimizer
        self._mask_weights()
        self.steps += 1
        if self.steps in self.snapshot_at:
            self.snapshots[self.steps] = state_on_cpu(self.model)

    def __enter__(self) -> "MaskEnforcer":
        self._mask_weights()
        self._ids = {id(p) for p in self.model.parameters()}
        for name, parameter in zip(self.names, self.parameters):
            if parameter.requires_grad:
                self._handles.append(parameter.register_hook(self._gradient_hook(name)))
        self._handles.append(register_optimizer_step_post_hook(self._after_step))
        if 0 in self.snapshot_at:
            self.snapshots[0] = state_on_cpu(self.model)
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def revived(self) -> str | None:
        """The name of the first masked parameter with a nonzero pruned weight, or ``None`` if every one is zero."""
        with torch.no_grad():
            for name, parameter in zip(self.names, self.parameters):
                pruned = ~self.masks[name].to(parameter.device)
                if bool((parameter[pruned] != 0).any()):
                    return name
        return None
