"""Kata 4: ``snip_scores(model, inputs, targets) -> dict[str, Tensor]``.

SNIP's connection sensitivity (Lee et al., ICLR 2019): for every prunable weight (the ``weight`` of
each Linear and Conv2d layer, biases excluded), ``|∂L/∂w ⊙ w|`` with ``L`` the mean cross-entropy
of ``model(inputs)`` against ``targets``; keyed by parameter name; the model's weights left as they
were (reference: ``lthkit.grading.katas.snip_scores.reference``). The grader's oracle is autograd in its own
process.

Each hidden case is a hidden model at θ₀ and a seeded batch of MNIST-shaped noise with labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...hidden import architecture, hidden_state, prunable_names
from ...oracle import close, count
from ...spec import PASS, Case, Check, KataSpec, Mismatch, Mistake, fail
from ..common import copied, example_case, inputs_unchanged
from .run import call, run

NAME = "snip_scores"
BATCH = 12

MISTAKES = (
    Mistake("returns_wrong_type",
            "Return a dict {parameter name: tensor of the weight's shape}, one entry per Linear and Conv2d weight, "
            "named as in model.named_parameters() (\"fc1.weight\")."),
    Mistake("scores_biases",
            "Biases got scores too. SNIP scores only the prunable weights (the weight of each nn.Linear and "
            "nn.Conv2d): leave every bias out of the returned dict."),
    Mistake("wrong_sign",
            "The scores are -∂L/∂w ⊙ w: the gradient of the wrong sign, and signed. SNIP's score is the magnitude "
            "|∂L/∂w ⊙ w|: take (grad * weight).abs()."),
    Mistake("no_abs",
            "The scores are ∂L/∂w ⊙ w with their sign, so half the important connections score below zero. SNIP "
            "ranks by the magnitude: (grad * weight).abs()."),
    Mistake("gradient_only",
            "The scores are |∂L/∂w| alone. SNIP's sensitivity multiplies the gradient by the weight: "
            "(grad * weight).abs()."),
    Mistake("sum_loss",
            "The scores are the batch size times too large: the loss was summed over the batch. Use the mean "
            "cross-entropy, F.cross_entropy(model(inputs), targets) (its default reduction)."),
    Mistake("changes_model",
            "The model's weights changed. Scoring only reads them: compute the gradient with loss.backward() or "
            "torch.autograd.grad and take no optimizer step."),
    Mistake("mutates_inputs",
            "inputs or targets was changed. Only read them."),
)

CASES = (Case("lenet_like", 41, 0.0), Case("sequential", 42, 0.0), Case("own_names", 43, 0.0), Case("conv", 44, 0.0))


def prepare(case: Case) -> dict:
    """The hidden model's θ₀ and a seeded batch."""
    theta0, _ = hidden_state(case.model, case.seed)
    generator = torch.Generator().manual_seed(case.seed + 7)
    batch = {"inputs": torch.randn(BATCH, 1, 28, 28, generator=generator),
             "targets": torch.randint(0, 10, (BATCH,), generator=generator)}
    return {"theta0": theta0, "batch": batch}


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``snip_scores(model, inputs, targets)`` as a case (the oracle scores a copy of the model)."""
    import copy

    model = arguments["model"]
    return (example_case(), {"theta0": copied(model.state_dict()), "model": copy.deepcopy(model),
                             "batch": copied({"inputs": arguments["inputs"], "targets": arguments["targets"]})})


def oracle_parts(case: Case, inputs: dict) -> tuple[dict, dict, int]:
    """``(gradients, weights, batch size)`` of the prunable weights at θ₀, by autograd (mean loss)."""
    import copy

    # A notebook's own call brings its model (example); a hidden case is built from its name.
    model = copy.deepcopy(inputs["model"]) if "model" in inputs else architecture(case.model)
    model.load_state_dict(inputs["theta0"])
    names = [f"{name}.weight" for name in prunable_names(model)]
    parameters = dict(model.named_parameters())
    loss = F.cross_entropy(model(inputs["batch"]["inputs"]), inputs["batch"]["targets"])
    grads = torch.autograd.grad(loss, [parameters[name] for name in names])
    return (dict(zip(names, (g.detach() for g in grads))), {name: parameters[name].detach() for name in names},
            len(inputs["batch"]["targets"]))


class Evidence:
    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        self.finished = "returned" in outputs
        self.grads, self.weights, self.batch = oracle_parts(case, inputs)

    def oracle(self) -> dict:
        return {name: (self.grads[name] * self.weights[name]).abs() for name in self.weights}

    def predictions(self) -> dict[str, dict]:
        g, w = self.grads, self.weights
        return {"wrong_sign": {n: -(g[n] * w[n]) for n in w}, "no_abs": {n: g[n] * w[n] for n in w},
                "gradient_only": {n: g[n].abs() for n in w},
                "sum_loss": {n: (g[n] * w[n]).abs() * self.batch for n in w}}

    def returned(self) -> dict[str, torch.Tensor]:
        value = self.outputs.get("returned")
        if not isinstance(value, dict):
            raise Mismatch(f"returned {self.outputs.get('returned_type')}, not a dict of scores")
        missing = [name for name in self.weights if name not in value]
        if missing:
            raise Mismatch(f"the returned dict has no scores for {', '.join(missing[:3])}")
        scores = {}
        for name, weight in self.weights.items():
            score = value[name]
            if not isinstance(score, torch.Tensor) or score.shape != weight.shape:
                shape = tuple(score.shape) if isinstance(score, torch.Tensor) else score
                raise Mismatch(f"the scores for {name} are {shape}, expected a tensor of shape {tuple(weight.shape)}")
            scores[name] = score.double()
        return scores


def _matches(scores: dict, expected: dict) -> bool:
    return all(bool(close(scores[name], expected[name]).all()) for name in expected)


def judge_returns_scores(ev: Evidence):
    if not ev.finished:
        return None
    value = ev.outputs.get("returned")
    if not isinstance(value, dict):
        return fail(f"returned {ev.outputs.get('returned_type')}, not a dict of scores", "returns_wrong_type")
    biases = sorted(name for name in value if name.endswith("bias"))
    if biases:
        return fail(f"the returned dict scores {', '.join(biases[:3])}", "scores_biases")
    extra = sorted(set(value) - set(ev.weights))
    if extra:
        return fail(f"the returned dict has entries that are not prunable weights: {', '.join(extra[:3])}",
                    "returns_wrong_type")
    missing = [name for name in ev.weights if name not in value]
    if missing:
        return fail(f"the returned dict has no scores for {', '.join(missing[:3])}", "returns_wrong_type")
    ev.returned()  # shapes
    return PASS


def judge_snip_values(ev: Evidence):
    if not ev.finished:
        return None
    scores, oracle = ev.returned(), ev.oracle()
    if _matches(scores, oracle):
        return PASS
    messages = {"wrong_sign": "the scores are -∂L/∂w ⊙ w (signed, the gradient's sign flipped)",
                "no_abs": "the scores are ∂L/∂w ⊙ w, with their sign",
                "gradient_only": "the scores are |∂L/∂w|, without the weight",
                "sum_loss": f"the scores are {ev.batch} (the batch size) times |∂L/∂w ⊙ w|"}
    for mistake, expected in ev.predictions().items():
        if _matches(scores, expected):
            return fail(messages[mistake], mistake)
    wrong = sum(count(~close(scores[name], oracle[name])) for name in oracle)
    return fail(f"{wrong:,} of {sum(s.numel() for s in oracle.values()):,} scores differ from |∂L/∂w ⊙ w|")


def judge_non_negative(ev: Evidence):
    if not ev.finished:
        return None
    scores = ev.returned()
    negative = sum(count(score < 0) for score in scores.values())
    if negative:
        mistake = "wrong_sign" if _matches(scores, ev.predictions()["wrong_sign"]) else "no_abs"
        return fail(f"{negative:,} scores are negative", mistake)
    return PASS


def judge_model_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    after = ev.outputs.get("state_after")
    if not isinstance(after, dict):
        return fail("the model's state could not be read after the call", "changes_model")
    for name, value in ev.inputs["theta0"].items():
        new = after.get(name)
        if not isinstance(new, torch.Tensor) or new.shape != value.shape or not torch.equal(new, value):
            return fail(f"the model's {name} changed during the call", "changes_model")
    return PASS


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("inputs and targets", "batch"),), ev.inputs, ev.outputs, "mutates_inputs")


SPEC = KataSpec(
    name=NAME,
    title="snip_scores: SNIP's |∂L/∂w ⊙ w| for every prunable weight",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    example=example,
    call=call,
    watched_inputs=("batch",),
    checks=(
        Check("returns_scores", "returns one score tensor per Linear/Conv2d weight, no biases", 1,
              "Return {name: tensor} for the weight of every nn.Linear and nn.Conv2d, named as in "
              "model.named_parameters().", judge_returns_scores, mistakes=("scores_biases", "returns_wrong_type")),
        Check("snip_values", "every score is |∂L/∂w ⊙ w| of the mean cross-entropy", 3,
              "Compute loss = F.cross_entropy(model(inputs), targets), its gradient in each weight, and "
              "(grad * weight).abs().", judge_snip_values,
              mistakes=("wrong_sign", "no_abs", "gradient_only", "sum_loss")),
        Check("non_negative", "scores are magnitudes (never negative)", 1,
              "Take the absolute value: SNIP ranks connections by |∂L/∂w ⊙ w|.", judge_non_negative,
              mistakes=("wrong_sign", "no_abs")),
        Check("model_unchanged", "leaves the model's weights as they were", 1,
              "Only compute gradients; take no optimizer step and write no weight.", judge_model_unchanged,
              mistakes=("changes_model",)),
        Check("inputs_unchanged", "leaves inputs and targets unchanged", 1, "Only read inputs and targets.",
              judge_inputs_unchanged, mistakes=("mutates_inputs",)),
    ),
)
