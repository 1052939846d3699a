"""Kata 2: ``global_magnitude_mask(weights, masks, amount) -> dict[str, Tensor]``.

Prune ``amount`` of the surviving weights with one global magnitude threshold, by hand (no
``torch.nn.utils.prune``); return new bool masks, inputs unchanged (reference:
``lthkit.grading.katas.global_magnitude_mask.reference``). The grader's oracle is ``torch.nn.utils.prune``'s
``global_unstructured`` over the same weights and current masks, in the grader's process.

The hidden cases are the hidden models' trained weights: unpruned, pruned before with the pruned
weights at zero (as after masked training), and pruned before with stale non-zero values at the
pruned positions (which only the mask says are gone).
"""

from __future__ import annotations

import torch

from ...hidden import architecture, hidden_state, prunable_names
from ...oracle import count, percent, same_masks, survivors, torch_prune_masks, total
from ...spec import PASS, Case, Check, KataSpec, Mismatch, Mistake, fail
from ...stubs import PRUNE_MESSAGE_START
from ..common import copied, example_case, inputs_unchanged
from .run import call, run

NAME = "global_magnitude_mask"
UNPRUNED, ZEROS, STALE = "unpruned", "pruned before, zeros", "pruned before, stale values"

MISTAKES = (
    Mistake("returns_wrong_type",
            "Return a dict with the same keys as weights, each value a bool tensor of the weight's shape "
            "(True = alive), e.g. new_masks[name] = masks[name] & (weights[name].abs() > threshold)."),
    Mistake("per_layer",
            "Each layer lost amount of its own weights: that is one threshold per layer. Concatenate the "
            "surviving |w| of all layers into one vector and take a single threshold over it."),
    Mistake("no_abs",
            "The weights were ranked by their signed value, so large negative weights were pruned. Magnitude "
            "pruning ranks by |w|: use weights[name].abs()."),
    Mistake("ranks_all_weights",
            "The threshold was taken over all weights, pruned ones included. Rank only the survivors: "
            "torch.cat([w.abs()[m] for w, m in zip(weights.values(), masks.values())]), and prune "
            "round(amount * number_of_survivors) of them."),
    Mistake("counts_all_weights",
            "amount was applied to all the weights instead of the surviving ones: prune "
            "round(amount * masks_survivors) weights, where masks_survivors = sum(int(m.sum()) for m in "
            "masks.values())."),
    Mistake("revives_pruned",
            "Weights pruned before came back to life. A weight stays pruned forever: combine with the old mask, "
            "new_mask = masks[name] & (weights[name].abs() > threshold)."),
    Mistake("mutates_inputs",
            "weights or masks was changed. Build new masks (masks[name].clone(), or a fresh expression) and "
            "leave the inputs as they were."),
    Mistake("uses_torch_prune",
            "This exercise is by hand: compute the threshold yourself (torch.kthvalue or torch.topk over the "
            "surviving |w|) instead of calling torch.nn.utils.prune."),
)

CASES = (Case("lenet_like", 11, 0.2, UNPRUNED), Case("conv", 12, 0.5, UNPRUNED),
         Case("own_names", 13, 0.2, ZEROS), Case("sequential", 14, 0.3, STALE))


def prepare(case: Case) -> dict:
    """The weights and masks handed to the function."""
    theta0, trained = hidden_state(case.model, case.seed)
    names = [f"{name}.weight" for name in prunable_names(architecture(case.model))]
    weights = {name: trained[name] for name in names}
    if case.variant == UNPRUNED:
        masks = {name: torch.ones_like(weight, dtype=torch.bool) for name, weight in weights.items()}
    elif case.variant == ZEROS:
        masks = torch_prune_masks({name: theta0[name] for name in names}, None, 0.3)
        weights = {name: weight * masks[name] for name, weight in weights.items()}
    else:  # pruned at random before; the pruned positions keep large values only the mask rules out
        generator = torch.Generator().manual_seed(case.seed)
        masks = {name: torch.rand(weight.shape, generator=generator) >= 0.4 for name, weight in weights.items()}
        weights = {name: torch.where(masks[name], weight, weight.sign() * (weight.abs() + weight.abs().max()))
                   for name, weight in weights.items()}
    return {"weights": weights, "masks": masks}


