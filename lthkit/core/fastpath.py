"""The fast path: two hand-written pieces of a training step that call private torch APIs.

:mod:`lthkit.core.train` is the masked training loop a learner reads; this module is the performance
layer under it, behind one switch (:data:`ENABLED`). With the switch off, or on a torch version
outside :data:`TESTED_TORCH`, training goes through the public APIs only (autograd and
``optimizer.step()``), with bit-for-bit the same result: that is this module's contract, checked
by ``tests/test_train.py`` (whole training runs against a textbook loop and against the switch
off) and ``tests/test_fastpath.py``.

* :class:`LeNetPass`: LeNet-300-100's forward and backward pass as the ATen calls autograd
  makes, without the autograd engine (it reads ``torch.nn.modules.module``'s global hooks to
  know that nothing would notice);
* :class:`FusedAdamStep`: after the first step, the fused Adam kernel
  (``torch._fused_adam_``) on the optimizer's own state, without ``Adam.step``'s per-step Python
  bookkeeping.

``benchmarks/fastpath.py`` measures each against its public replacement
(``torch.optim.Adam(fused=True)``'s own ``step``, ``torch.compile`` of the step); the figures
and the decision to keep each are in ``benchmarks/README.md``.

Example (public APIs only from here on, with the same numbers):
    >>> import lthkit.core.fastpath
    >>> lthkit.core.fastpath.ENABLED = False  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as module_hooks
from torch.optim import optimizer as optimizer_module

from .. import settings
from .models import LeNet300100

#: torch versions (major.minor) on which the fast path is tested bit-for-bit; on any other it is
#: off, and training uses autograd and ``optimizer.step()``.
TESTED_TORCH = ("2.13",)


def is_tested_torch(version: str) -> bool:
    """Whether a torch version string (``"2.13.0+cu130"``) is one the fast path is tested on.

    Example:
        >>> is_tested_torch("2.13.0+cu130"), is_tested_torch("2.14.1")
        (True, False)
    """
    return ".".join(version.split("+")[0].split(".")[:2]) in TESTED_TORCH


#: The switch: on unless ``LTHKIT_FASTPATH=0``, and only on a tested torch version.
ENABLED = settings.flag("LTHKIT_FASTPATH", default=True) and \
    is_tested_torch(torch.__version__)


def lenet_pass(model: nn.Module):
    """``pass(images, labels)`` for ``model`` through :class:`LeNetPass`, or ``None`` where it does not apply."""
    return LeNetPass(model) if ENABLED and LeNetPass.supports(model) else None


def fused_adam_step(optimizer: torch.optim.Optimizer, *, create_state: bool = False):
    """A :class:`FusedAdamStep` for ``optimizer``, or ``None`` where it does not apply.

    Without ``create_state`` the optimizer's state must exist (after its first ``step()``). With
    it, a plain fused Adam whose state is still empty gets the state its first ``step()`` would
    create (:meth:`FusedAdamStep.create_state`), so that even the first step goes through the
    kernel directly and ``optimizer.step()``, whose first call imports ``torch._dynamo`` (about a
    second of start-up), never runs.
    """
    if not ENABLED:
        return None
    if create_state:
        FusedAdamStep.create_state(optimizer)
    return FusedAdamStep.of(optimizer)


class LeNetPass:
    """LeNet-300-100's forward and backward pass written out: the ATen calls autograd makes, without autograd.

    For ``F.cross_entropy(model(x), y).backward()`` on a :class:`~lthkit.core.models.LeNet300100`
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


class FusedAdamStep:
    """The fused Adam kernel that :meth:`torch.optim.Adam.step` calls, called directly on the optimizer's state.

    Only for a single-group fused Adam (the paper's optimizer, as :func:`lthkit.core.train.make_optimizer`
    builds it) without amsgrad, maximize, capturable, differentiable, tensor learning rates or grad
    scaling, and only once the first ``optimizer.step()`` has created the state (:meth:`of`). The
    result is bit-for-bit that of ``optimizer.step()``.

    Example:
        >>> optimizer.step(); direct = FusedAdamStep.of(optimizer)  # doctest: +SKIP
        >>> direct(params, [p.grad for p in params])  # doctest: +SKIP
    """

    def __init__(self, kernel, exp_avgs, exp_avg_sqs, steps, options):
        self.kernel, self.exp_avgs, self.exp_avg_sqs, self.steps, self.options = \
            kernel, exp_avgs, exp_avg_sqs, steps, options

    @staticmethod
    def _plain(optimizer: torch.optim.Optimizer) -> bool:
        """A single-group fused Adam with none of the options the direct step leaves out."""
        if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
            return False
        # The direct step would skip optimizer hooks (lthkit.core.enforce keeps masks through them).
        if any(getattr(optimizer_module, name, None) for name in (
                "_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")) or \
                getattr(optimizer, "_optimizer_step_pre_hooks", None) or \
                getattr(optimizer, "_optimizer_step_post_hooks", None):
            return False
        group = optimizer.param_groups[0]
        return bool(group.get("fused") and not group.get("amsgrad") and not group.get("maximize")
                    and not group.get("capturable") and not group.get("differentiable")
                    and not torch.is_tensor(group["lr"]) and getattr(optimizer, "grad_scale", None) is None
                    and getattr(optimizer, "found_inf", None) is None)

    @classmethod
    def create_state(cls, optimizer: torch.optim.Optimizer) -> bool:
        """Give a plain fused Adam with no state yet the state its first ``step()`` creates.

        Exactly what ``torch.optim.Adam._init_group`` makes for a fused Adam: ``step`` a float32
        zero on the parameter's device, ``exp_avg`` and ``exp_avg_sq`` zeros like the parameter.

        Returns:
            Whether the state was created (``False``: not a plain fused Adam, or state exists).
        """
        if not cls._plain(optimizer):
            return False
        params = optimizer.param_groups[0]["params"]
        if any(optimizer.state.get(p) for p in params):
            return False
        for p in params:
            optimizer.state[p] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return True

    @classmethod
    def of(cls, optimizer: torch.optim.Optimizer) -> "FusedAdamStep | None":
        """The direct step of ``optimizer``, or ``None`` where ``optimizer.step()`` must run."""
        if not cls._plain(optimizer):
            return None
        group = optimizer.param_groups[0]
        kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
        states = [optimizer.state.get(p, {}) for p in group["params"]]
        if not all({"step", "exp_avg", "exp_avg_sq"} <= set(state) for state in states):
            return None
        beta1, beta2 = group["betas"]
        options = dict(amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                       eps=group["eps"], maximize=False)
        return cls(kernel, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                   [s["step"] for s in states], options)

    def __call__(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        torch._foreach_add_(self.steps, 1)
        self.kernel(params, grads, self.exp_avgs, self.exp_avg_sqs, [], self.steps, **self.options)
