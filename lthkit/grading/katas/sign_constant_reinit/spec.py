"""Kata 5: ``sign_constant_reinit(model, initial_state_dict, masks) -> nn.Module``.

Zhou et al.'s "signed constant" reset (NeurIPS 2019): every masked weight becomes
``sign(θ₀) * σ * mask``, with ``σ`` the standard deviation of that layer's θ₀ weights (all of
them); every other parameter (biases) goes back to θ₀; in place; return the model; leave
``initial_state_dict`` and ``masks`` alone (reference: ``lthkit.grading.katas.sign_constant_reinit.reference``).
Either standard deviation (``torch.std``'s unbiased one or the population one) is accepted.

Each hidden case hands over a hidden model at its trained weights with the pruned weights at zero,
its θ₀, and masks from a global magnitude pruning of the trained weights (``torch.nn.utils.prune``
in the grader).
"""

from __future__ import annotations

import torch

from ...hidden import architecture, hidden_state, prunable_names
from ...oracle import close, count, torch_prune_masks
from ...spec import PASS, Case, Check, KataSpec, Mismatch, Mistake, fail
from ..common import copied, example_case, inputs_unchanged, returns_model
from .run import call, run

NAME = "sign_constant_reinit"

MISTAKES = (
    Mistake("returns_other",
            "Return the model you were given (return model), changed in place: not None, a copy or another object."),
    Mistake("constant_from_trained",
            "The constant was taken from the trained weights (the model's current values). It is the scale of the "
            "initialization: initial_state_dict[name].std(), the same for every weight of the layer."),
    Mistake("constant_from_survivors",
            "The constant is the standard deviation of the surviving θ₀ values only. Take it over the whole "
            "layer's θ₀, initial_state_dict[name].std(): the scale of the initialization, whatever was pruned."),
    Mistake("one_constant",
            "Every layer got the same constant. Each layer has its own: initial_state_dict[name].std() of that "
            "layer's weights."),
    Mistake("keeps_magnitudes",
            "The survivors kept θ₀'s own magnitudes: that is the ticket, not the sign reset. Keep only the sign: "
            "initial_state_dict[name].sign() * constant."),
    Mistake("signs_from_trained",
            "The signs come from the trained weights. The reset keeps the signs of θ₀: "
            "initial_state_dict[name].sign()."),
    Mistake("pruned_nonzero",
            "Pruned weights were made non-zero. Multiply by the mask: sign(θ₀) * constant * masks[name]."),
    Mistake("biases_not_reset",
            "The biases kept their trained values. Every parameter without a mask goes back to θ₀."),
    Mistake("mutates_inputs",
            "initial_state_dict or masks was changed. Only read them (build new tensors; *= would not)."),
)

CASES = (Case("lenet_like", 51, 0.5), Case("sequential", 52, 0.7), Case("own_names", 53, 0.5), Case("conv", 54, 0.5))


def prepare(case: Case) -> dict:
    """θ₀, global magnitude masks of the trained weights, and the model's masked trained state."""
    theta0, trained = hidden_state(case.model, case.seed)
    names = [f"{name}.weight" for name in prunable_names(architecture(case.model))]
    masks = torch_prune_masks({name: trained[name] for name in names}, None, case.amount)
    state = {key: value * masks[key] if key in masks else value for key, value in trained.items()}
    return {"theta0": theta0, "masks": masks, "state": state}


def _constants(values: dict, masks: dict, unbiased: bool) -> dict:
    return {name: float(values[name].double().std(unbiased=unbiased)) for name in masks}


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``sign_constant_reinit(model, initial_state_dict, masks)`` as a case."""
    model = arguments["model"]
    return (example_case(), {"theta0": copied(arguments["initial_state_dict"]), "masks": copied(arguments["masks"]),
                             "state": copied(model.state_dict())})


class Evidence:
    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        self.theta0, self.masks, self.trained = inputs["theta0"], inputs["masks"], inputs["state"]
        self.finished = "values" in outputs

    def value(self, key: str) -> torch.Tensor:
        value = self.outputs["values"].get(key)
        if not isinstance(value, torch.Tensor) or value.shape != self.theta0[key].shape:
            found = tuple(value.shape) if isinstance(value, torch.Tensor) else value
            raise Mismatch(f"the model's {key} is {found} after the call, expected a tensor of shape "
                           f"{tuple(self.theta0[key].shape)}")
        return value.double()

    def right_constants(self) -> list[dict]:
        """The accepted per-layer constants: the unbiased and the population std of each layer's θ₀."""
        return [_constants(self.theta0, self.masks, unbiased) for unbiased in (True, False)]

    def wrong_constants(self) -> dict[str, list[dict]]:
        survivors = {name: self.theta0[name][mask] for name, mask in self.masks.items()}
        everything = torch.cat([self.theta0[name].reshape(-1) for name in self.masks]).double()
        return {"constant_from_trained": [_constants(self.trained, self.masks, u) for u in (True, False)],
                "constant_from_survivors": [_constants(survivors, self.masks, u) for u in (True, False)],
                "one_constant": [{name: float(everything.std(unbiased=u)) for name in self.masks}
                                 for u in (True, False)]}


