"""The reference solution of the one-step lottery-ticket kata (ML-Katas).

The exercise: given a trained ``model`` and a deep copy of its weights at initialization
(``initial_state_dict``, θ₀), perform one step of iterative magnitude pruning with
:mod:`torch.nn.utils.prune`:

1. prune ``prune_amount`` of the still-surviving weights of *every* Linear and Conv2d layer,
   ranked together by magnitude (one global threshold: ``prune.global_unstructured`` with
   ``prune.L1Unstructured``); biases are not pruned;
2. reset the survivors to θ₀ by writing θ₀ into ``weight_orig`` (writing ``weight`` would be
   overwritten by the pruning hook at the next forward pass).

Calling it again prunes ``prune_amount`` of what is left, so the pruned fraction compounds:
0.2 → 0.36 → 0.488.

At the end of the module, separate from it, are the reference solutions of the other graded katas
(:mod:`lthkit.grading.katas`): :func:`global_magnitude_mask` (notebook 2),
:func:`rewind_to_init` (notebook 4), :func:`interpolate` and :func:`error_barrier`
(notebook 6, re-exported by :mod:`lthkit.stability`), then :func:`snip_scores` and
:func:`sign_constant_reinit` (notebook 7).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import prune

from . import LthkitError
from .masks import prunable_layers


def _check_module(model) -> None:
    if not isinstance(model, nn.Module):
        raise LthkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _check_tensor(where: str, value, shape: tuple, what: str) -> None:
    """``value`` must be a real tensor of ``shape``; the message says which entry and why not."""
    if not isinstance(value, torch.Tensor):
        raise LthkitError(f"{where} is a {type(value).__name__}, not a tensor")
    if tuple(value.shape) != tuple(shape):
        raise LthkitError(f"{where} has shape {tuple(value.shape)}, {what} has {tuple(shape)}")
    if value.is_complex():
        raise LthkitError(f"{where} is a complex tensor ({value.dtype}); {what} is real")


def _plain_parameter_name(name: str) -> str:
    """``fc1.weight_orig`` (a parameter under torch.nn.utils.prune) is ``fc1.weight`` in θ₀."""
    return name[:-len("_orig")] if name.endswith("_orig") else name


def _check_initial_state(model: nn.Module, initial_state_dict) -> None:
    """Every prunable weight needs a θ₀ tensor of its shape, and every other entry that names a
    parameter (a bias) must fit it too; name the first that does not. Checked before anything is
    changed, so a rejected call leaves the model as it was."""
    if not isinstance(initial_state_dict, dict):
        raise LthkitError(f"initial_state_dict must be a dict of tensors, got {type(initial_state_dict).__name__}")
    for name, module in prunable_layers(model).items():
        key = f"{name}.weight"
        weight = module.weight_orig if hasattr(module, "weight_orig") else module.weight
        if key not in initial_state_dict:
            hint = (" (it looks like the state_dict of a pruned model: take θ₀ before training and pruning)"
                    if f"{key}_orig" in initial_state_dict else "")
            raise LthkitError(f"initial_state_dict has no entry {key!r}{hint}")
        _check_tensor(f"initial_state_dict[{key!r}]", initial_state_dict[key], weight.shape, "the model's weight")
    for name, parameter in model.named_parameters():
        key = _plain_parameter_name(name)
        if key in initial_state_dict:
            _check_tensor(f"initial_state_dict[{key!r}]", initial_state_dict[key], parameter.shape,
                          f"the model's {key.rsplit('.', 1)[-1]}")


def find_winning_ticket_step(model: nn.Module, initial_state_dict: dict, prune_amount: float = 0.2) -> nn.Module:
    """One IMP step: globally prune the smallest trained weights, then rewind survivors to θ₀.

    Args:
        model: a trained network; its Linear and Conv2d weights are pruned in place (through
            ``torch.nn.utils.prune``: ``weight_orig``, ``weight_mask`` and a forward pre-hook).
            It may already be pruned by an earlier call.
        initial_state_dict: θ₀, as ``copy.deepcopy(model.state_dict())`` taken before training
            and before any pruning (keys like ``"fc1.weight"``). It is only read, never changed.
        prune_amount: fraction of the *remaining* weights to prune, in [0, 1).

    Returns:
        ``model``: survivors hold their θ₀ values in ``weight_orig`` and ``module.weight`` is
        already θ₀ ⊙ mask. Other parameters found in ``initial_state_dict`` (biases) are reset to
        θ₀ as well, so the whole network restarts from its original initialization.

    Example:
        >>> theta0 = copy.deepcopy(model.state_dict())  # doctest: +SKIP
        >>> train(model)                                 # doctest: +SKIP
        >>> find_winning_ticket_step(model, theta0, 0.2) # 20% of the weights pruned  # doctest: +SKIP
        >>> find_winning_ticket_step(model, theta0, 0.2) # 36% pruned                 # doctest: +SKIP
    """
    if isinstance(prune_amount, bool) or not isinstance(prune_amount, (int, float)) or math.isnan(prune_amount) \
            or not 0 <= prune_amount < 1:
        raise LthkitError(f"prune_amount must be a number in [0, 1), got {prune_amount!r}")
    _check_module(model)
    layers = prunable_layers(model)
    _check_initial_state(model, initial_state_dict)  # everything is checked before the model is touched

    prune.global_unstructured([(module, "weight") for module in layers.values()],
                              pruning_method=prune.L1Unstructured, amount=float(prune_amount))

    with torch.no_grad():
        for name, module in layers.items():
            module.weight_orig.copy_(initial_state_dict[f"{name}.weight"])
            # The hook recomputes this at the next forward; doing it now keeps `weight` honest.
            module.weight = module.weight_orig * module.weight_mask
        for name, parameter in model.named_parameters():
            if not name.endswith("weight_orig") and name in initial_state_dict:
                parameter.copy_(initial_state_dict[name])
    return model


# ---------------------------------------------------------------------------------------------------
# Reference solutions of the other graded katas (see lthkit.grading.katas). They are separate from
# find_winning_ticket_step above and share only the input checks' one-line errors.


def global_magnitude_mask(weights: dict, masks: dict, amount: float) -> dict:
    """Prune ``amount`` of the surviving weights with one magnitude threshold across all layers.

    The exercise of notebook 2, done by hand (no ``torch.nn.utils.prune``): every weight still
    alive (``masks`` True) in every layer is ranked together by ``|w|``, and the
    ``round(amount * surviving)`` smallest are pruned. Weights already pruned stay pruned,
    whatever value ``weights`` holds for them. This is :func:`lthkit.masks.magnitude_masks` with
    ``scope="global"``.

    Args:
        weights: the trained weights, by weight name (``{"fc1.weight": tensor, ...}``).
        masks: the current bool masks, same names and shapes (True = alive).
        amount: fraction of the surviving weights to prune, in [0, 1).

    Returns:
        New bool masks; ``weights`` and ``masks`` are left unchanged.

    Example:
        >>> w = {"a": torch.tensor([0.1, -0.5, 0.3, 2.0]), "b": torch.tensor([-0.2, 1.0])}
        >>> alive = {name: torch.ones_like(value, dtype=torch.bool) for name, value in w.items()}
        >>> new = global_magnitude_mask(w, alive, 0.5)
        >>> new["a"].tolist(), new["b"].tolist()
        ([False, True, False, True], [False, True])
    """
    from .masks import check_fraction, magnitude_masks

    amount = check_fraction(amount, "amount")
    if not isinstance(weights, dict) or not isinstance(masks, dict):
        raise LthkitError("weights and masks must be dicts of tensors keyed by weight name")
    bool_masks = {}
    for name, mask in masks.items():
        if not isinstance(mask, torch.Tensor):
            raise LthkitError(f"masks[{name!r}] is a {type(mask).__name__}, not a tensor")
        bool_masks[name] = mask != 0
    return magnitude_masks(weights, bool_masks, amount, scope="global")


def _check_rewind_arguments(model, initial_state_dict, masks, *, plain_names: bool = False) -> None:
    """``model`` a module, ``initial_state_dict`` one tensor of the right shape per parameter, ``masks``
    tensors of their parameters' shapes (with ``plain_names``, ``<name>_orig`` counts as ``<name>``)."""
    _check_module(model)
    if not isinstance(initial_state_dict, dict) or not isinstance(masks, dict):
        raise LthkitError("initial_state_dict and masks must be dicts of tensors keyed by parameter name")
    shapes = {(_plain_parameter_name(name) if plain_names else name): tuple(parameter.shape)
              for name, parameter in model.named_parameters()}
    for name in masks:
        if name not in shapes:
            raise LthkitError(f"masks has an entry {name!r}, which is not a parameter of the model")
        _check_tensor(f"masks[{name!r}]", masks[name], shapes[name], "the parameter")
    for name, shape in shapes.items():
        if name not in initial_state_dict:
            raise LthkitError(f"initial_state_dict[{name!r}] is missing; the parameter has shape {shape}")
        _check_tensor(f"initial_state_dict[{name!r}]", initial_state_dict[name], shape, "the parameter")


