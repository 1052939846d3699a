"""Kata 4: ``interpolate(state_a, state_b, alpha, masks) -> dict[str, Tensor]``.

The point ``(1 − alpha) · state_a + alpha · state_b`` of the linear path between two trained
networks (notebook 6, instability analysis): every floating-point tensor interpolated, biases
included; every tensor named in ``masks`` multiplied by its mask, so that pruned weights are
exactly zero at every α whatever the states hold there; a new dict; inputs unchanged (reference:
``lthkit.grading.katas.interpolate.reference``). The grader's oracle is plain ``torch.lerp`` over the state
dicts, masked, in the grader's process.

Each hidden case hands over two stand-in trained states of a hidden model (two seeds) and masks
from a global magnitude pruning of the first; in some cases the states keep stale non-zero values
at the pruned positions (as ``weight_orig`` does under ``torch.nn.utils.prune``), which only the
mask says are gone. α runs over 0, 1 and values between.
"""

from __future__ import annotations

import torch

from ...hidden import architecture, hidden_state, prunable_names
from ...oracle import close, count, torch_prune_masks
from ...spec import PASS, Case, Check, KataSpec, Mismatch, Mistake, fail
from ..common import copied, example_case, inputs_unchanged
from .run import call, run

NAME = "interpolate"
ZEROS, STALE = "pruned weights zero in both states", "stale values at the pruned positions"

MISTAKES = (
    Mistake("returns_wrong_type",
            "Return a new dict with the same keys as state_a, each value a tensor of that entry's shape: "
            "{name: ... for name in state_a}."),
    Mistake("reversed_alpha",
            "alpha weighs the wrong network: at alpha = 0 the path is at state_a, at alpha = 1 at state_b. "
            "Use (1 - alpha) * state_a[name] + alpha * state_b[name] (or torch.lerp(a, b, alpha))."),
    Mistake("pruned_revived",
            "Pruned weights came back to non-zero values along the path: the states may hold anything at the "
            "pruned positions, only the mask says they are gone. Multiply every masked tensor by its mask: "
            "value * masks[name]."),
    Mistake("biases_forgotten",
            "The tensors without a mask (the biases) were not interpolated: they are missing or kept one "
            "network's values. Interpolate every tensor of the state dicts, and multiply by a mask only those "
            "named in masks."),
    Mistake("mutates_inputs",
            "state_a, state_b or masks was changed. Build new tensors (torch.lerp(a, b, alpha) or "
            "(1 - alpha) * a + alpha * b make new ones; a.mul_(...) or += would not)."),
)

CASES = (Case("lenet_like", 31, 0.0, ZEROS, about="alpha"), Case("sequential", 32, 1.0, STALE, about="alpha"),
         Case("own_names", 33, 0.3, STALE, about="alpha"), Case("conv", 34, 0.5, ZEROS, about="alpha"),
         Case("lenet_like", 35, 0.75, STALE, about="alpha"))


def prepare(case: Case) -> dict:
    """Two trained states, global magnitude masks of the first, stale values where the variant says."""
    _, state_a = hidden_state(case.model, case.seed)
    _, state_b = hidden_state(case.model, case.seed + 1000)
    names = [f"{name}.weight" for name in prunable_names(architecture(case.model))]
    masks = torch_prune_masks({name: state_a[name] for name in names}, None, 0.6)
    if case.variant == ZEROS:
        state_a = {key: value * masks[key] if key in masks else value for key, value in state_a.items()}
        state_b = {key: value * masks[key] if key in masks else value for key, value in state_b.items()}
    else:  # stale values, far from zero, that only the mask rules out
        state_a = {key: torch.where(masks[key], value, value.sign() + value) if key in masks else value
                   for key, value in state_a.items()}
    return {"state_a": state_a, "state_b": state_b, "masks": masks}


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``interpolate(state_a, state_b, alpha, masks)`` as a case."""
    return (example_case(arguments["alpha"], f"alpha {arguments['alpha']:g}"),
            {"state_a": copied(arguments["state_a"]), "state_b": copied(arguments["state_b"]),
             "masks": copied(arguments["masks"])})


class Evidence:
    """One case's inputs, what came back, and the oracle (``torch.lerp``, masked)."""

    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        self.a, self.b, self.masks, self.alpha = inputs["state_a"], inputs["state_b"], inputs["masks"], case.amount
        self.finished = "returned" in outputs

    def lerp(self, alpha: float) -> dict:
        return {name: torch.lerp(self.a[name].double(), self.b[name].double(), alpha) for name in self.a}

    def oracle(self) -> dict:
        return {name: value * self.masks[name] if name in self.masks else value
                for name, value in self.lerp(self.alpha).items()}

    def entry(self, name: str):
        """The returned tensor ``name``, ``None`` if the key is missing, :class:`Mismatch` if malformed."""
        value = self.outputs["returned"].get(name)
        if value is None:
            return None
        if not isinstance(value, torch.Tensor) or value.shape != self.a[name].shape:
            found = tuple(value.shape) if isinstance(value, torch.Tensor) else value
            raise Mismatch(f"the returned {name} is {found}, expected a tensor of shape {tuple(self.a[name].shape)}")
        return value


