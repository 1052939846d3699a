"""Judges more than one kata uses: "returns the model it was given" and "leaves its inputs alone".

Both judge only what the grader holds: the flags and plain copies the sandbox recorded, and the
watched inputs (``KataSpec.watched_inputs``) that the grader read back from the memory it shared
with the sandbox (``outputs["inputs_after"]``), which nothing inside the sandbox can forge.

Example:
    >>> returns_model({"returned_model": False, "returned_type": "None"}, "the call")
    Finding(status='fail', message='the call returned None, not the model it was given', mistake='returns_other')
"""

from __future__ import annotations

import torch

from ..oracle import first_change
from ..spec import PASS, Case, Finding, Mismatch, fail


def returns_model(record: dict, call: str) -> Finding:
    """PASS when the sandbox recorded that ``call`` returned the very model it was given."""
    if record.get("returned_model"):
        return PASS
    returned = record.get("returned_type")
    what = "None" if returned == "None" else f"a {returned} object"
    return fail(f"{call} returned {what}, not the model it was given", "returns_other")


def inputs_unchanged(pairs, inputs: dict, outputs: dict, mistake: str, recorded=None) -> Finding:
    """PASS when no input dict named in ``pairs`` was changed by the learner's function.

    Args:
        pairs: ``(label, key)``: how the message names an input, and its key in ``inputs``.
        inputs: the case's inputs as the grader made them.
        outputs: what came back: ``outputs[f"{key}_after"]`` (the sandbox's plain copy, which sees
            replaced keys) and ``outputs["inputs_after"][key]`` (the shared memory, read back by
            the grader, which sees every in-place change).
        mistake: the mistake a change is diagnosed as.
        recorded: the sandbox's copies instead of ``outputs[f"{key}_after"]`` (``{key: copy}``).
    """
    recorded = {key: outputs.get(f"{key}_after") for _, key in pairs} if recorded is None else recorded
    watched = outputs.get("inputs_after") if isinstance(outputs.get("inputs_after"), dict) else {}
    triples = [(label, inputs[key], recorded.get(key)) for label, key in pairs]
    triples += [(label, inputs[key], watched[key]) for label, key in pairs if key in watched]
    change = first_change(triples)
    return fail(change, mistake) if change else PASS


def copied(values) -> dict:
    """A plain copy of a dict of tensors the learner passed (what the call must leave alone, as it was)."""
    return {str(key): value.detach().clone() if isinstance(value, torch.Tensor) else value
            for key, value in dict(values).items()}


def example_case(amount: float = 0.0, about: str = "") -> Case:
    """The case of a call a learner made in a notebook (:mod:`lthkit.grading.example` numbers them)."""
    return Case("notebook", 0, float(amount), about, about="-")


def layer_tensor(value, shape, what: str) -> torch.Tensor | None:
    """``value`` if it is a tensor of a layer weight's ``shape``; None if absent; :class:`Mismatch` naming it otherwise.

    A judge reads what the learner's function left (a mask, ``weight_orig``) through this, so that a wrong
    type or shape fails the check with a message instead of crashing the grader.
    """
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise Mismatch(f"{what} is not a plain tensor but {value}")
    if tuple(value.shape) != tuple(shape):
        raise Mismatch(f"{what} has shape {tuple(value.shape)}, the layer's weight has {tuple(shape)}")
    return value