def rewind_to_init(model: nn.Module, initial_state_dict: dict, masks: dict) -> nn.Module:
    """Set a pruned network back to its initialization: θ₀ ⊙ mask for masked weights, θ₀ elsewhere.

    The exercise of notebook 4: rewinding a ticket without ``torch.nn.utils.prune`` hooks. Every
    parameter is written *in place* (the same ``nn.Parameter`` objects, so an optimizer built on
    them keeps working): a weight named in ``masks`` gets ``θ₀ * mask``, every other parameter
    (biases) gets θ₀. A model still carrying pruning hooks has them removed first, so the result is
    always a plain model.

    Args:
        model: the network (modified in place).
        initial_state_dict: θ₀, as ``copy.deepcopy(model.state_dict())`` before training; only read.
        masks: bool masks by weight name (``"fc1.weight"``), True = alive; only read.

    Returns:
        ``model``.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> theta0 = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
        >>> mask = {"weight": torch.tensor([[True, False, True], [False, True, True]])}
        >>> rewind_to_init(model, theta0, mask).weight.tolist()
        [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    """
    # Under torch.nn.utils.prune a weight is the parameter "<name>_orig": check against the plain names.
    _check_rewind_arguments(model, initial_state_dict, masks, plain_names=True)
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            value = initial_state_dict[name]
            if name in masks:
                value = value * (masks[name] != 0).to(value.dtype)
            parameter.copy_(value)
    return model