def judge_returns_state(ev: Evidence):
    if not ev.finished:
        return None
    value = ev.outputs.get("returned")
    if not isinstance(value, dict):
        return fail(f"returned {ev.outputs.get('returned_type')}, not a dict of tensors", "returns_wrong_type")
    masked_missing = [name for name in ev.masks if name not in value]
    if masked_missing:
        return fail(f"the returned dict lacks {', '.join(masked_missing[:3])}", "returns_wrong_type")
    for name in ev.a:
        ev.entry(name)  # raises Mismatch for a wrong shape or type
    extra = sorted(set(value) - set(ev.a))
    if extra:
        return fail(f"the returned dict has keys the states do not have: {', '.join(extra[:3])}",
                    "returns_wrong_type")
    return PASS


def judge_surviving_weights(ev: Evidence):
    if not ev.finished or not isinstance(ev.outputs.get("returned"), dict):
        return None
    expected, reversed_ = ev.oracle(), ev.lerp(1.0 - ev.alpha)
    for name, mask in ev.masks.items():
        value = ev.entry(name)
        if value is None:
            return fail(f"the returned dict lacks {name}")
        wrong = ~close(value[mask], expected[name][mask])
        if wrong.any():
            if bool(close(value[mask], reversed_[name][mask]).all()):
                return fail(f"{name} is (1 − α)·state_b + α·state_a at α = {ev.alpha:g}", "reversed_alpha")
            return fail(f"{count(wrong):,} of the {count(mask):,} surviving weights of {name} are not "
                        f"(1 − α)·state_a + α·state_b at α = {ev.alpha:g}")
    return PASS


def judge_pruned_stay_zero(ev: Evidence):
    if not ev.finished or not isinstance(ev.outputs.get("returned"), dict):
        return None
    for name, mask in ev.masks.items():
        value = ev.entry(name)
        if value is None:
            return None
        alive_again = value[~mask] != 0
        if alive_again.any():
            return fail(f"{count(alive_again):,} of the {count(~mask):,} pruned weights of {name} are not zero at "
                        f"α = {ev.alpha:g}", "pruned_revived")
    return PASS


def judge_other_tensors(ev: Evidence):
    if not ev.finished or not isinstance(ev.outputs.get("returned"), dict):
        return None
    expected = ev.oracle()
    for name in ev.a:
        if name in ev.masks:
            continue
        value = ev.entry(name)
        if value is None:
            return fail(f"the returned dict lacks {name}", "biases_forgotten")
        if not bool(close(value, expected[name]).all()):
            kept = [label for label, state in (("state_a", ev.a), ("state_b", ev.b)) if bool(close(value, state[name]).all())]
            if kept and not bool(close(ev.a[name], ev.b[name]).all()):
                return fail(f"{name} is {kept[0]}'s, not interpolated", "biases_forgotten")
            return fail(f"{name} is not (1 − α)·state_a + α·state_b at α = {ev.alpha:g}")
    return PASS


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("state_a", "state_a"), ("state_b", "state_b"), ("masks", "masks")), ev.inputs,
                            ev.outputs, "mutates_inputs")


SPEC = KataSpec(
    name=NAME,
    title="interpolate: a point of the linear path between two networks, masks respected",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    example=example,
    call=call,
    watched_inputs=("state_a", "state_b", "masks"),
    checks=(
        Check("returns_state", "returns a new dict of tensors with the states' keys and shapes", 1,
              "Return {name: tensor} for every name of state_a.", judge_returns_state,
              mistakes=("returns_wrong_type",)),
        Check("surviving_weights", "surviving weights are (1 − α)·state_a + α·state_b", 2,
              "Interpolate: (1 - alpha) * state_a[name] + alpha * state_b[name].", judge_surviving_weights,
              mistakes=("reversed_alpha",)),
        Check("pruned_stay_zero", "pruned weights are exactly zero at every α", 2,
              "Multiply every tensor named in masks by its mask.", judge_pruned_stay_zero,
              mistakes=("pruned_revived",)),
        Check("other_tensors", "every tensor without a mask (the biases) is interpolated too", 1,
              "Interpolate every tensor of the state dicts, not only the masked weights.", judge_other_tensors,
              mistakes=("biases_forgotten",)),
        Check("inputs_unchanged", "leaves state_a, state_b and masks unchanged", 1,
              "Only read the inputs; build new tensors.", judge_inputs_unchanged, mistakes=("mutates_inputs",)),
    ),
)