def _survivor_magnitudes_are(ev: Evidence, constants: dict) -> bool:
    return all(bool(close(ev.value(name)[mask].abs(), torch.full((count(mask),), constants[name],
                                                                   dtype=torch.float64)).all())
               for name, mask in ev.masks.items())


def judge_returns_model(ev: Evidence):
    return returns_model(ev.outputs, "the function") if ev.finished else None


def judge_keeps_signs(ev: Evidence):
    if not ev.finished:
        return None
    if ev.outputs.get("forward_error"):
        return fail(f"the model fails on a forward pass after the call: {ev.outputs['forward_error']}")
    for name, mask in ev.masks.items():
        value = ev.value(name)[mask]
        wrong = value.sign() != ev.theta0[name][mask].double().sign()
        if wrong.any():
            trained = bool((value.sign() == ev.trained[name][mask].double().sign()).all())
            return fail(f"{count(wrong):,} of the {count(mask):,} survivors of {name} do not have θ₀'s sign",
                        "signs_from_trained" if trained else None)
    return PASS


def judge_layer_constant(ev: Evidence):
    if not ev.finished:
        return None
    if any(_survivor_magnitudes_are(ev, constants) for constants in ev.right_constants()):
        return PASS
    if all(bool(close(ev.value(name)[mask].abs(), ev.theta0[name][mask].double().abs()).all())
           for name, mask in ev.masks.items()):
        return fail("the survivors hold θ₀'s own magnitudes, not one constant per layer", "keeps_magnitudes")
    messages = {"constant_from_trained": "the constant is the standard deviation of the trained weights",
                "constant_from_survivors": "the constant is the standard deviation of the surviving θ₀ values only",
                "one_constant": "one constant for every layer"}
    for mistake, candidates in ev.wrong_constants().items():
        if any(_survivor_magnitudes_are(ev, constants) for constants in candidates):
            return fail(messages[mistake], mistake)
    return fail("the survivors' magnitudes are not the standard deviation of their layer's θ₀")


def judge_pruned_zero(ev: Evidence):
    if not ev.finished:
        return None
    for name, mask in ev.masks.items():
        nonzero = ev.value(name)[~mask] != 0
        if nonzero.any():
            return fail(f"{count(nonzero):,} of the {count(~mask):,} pruned weights of {name} are not zero",
                        "pruned_nonzero")
    return PASS


def judge_other_parameters(ev: Evidence):
    if not ev.finished:
        return None
    for key, value0 in ev.theta0.items():
        if key in ev.masks:
            continue
        value = ev.value(key)
        if not bool(close(value, value0).all()):
            mistake = "biases_not_reset" if bool(close(value, ev.trained[key]).all()) else None
            return fail(f"{key} is not back at θ₀", mistake)
    return PASS


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("initial_state_dict", "theta0"), ("masks", "masks")), ev.inputs, ev.outputs,
                            "mutates_inputs")


SPEC = KataSpec(
    name=NAME,
    title="sign_constant_reinit: survivors at sign(θ₀) × the layer's θ₀ standard deviation",
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
        Check("keeps_signs", "every survivor has the sign of its θ₀", 2,
              "Use initial_state_dict[name].sign() for every masked weight.", judge_keeps_signs,
              mistakes=("signs_from_trained",)),
        Check("layer_constant", "every survivor's magnitude is its layer's θ₀ standard deviation", 2,
              "Multiply the signs by initial_state_dict[name].std(), one constant per layer.", judge_layer_constant,
              mistakes=("constant_from_trained", "constant_from_survivors", "one_constant", "keeps_magnitudes")),
        Check("pruned_zero", "pruned weights are zero", 1, "Multiply by masks[name].", judge_pruned_zero,
              mistakes=("pruned_nonzero",)),
        Check("other_parameters", "every other parameter (the biases) is θ₀", 1,
              "Write initial_state_dict[name] into every parameter without a mask.", judge_other_parameters,
              mistakes=("biases_not_reset",)),
        Check("inputs_unchanged", "leaves initial_state_dict and masks unchanged", 1,
              "Only read initial_state_dict and masks.", judge_inputs_unchanged, mistakes=("mutates_inputs",)),
    ),
)