def interpolate(state_a: dict, state_b: dict, alpha: float, masks: Masks | None = None) -> dict:
    """The point ``(1 − alpha) · state_a + alpha · state_b`` of the linear path between two networks.

    Every floating-point tensor of the state dicts is interpolated, biases included; a tensor
    named in ``masks`` is multiplied by its mask, so pruned weights are exactly zero at every α
    (even where the states hold something else there). Other tensors (integer buffers) are taken
    from ``state_a``. At ``alpha = 0`` and ``1`` the result equals the endpoint exactly (masked).
    Neither input is changed.

    Args:
        state_a: the first network's ``state_dict`` (α = 0).
        state_b: the second's, with the same names and shapes (α = 1).
        alpha: where on the path, a number in [0, 1].
        masks: ``{weight name: bool tensor}``, True where a weight survives (``None``: dense).

    Returns:
        A new state dict (fresh tensors), in ``state_a``'s order.

    Raises:
        LthkitError: the two states do not match, or ``alpha`` is not in [0, 1].

    Example:
        >>> a, b = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
        >>> interpolate(a, b, 0.25)["w"]
        tensor([0.2500, 0.2500])
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise LthkitError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if list(state_a) != list(state_b):
        raise LthkitError("the two states name different tensors: "
                          f"{sorted(set(state_a) ^ set(state_b))[:4]} are in one only")
    masks = masks or {}
    unknown = [name for name in masks if name not in state_a]
    if unknown:
        raise LthkitError(f"masks name tensors the states do not have: {unknown[:4]}")
    point = {}
    for name, a in state_a.items():
        b = state_b[name]
        if a.shape != b.shape:
            raise LthkitError(f"{name} has shape {tuple(a.shape)} in one state and {tuple(b.shape)} in the other")
        if not a.is_floating_point():
            point[name] = a.clone()
            continue
        value = torch.lerp(a.detach(), b.detach().to(a.dtype), float(alpha))  # exact at both endpoints
        if name in masks:
            value = value * (masks[name] != 0).to(device=value.device, dtype=value.dtype)
        point[name] = value
    return point


def error_barrier(errors) -> float:
    """The instability of a path: its highest error minus the mean of its two endpoints' errors.

    Args:
        errors: the errors along the path, at evenly spaced α, the endpoints first and last.

    Returns:
        ``max(errors) − (errors[0] + errors[-1]) / 2``: never negative (the maximum is at least the
        higher endpoint); for two equally good endpoints, how far the path rises above them; a
        straight path between unequal endpoints scores half their difference.

    Example:
        >>> round(error_barrier([0.02, 0.021, 0.03, 0.02]), 6)
        0.01
        >>> error_barrier([0.03, 0.03, 0.03])
        0.0
    """
    errors = [float(e) for e in errors]
    if len(errors) < 2:
        raise LthkitError(f"a path needs at least its two endpoints' errors, got {len(errors)}")
    if any(math.isnan(e) for e in errors):
        return math.nan
    return max(errors) - (errors[0] + errors[-1]) / 2
# ---------------------------------------------------------------------------------------------------
# Notebook 7 (ticket anatomy): SNIP's scores and Zhou et al.'s signed-constant reset.


def snip_scores(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """SNIP's connection sensitivity ``|∂L/∂w ⊙ w|`` of every Linear and Conv2d weight, on one batch.

    ``L`` is the mean cross-entropy of ``model(inputs)`` against ``targets``; biases get no score.
    The model's weights are not changed (no optimizer step; its ``.grad`` fields are left alone).

    Args:
        model: the network at θ₀.
        inputs, targets: one batch of images and their labels.

    Returns:
        ``{parameter name: scores}`` for every prunable weight (``"fc1.weight"``), each of the
        weight's shape, non-negative.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> _ = net.load_state_dict({"0.weight": torch.tensor([[1.0, -1.0], [0.5, 2.0]]), "0.bias": torch.zeros(2)})
        >>> scores = snip_scores(net, torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
        >>> list(scores), [[round(v, 4) for v in row] for row in scores["0.weight"].tolist()]
        (['0.weight'], [[0.3775, 0.0], [0.1888, 0.0]])
    """
    _check_module(model)
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise LthkitError("inputs and targets must be tensors (one batch)")
    layers = prunable_layers(model)
    weights = {f"{name}.weight": module.weight for name, module in layers.items()}
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {name: (grad * weight).detach().abs() for (name, weight), grad in zip(weights.items(), grads)}


def sign_constant_reinit(model: nn.Module, initial_state_dict: dict, masks: dict) -> nn.Module:
    """Reset survivors to ``sign(θ₀) × σ``, σ the standard deviation of the layer's θ₀; pruned weights to zero.

    Zhou et al.'s signed-constant reset: the magnitudes of θ₀ are forgotten, its signs kept. Every
    weight named in ``masks`` becomes ``sign(θ₀) * θ₀[name].std() * mask`` (the constant is taken
    over the whole layer's θ₀, never over the trained weights); every other parameter goes back to
    θ₀. In place, on the same ``nn.Parameter`` objects.

    Args:
        model: the network (modified in place).
        initial_state_dict: θ₀; only read.
        masks: bool masks by weight name, True = alive; only read.

    Returns:
        ``model``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> theta0 = {"0.weight": torch.tensor([[1.0, -3.0], [2.0, 0.5]]), "0.bias": torch.zeros(2)}
        >>> masks = {"0.weight": torch.tensor([[True, True], [False, True]])}
        >>> [[round(v, 3) for v in row] for row in sign_constant_reinit(net, theta0, masks)[0].weight.tolist()]
        [[2.175, -2.175], [0.0, 2.175]]
    """
    _check_rewind_arguments(model, initial_state_dict, masks)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                constant = initial.double().std().item()
                parameter.copy_(initial.sign() * constant * (masks[name] != 0).to(initial.dtype))
            else:
                parameter.copy_(initial)
    return model
