"""Kata 3: ``rewind_to_init(model, initial_state_dict, masks) -> nn.Module``.

Set a pruned network back to θ₀ without pruning hooks: every masked weight becomes θ₀ ⊙ mask
and every other parameter (biases) θ₀, in place; return the model; leave ``initial_state_dict``
and ``masks`` alone (reference: ``lthkit.grading.katas.rewind_to_init.reference``).

Each hidden case hands over a hidden model at its trained weights with the pruned weights at zero
(as after masked training), its θ₀, and masks from a global magnitude pruning of the trained
weights (computed by ``torch.nn.utils.prune`` in the grader).
"""

from __future__ import annotations

import torch

from ...hidden import architecture, hidden_state, prunable_names
from ...oracle import close, count, torch_prune_masks
from ...spec import PASS, Case, Check, KataSpec, Mismatch, Mistake, fail
from ..common import copied, example_case, inputs_unchanged, returns_model
from .run import call, run

NAME = "rewind_to_init"

MISTAKES = (
    Mistake("returns_other",
            "Return the model you were given (return model), changed in place: not None, a copy or another "
            "object."),
    Mistake("forgets_mask",
            "The pruned weights came back: they hold θ₀ instead of zero. Multiply by the mask: "
            "parameter.copy_(initial_state_dict[name] * masks[name])."),
    Mistake("keeps_trained",
            "The surviving weights kept their trained values. Rewinding means θ₀: copy "
            "initial_state_dict[name] * masks[name] into each masked weight."),
    Mistake("biases_not_reset",
            "The biases kept their trained values. Every parameter goes back to θ₀, biases included: copy "
            "initial_state_dict[name] into the parameters that have no mask."),
    Mistake("uses_prune_hooks",
            "The model now carries torch.nn.utils.prune hooks (weight_orig, weight_mask). This exercise wants a "
            "plain model: write θ₀ ⊙ mask straight into each parameter with parameter.copy_(...) under "
            "torch.no_grad()."),
    Mistake("replaces_parameters",
            "Parameters were replaced by new objects, so an optimizer built on the old ones would keep training "
            "tensors the model no longer uses. Write in place: with torch.no_grad(): parameter.copy_(value)."),
    Mistake("mutates_inputs",
            "initial_state_dict or masks was changed. Both are needed again in later rounds: only read them "
            "(initial_state_dict[name] * mask makes a new tensor; *= would not)."),
)

CASES = (Case("lenet_like", 21, 0.2), Case("sequential", 22, 0.5), Case("own_names", 23, 0.2), Case("conv", 24, 0.5))


def prepare(case: Case) -> dict:
    """θ₀, global magnitude masks of the trained weights, and the model's masked trained state."""
    theta0, trained = hidden_state(case.model, case.seed)
    names = [f"{name}.weight" for name in prunable_names(architecture(case.model))]
    masks = torch_prune_masks({name: trained[name] for name in names}, None, case.amount)
    state = {key: value * masks[key] if key in masks else value for key, value in trained.items()}
    return {"theta0": theta0, "masks": masks, "state": state}


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``rewind_to_init(model, initial_state_dict, masks)`` as a case."""
    model = arguments["model"]
    return (example_case(), {"theta0": copied(arguments["initial_state_dict"]), "masks": copied(arguments["masks"]),
                             "state": copied(model.state_dict())})


class Evidence:
    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        self.theta0, self.masks = inputs["theta0"], inputs["masks"]
        self.finished = "values" in outputs

    def value(self, key: str) -> torch.Tensor:
        value = self.outputs["values"].get(key)
        if not isinstance(value, torch.Tensor) or value.shape != self.theta0[key].shape:
            found = tuple(value.shape) if isinstance(value, torch.Tensor) else value
            raise Mismatch(f"the model's {key} is {found} after the call, expected a tensor of shape "
                           f"{tuple(self.theta0[key].shape)}")
        return value


def judge_returns_model(ev: Evidence):
    return returns_model(ev.outputs, "the function") if ev.finished else None


def judge_masked_weights(ev: Evidence):
    if not ev.finished:
        return None
    if ev.outputs.get("forward_error"):
        return fail(f"the model fails on a forward pass after the call: {ev.outputs['forward_error']}")
    trained = ev.inputs["state"]
    for key, mask in ev.masks.items():
        value, expected = ev.value(key), ev.theta0[key] * mask
        wrong = ~close(value, expected)
        if wrong.any():
            if bool(close(value, ev.theta0[key]).all()):
                return fail(f"{key} is θ₀ everywhere: its {count(~mask):,} pruned weights are not zero",
                            "forgets_mask")
            if bool(close(value, trained[key]).all()):
                return fail(f"{key} still holds its trained values", "keeps_trained")
            return fail(f"{count(wrong):,} of the {mask.numel():,} entries of {key} are not θ₀ ⊙ mask")
    return PASS


def judge_other_parameters(ev: Evidence):
    if not ev.finished:
        return None
    for key, value0 in ev.theta0.items():
        if key in ev.masks:
            continue
        value = ev.value(key)
        if not bool(close(value, value0).all()):
            mistake = "biases_not_reset" if bool(close(value, ev.inputs["state"][key]).all()) else None
            return fail(f"{key} is not back at θ₀", mistake)
    return PASS


def judge_plain_in_place(ev: Evidence):
    if not ev.finished:
        return None
    if ev.outputs.get("hooked"):
        return fail(f"{', '.join(map(str, ev.outputs['hooked'][:3]))} carry torch.nn.utils.prune hooks or "
                    "weight_orig/weight_mask", "uses_prune_hooks")
    replaced = [name for name, same in (ev.outputs.get("same_objects") or {}).items() if not same]
    if replaced:
        return fail(f"{', '.join(replaced[:3])} {'is a new Parameter' if len(replaced) == 1 else 'are new Parameters'}"
                    " after the call", "replaces_parameters")
    return PASS


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("initial_state_dict", "theta0"), ("masks", "masks")), ev.inputs, ev.outputs,
                            "mutates_inputs")


SPEC = KataSpec(
    name=NAME,
    title="rewind_to_init: reset a pruned network to θ₀ ⊙ mask, without prune hooks",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    example=example,
    call=call,
    watched_inputs=("theta0", "masks"),
    checks=(
        Check("returns_model", "returns the model it was given", 1, "Return the model.",
              judge_returns_model, mistakes=("returns_other",)),
        Check("masked_weights", "every masked weight is θ₀ ⊙ mask", 2,
              "Write initial_state_dict[name] * masks[name] into every masked weight.",
              judge_masked_weights, mistakes=("forgets_mask", "keeps_trained")),
        Check("other_parameters", "every other parameter (the biases) is θ₀", 1,
              "Write initial_state_dict[name] into every parameter without a mask.",
              judge_other_parameters, mistakes=("biases_not_reset",)),
        Check("plain_in_place", "a plain model, changed in place (same Parameters, no prune hooks)", 1,
              "Copy into the existing parameters under torch.no_grad(); no torch.nn.utils.prune.",
              judge_plain_in_place, mistakes=("uses_prune_hooks", "replaces_parameters")),
        Check("inputs_unchanged", "leaves initial_state_dict and masks unchanged", 1,
              "Only read initial_state_dict and masks.",
              judge_inputs_unchanged, mistakes=("mutates_inputs",)),
    ),
)
