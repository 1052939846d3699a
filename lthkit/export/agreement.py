"""Does an exported network compute what the masked network computes? Checked on a whole set of inputs.

Every export is compared with its reference (the masked dense network, or for the 2:4 form the
masked network with the re-pruned masks) on the same inputs, batch by batch: the largest absolute
difference between their outputs, measured against a tolerance stated before any run, and how many
predictions (the arg-max class) differ. The tolerance is per dtype (:data:`TOLERANCES`):
``|a − b| ≤ atol + rtol·|b|`` for every output, as :func:`torch.allclose` reads it. float32 exports
differ from the reference only in the order of their sums (a compact layer's folded bias, a sparse
product); float16 ones also by float16 rounding. On a GPU the check runs without TF32 (plain float32
products), whatever the timings use.

Example:
    >>> from torch import nn
    >>> reference = nn.Linear(4, 3)
    >>> found = compare_outputs(reference, reference, torch.randn(10, 4), torch.arange(10) % 3)
    >>> found["agrees"], found["max_abs_diff"], found["predictions_differ"]
    (True, 0.0, 0)
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..errors import LthkitError

#: ``{dtype: (rtol, atol)}`` an export's outputs must meet against its reference's.
TOLERANCES = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-9, 1e-9), torch.float16: (2e-2, 2e-2),
              torch.bfloat16: (5e-2, 5e-2)}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol)`` for an export computing in ``dtype``.

    Raises:
        LthkitError: no tolerance is stated for that dtype.
    """
    if dtype not in TOLERANCES:
        raise LthkitError(f"no tolerance is stated for {dtype}; choose one of {', '.join(map(str, TOLERANCES))}")
    return TOLERANCES[dtype]


@contextmanager
def full_float32():
    """A block where a GPU's float32 products are float32 (no TF32), so that a check is not TF32 against TF32."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@torch.no_grad()
def compare_outputs(reference, exported, inputs: torch.Tensor, labels: torch.Tensor | None = None, *,
                    dtype: torch.dtype = torch.float32, batch_size: int = 1000) -> dict:
    """Run both networks on ``inputs`` and compare their outputs.

    Args:
        reference: the network the export must agree with.
        exported: the exported network (it may live on another device; inputs are moved to each).
        inputs: the inputs (the test set).
        labels: their labels, to report each network's accuracy (optional).
        dtype: the dtype the export computes in; sets the tolerance (:func:`tolerance`) and how
            the reference is run (in that dtype, on the export's device).
        batch_size: inputs per forward pass.

    Returns:
        ``{"max_abs_diff", "rtol", "atol", "agrees", "predictions_differ", "examples", "accuracy",
        "reference_accuracy", "correct", "reference_correct"}`` (accuracies ``None`` without labels;
        ``correct`` are per-example booleans, for paired comparisons).
    """
    rtol, atol = tolerance(dtype)
    device = _device_of(exported) or _device_of(reference) or torch.device("cpu")
    reference_device = _device_of(reference) or device
    with full_float32():
        return _compare(reference, exported, inputs, labels, dtype, batch_size, rtol, atol, device, reference_device)


def _compare(reference, exported, inputs, labels, dtype, batch_size, rtol, atol, device, reference_device) -> dict:
    worst, excess, differ = 0.0, 0.0, 0
    correct, reference_correct = [], []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size]
        expected = reference(batch.to(reference_device, _dtype_of(reference) or batch.dtype)).to(device, torch.float64)
        found = exported(batch.to(device, dtype)).to(torch.float64)
        if found.shape != expected.shape:
            raise LthkitError(f"the export's outputs have shape {tuple(found.shape)}, the reference's "
                              f"{tuple(expected.shape)}")
        difference = (found - expected).abs()
        worst = max(worst, float(difference.max()) if difference.numel() else 0.0)
        excess = max(excess, float((difference - atol - rtol * expected.abs()).max()) if difference.numel() else 0.0)
        differ += int((found.argmax(1) != expected.argmax(1)).sum())
        if labels is not None:
            target = labels[start:start + batch_size].to(device)
            correct.append(found.argmax(1) == target)
            reference_correct.append(expected.argmax(1) == target)
    examples = len(inputs)
    result = {"max_abs_diff": worst, "rtol": rtol, "atol": atol, "agrees": excess <= 0.0,
              "predictions_differ": differ, "examples": examples, "accuracy": None, "reference_accuracy": None,
              "correct": None, "reference_correct": None}
    if labels is not None and examples:
        result["correct"] = torch.cat(correct).cpu()
        result["reference_correct"] = torch.cat(reference_correct).cpu()
        result["accuracy"] = float(result["correct"].float().mean())
        result["reference_accuracy"] = float(result["reference_correct"].float().mean())
    return result


def paired_difference(correct_a: torch.Tensor, correct_b: torch.Tensor, z: float = 1.959964) -> tuple[float, float,
                                                                                                        float]:
    """Accuracy of a minus accuracy of b on the same examples, with a 95% interval (normal, paired).

    Args:
        correct_a, correct_b: per-example booleans (was each example classified correctly).
        z: the normal quantile (1.96: 95%).

    Returns:
        ``(difference, low, high)`` as fractions.

    Example:
        >>> a = torch.tensor([True] * 90 + [False] * 10)
        >>> b = torch.tensor([True] * 95 + [False] * 5)
        >>> [round(value, 4) for value in paired_difference(a, b)]
        [-0.05, -0.0929, -0.0071]
    """
    if correct_a.shape != correct_b.shape or correct_a.numel() == 0:
        raise LthkitError("paired_difference needs two per-example tensors of one non-zero length")
    differences = correct_a.double() - correct_b.double()
    mean = float(differences.mean())
    spread = float(differences.std(unbiased=True)) if differences.numel() > 1 else 0.0
    half = z * spread / differences.numel() ** 0.5
    return mean, mean - half, mean + half


def _device_of(network) -> torch.device | None:
    for tensor in list(network.parameters()) + list(network.buffers()):
        return tensor.device
    return None


def _dtype_of(network) -> torch.dtype | None:
    for tensor in list(network.parameters()) + list(network.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None