def _smallest_among(scores: dict, alive: dict, n_prune: int) -> dict:
    """Prune the ``n_prune`` smallest ``scores`` among the alive entries, ranked together."""
    names = list(scores)
    flat_scores = torch.cat([scores[name].reshape(-1) for name in names])
    flat_alive = torch.cat([alive[name].reshape(-1) for name in names])
    candidates = flat_alive.nonzero().squeeze(1)
    keep = flat_alive.clone()
    n_prune = min(max(n_prune, 0), candidates.numel())
    if n_prune:
        keep[candidates[torch.topk(flat_scores[candidates], n_prune, largest=False).indices]] = False
    return dict(zip(names, (part.view_as(alive[name]) for part, name in
                            zip(keep.split([alive[n].numel() for n in names]), names))))


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``global_magnitude_mask(weights, masks, amount)`` as a case."""
    return (example_case(arguments["amount"], f"amount {arguments['amount']:g}"),
            {"weights": copied(arguments["weights"]), "masks": copied(arguments["masks"])})


class Evidence:
    """One case's inputs, the returned masks, the oracle and the known mistakes' masks."""

    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        self.weights, self.masks, self.amount = inputs["weights"], inputs["masks"], case.amount
        self.finished = "returned" in outputs

    def returned(self) -> dict[str, torch.Tensor]:
        """The returned masks as bool tensors, or :class:`Mismatch` saying what is wrong with them."""
        value = self.outputs.get("returned")
        if not isinstance(value, dict):
            raise Mismatch(f"returned {self.outputs.get('returned_type')}, not a dict of masks")
        if set(value) != set(self.weights):
            missing, extra = sorted(set(self.weights) - set(value)), sorted(set(value) - set(self.weights))
            raise Mismatch(f"the returned dict's keys differ from the weights' (missing {missing}, extra {extra})")
        masks = {}
        for name, weight in self.weights.items():
            mask = value[name]
            if not isinstance(mask, torch.Tensor) or mask.shape != weight.shape:
                shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else mask
                raise Mismatch(f"the mask for {name} is {shape}, expected a tensor of shape {tuple(weight.shape)}")
            masks[name] = mask != 0
        return masks

    def oracle(self) -> dict:
        return torch_prune_masks(self.weights, self.masks, self.amount)

    def predictions(self) -> dict[str, dict]:
        magnitudes = {name: weight.abs() for name, weight in self.weights.items()}
        alive = survivors(self.masks)
        everything = {name: torch.ones_like(mask) for name, mask in self.masks.items()}
        right = self.oracle()
        # The right threshold, but without "& mask": every weight above it is alive again.
        pruned_magnitudes = torch.cat([magnitudes[n][self.masks[n] & ~right[n]] for n in self.weights])
        threshold = pruned_magnitudes.max() if pruned_magnitudes.numel() else torch.tensor(-1.0)
        return {
            "per_layer": torch_prune_masks(self.weights, self.masks, self.amount, scope="layer"),
            "no_abs": _smallest_among(self.weights, self.masks, round(self.amount * alive)),
            "ranks_all_weights": {name: self.masks[name] & mask for name, mask in _smallest_among(
                magnitudes, everything, round(self.amount * total(self.masks))).items()},
            "counts_all_weights": _smallest_among(magnitudes, self.masks, round(self.amount * total(self.masks))),
            "revives_pruned": {name: magnitudes[name] > threshold for name in self.weights},
        }


def judge_returns_masks(ev: Evidence):
    if not ev.finished:
        return None
    value = ev.outputs.get("returned")
    if not isinstance(value, dict):
        return fail(f"returned {ev.outputs.get('returned_type')}, not a dict of masks", "returns_wrong_type")
    ev.returned()  # raises Mismatch for wrong keys or shapes
    not_bool = [name for name in ev.weights if value[name].dtype != torch.bool]
    if not_bool:
        return fail(f"the mask for {not_bool[0]} has dtype {value[not_bool[0]].dtype}, not torch.bool",
                    "returns_wrong_type")
    return PASS


def judge_global_threshold(ev: Evidence):
    if not ev.finished:
        return None
    masks, oracle = ev.returned(), ev.oracle()
    if same_masks(masks, oracle):
        return PASS
    messages = {"per_layer": "every layer lost the same fraction of its surviving weights",
                "no_abs": "the pruned weights are the most negative ones, not the smallest in magnitude",
                "revives_pruned": "weights pruned before are alive again",
                "ranks_all_weights": "the threshold was taken over all weights, pruned ones included",
                "counts_all_weights": f"{percent(ev.amount)} of all the weights were pruned, not of the survivors"}
    predictions = ev.predictions()
    for mistake, message in messages.items():
        if same_masks(masks, predictions[mistake]) and not same_masks(predictions[mistake], oracle):
            return fail(message, mistake)
    wrong = sum(count(masks[name] != oracle[name]) for name in masks)
    return fail(f"{wrong:,} of {total(masks):,} mask entries differ from one global magnitude threshold")


def judge_keeps_pruned(ev: Evidence):
    if not ev.finished:
        return None
    masks = ev.returned()
    revived = sum(count(masks[name] & ~ev.masks[name]) for name in masks)
    if revived:
        return fail(f"{revived:,} weights that were pruned before are alive in the returned masks", "revives_pruned")
    return PASS


def judge_exact_count(ev: Evidence):
    if not ev.finished:
        return None
    masks = ev.returned()
    alive = survivors(ev.masks)
    expected = alive - round(ev.amount * alive)
    kept = sum(count(masks[name] & ev.masks[name]) for name in masks)
    if kept == expected:
        return PASS
    message = (f"{alive - kept:,} of the {alive:,} surviving weights were pruned; {percent(ev.amount)} of them is "
               f"{alive - expected:,}")
    predictions = ev.predictions()
    for mistake in ("counts_all_weights", "ranks_all_weights", "per_layer"):
        if sum(count(predictions[mistake][name] & ev.masks[name]) for name in masks) == kept:
            return fail(message, mistake)
    return fail(message)


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("weights", "weights"), ("masks", "masks")), ev.inputs, ev.outputs, "mutates_inputs")


def judge_by_hand(ev: Evidence):
    # The sandbox of this kata has no torch.nn.utils.prune: using it raises there.
    if ev.error and str(ev.error.get("message", "")).startswith(PRUNE_MESSAGE_START):
        return fail(f"used torch.nn.utils.prune, which this kata does without: {ev.error['type']}"
                    f"{ev.error.get('where', '')}", "uses_torch_prune")
    return PASS if ev.finished else None


SPEC = KataSpec(
    name=NAME,
    title="global_magnitude_mask: one global magnitude threshold, by hand",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    watched_inputs=("weights", "masks"),
    by_hand=True,
    example=example,
    call=call,
    checks=(
        Check("returns_masks", "returns a dict of bool masks, one per weight", 1,
              "Return {name: bool tensor of the weight's shape} for every name in weights.",
              judge_returns_masks, mistakes=("returns_wrong_type",)),
        Check("global_threshold", "prunes the smallest |w| among the survivors, one threshold for all layers", 2,
              "Rank the surviving |w| of all layers together and prune the round(amount * survivors) smallest.",
              judge_global_threshold,
              mistakes=("per_layer", "no_abs", "revives_pruned", "ranks_all_weights", "counts_all_weights")),
        Check("keeps_pruned", "weights pruned before stay pruned", 1,
              "A weight that masks marks as pruned stays pruned: new_mask = masks[name] & (...).",
              judge_keeps_pruned, mistakes=("revives_pruned",)),
        Check("exact_count", "prunes exactly round(amount × surviving) weights", 1,
              "Prune round(amount * number of surviving weights) of them: no more, no fewer.",
              judge_exact_count, mistakes=("counts_all_weights", "ranks_all_weights", "per_layer")),
        Check("inputs_unchanged", "leaves weights and masks unchanged", 1,
              "Do not modify weights or masks; return new tensors.",
              judge_inputs_unchanged, mistakes=("mutates_inputs",)),
        Check("by_hand", "computes the threshold by hand (no torch.nn.utils.prune)", 1,
              "Compute the threshold yourself instead of calling torch.nn.utils.prune.",
              judge_by_hand, mistakes=("uses_torch_prune",), about_errors=True, hidden_only=True),
    ),
)
