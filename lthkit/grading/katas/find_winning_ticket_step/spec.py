"""Kata 1: ``find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2)``.

One step of iterative magnitude pruning with ``torch.nn.utils.prune``: globally prune
``prune_amount`` of the surviving Linear/Conv2d weights by trained magnitude, then rewind the
survivors to θ₀ through ``weight_orig`` (reference: ``lthkit.grading.katas.find_winning_ticket_step.reference``).

Each hidden case builds a hidden model at its stand-in trained weights, calls the function, lets a
stand-in round of masked training move the survivors, and calls it again. The grader's oracle is
``torch.nn.utils.prune`` itself, run in the grader's process; every known mistake is recognized
from its signature (for the masks, by recomputing exactly what that mistake would produce).
"""

from __future__ import annotations

import re
from functools import cached_property

import torch

from ...hidden import architecture, hidden_state, prunable_names, stand_in_deltas
from ...oracle import close, count, differing, percent, same_masks, survivors, torch_prune_masks, total
from ...spec import PASS, Case, Check, KataSpec, Mismatch, Mistake, fail
from ..common import copied, example_case, inputs_unchanged, layer_tensor, returns_model
from .run import call as call_once
from .run import run

NAME = "find_winning_ticket_step"
CALLS = ("first", "second")

MISTAKES = (
    Mistake("hard_coded_names",
            "The function looks layers up by name (model.fc1, 'fc1.weight'), so it only works on the notebook's "
            "LeNet. Find them instead: [(m, 'weight') for m in model.modules() if isinstance(m, (nn.Linear, "
            "nn.Conv2d))], and build θ₀'s keys from model.named_modules()."),
    Mistake("linear_only",
            "Only the nn.Linear layers were pruned. Conv nets have nn.Conv2d weights too: select the layers with "
            "isinstance(module, (nn.Linear, nn.Conv2d))."),
    Mistake("not_pruned",
            "Nothing was pruned through torch.nn.utils.prune, so no layer has a weight_mask. Call "
            "prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=prune_amount) on "
            "the model you were given."),
    Mistake("prunes_biases",
            "Biases were pruned. A lottery ticket prunes weights only: give prune.global_unstructured "
            "(module, 'weight') pairs, never (module, 'bias')."),
    Mistake("per_layer",
            "Every layer lost exactly prune_amount of its own weights: that is layer-wise pruning. The kata asks "
            "for one global threshold across all layers: a single prune.global_unstructured call over every "
            "(module, 'weight') pair, not prune.l1_unstructured on each layer."),
    Mistake("ranks_theta0",
            "The pruned weights are the smallest of θ₀, not of the trained weights. Prune first, while the "
            "model still holds its trained weights, and write θ₀ into weight_orig only afterwards."),
    Mistake("random_pruning",
            "The pruned weights are not the smallest ones: that is random pruning. Rank by magnitude: "
            "pruning_method=prune.L1Unstructured, not prune.RandomUnstructured."),
    Mistake("no_compounding",
            "The pruning was made permanent (prune.remove), so the next call ranks the pruned zeros as the "
            "smallest weights and prunes them again: sparsity stays at prune_amount (0.2 → 0.2) instead of "
            "compounding (0.2 → 0.36). Keep weight_orig and weight_mask: prune.global_unstructured on an "
            "already-pruned model prunes prune_amount of the weights that remain."),
    Mistake("no_rewind",
            "The survivors kept their trained values. After pruning, rewind them to θ₀: "
            "module.weight_orig.copy_(initial_state_dict[f'{name}.weight']) under torch.no_grad()."),
    Mistake("writes_weight",
            "θ₀ was written into module.weight, but under torch.nn.utils.prune `weight` is recomputed as "
            "weight_orig * weight_mask at every forward pass, so the rewind is lost. Write θ₀ into "
            "module.weight_orig instead."),
    Mistake("reinitializes",
            "The survivors got fresh random values: that is re-initialization, the control that loses the "
            "lottery. A winning ticket goes back to its original initialization: copy θ₀ from "
            "initial_state_dict into weight_orig."),
    Mistake("mutates_initial_state",
            "initial_state_dict was changed. It is θ₀ for every later round too: only read it (copy from it "
            "into weight_orig); no in-place operations on its tensors, no assignments to its keys."),
    Mistake("returns_other",
            "Return the model you were given (return model), pruned in place: not None, a copy or another "
            "object."),
)


# ----------------------------------------------------------------------------------- the cases

CASES = tuple(Case(model, seed, amount) for model, seeds in
              (("lenet_like", (1, 2)), ("sequential", (3, 4)), ("own_names", (5, 6)), ("conv", (7, 8)))
              for seed, amount in zip(seeds, (0.2, 0.3)))


def prepare(case: Case) -> dict:
    """θ₀, the stand-in trained weights and the second round's training step, as plain tensors."""
    theta0, trained = hidden_state(case.model, case.seed)
    model = architecture(case.model)
    layers = prunable_names(model)
    return {"theta0": theta0, "trained": trained, "deltas": stand_in_deltas(theta0, case.seed + 500),
            "layers": layers, "layer_types": [type(model.get_submodule(name)).__name__ for name in layers]}


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``find_winning_ticket_step(model, initial_state_dict, prune_amount)`` as a case.

    The model's weights at the call stand for the trained weights; the grader's oracle and the
    known mistakes' predictions are computed from them, as on a hidden model.
    """
    model = arguments["model"]
    layers = prunable_names(model)
    trained = {f"{name}.weight": model.get_submodule(name).weight.detach().clone() for name in layers}
    return (example_case(arguments["prune_amount"], f"prune_amount {arguments['prune_amount']:g}"),
            {"theta0": copied(arguments["initial_state_dict"]), "trained": trained, "layers": layers,
             "layer_types": [type(model.get_submodule(name)).__name__ for name in layers]})


# ------------------------------------------------------------------------------ grader side

class Evidence:
    """What one hidden case showed, with the grader's oracle and the known mistakes' predictions."""

    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.error = case, inputs, error
        self.amount = case.amount
        self.layers = list(inputs["layers"])
        self.types = dict(zip(self.layers, inputs["layer_types"]))
        self.theta0 = {name: inputs["theta0"][f"{name}.weight"] for name in self.layers}
        self.trained = {name: inputs["trained"][f"{name}.weight"] for name in self.layers}
        self.calls = [call for call in outputs.get("calls", []) if isinstance(call, dict) and not call.get("raised")]
        self.outputs = outputs

    # -- what the submission left on the model
    def shape(self, name):
        return self.theta0[name].shape

    def mask(self, call: dict, name: str) -> torch.Tensor | None:
        """A layer's weight_mask as bool, None when it has none."""
        state = call["after"][name]
        mask = layer_tensor(state.get("weight_mask"), self.shape(name), f"{name}.weight_mask")
        return None if mask is None else mask != 0

    def effective_masks(self, call: dict, when: str = "after") -> dict[str, torch.Tensor]:
        """Which weights are pruned: the weight_mask, or for a layer without one, its zeros."""
        masks = {}
        for name in self.layers:
            state = call[when][name]
            if state.get("missing"):
                raise Mismatch(f"layer {name} is no longer in the model")
            mask = layer_tensor(state.get("weight_mask"), self.shape(name), f"{name}.weight_mask")
            if mask is None:
                weight = layer_tensor(state.get("weight"), self.shape(name), f"{name}.weight")
                mask = torch.ones(self.shape(name), dtype=torch.bool) if weight is None else weight != 0
            masks[name] = mask != 0
        return masks

    def weights_before(self, call: dict) -> dict[str, torch.Tensor]:
        """The values the call found in each layer (weight_orig under prune's hooks, else weight)."""
        values = {}
        for name in self.layers:
            state = call["before"][name]
            original = state.get("weight_orig")
            value = original if isinstance(original, torch.Tensor) else state.get("weight")
            values[name] = layer_tensor(value, self.shape(name), f"{name}.weight")
        return values

    def removed(self, call: dict) -> bool:
        """No weight_mask anywhere, yet about prune_amount of the weights are exact zeros: prune.remove."""
        if any(isinstance(call["after"][name].get("weight_mask"), torch.Tensor) for name in self.layers):
            return False
        masks = self.effective_masks(call)
        return 1 - survivors(masks) / total(masks) >= 0.5 * self.amount

    @cached_property
    def layer_mistake(self) -> str | None:
        """The mistake the first call's missing weight_masks point to, if any."""
        call = self.calls[0]
        unmasked = [name for name in self.layers
                    if not isinstance(call["after"][name].get("weight_mask"), torch.Tensor)]
        if len(unmasked) == len(self.layers):
            return "no_compounding" if self.removed(call) else "not_pruned"
        if unmasked and all(self.types[name] == "Conv2d" for name in unmasked):
            return "linear_only"
        return None

    # -- the oracle and the known mistakes' masks, computed here with torch.nn.utils.prune
    @cached_property
    def oracle(self) -> dict[str, torch.Tensor]:
        return torch_prune_masks(self.trained, None, self.amount)

    @cached_property
    def predictions(self) -> dict[str, dict[str, torch.Tensor]]:
        linear = {name: weight for name, weight in self.trained.items() if self.types[name] == "Linear"}
        linear_only = torch_prune_masks(linear, None, self.amount)
        with_biases = dict(self.trained)
        with_biases.update({key: value for key, value in self.inputs["trained"].items() if key.endswith(".bias")})
        predictions = {
            "per_layer": torch_prune_masks(self.trained, None, self.amount, scope="layer"),
            "ranks_theta0": torch_prune_masks(self.theta0, None, self.amount),
            "linear_only": {name: linear_only.get(name, torch.ones(self.shape(name), dtype=torch.bool))
                            for name in self.layers},
            "prunes_biases": {name: mask for name, mask in torch_prune_masks(with_biases, None, self.amount).items()
                              if name in self.theta0},
        }
        return predictions

    def layer_fractions(self, masks) -> str:
        return ", ".join(f"{name} {percent(1 - count(masks[name]) / masks[name].numel())}" for name in self.layers)


def _nth(index: int) -> str:
    return CALLS[index]


def judge_runs(ev: Evidence):
    if ev.error is None:
        return PASS
    message = f"raised {ev.error['type']}: {ev.error['message']}{ev.error.get('where', '')}"
    if ev.error["type"] == "NotImplementedError":
        message = f"the function is not written yet: it raises NotImplementedError{ev.error.get('where', '')}"
    names = set(re.findall(r"\b((?:fc|conv)\d)\b", ev.error["message"]))
    own = {name.split(".")[-1] for name in ev.layers} | set(ev.layers)
    mistake = "hard_coded_names" if ev.error["type"] in ("AttributeError", "KeyError") and names - own else None
    return fail(message, mistake)


def judge_prunes_every_layer(ev: Evidence):
    for index, call in enumerate(ev.calls):
        for name in ev.layers:
            if call["after"][name].get("missing"):
                return fail(f"layer {name} is no longer in the model after the {_nth(index)} call")
        unmasked = [name for name in ev.layers if ev.mask(call, name) is None]
        if not unmasked:
            continue
        if len(unmasked) == len(ev.layers):
            if ev.removed(call):
                return fail(f"after the {_nth(index)} call no layer has a weight_mask, yet "
                            f"{percent(1 - survivors(ev.effective_masks(call)) / total(ev.effective_masks(call)))} "
                            "of the weights are zero: the pruning was made permanent", "no_compounding")
            return fail(f"after the {_nth(index)} call no layer has a weight_mask: nothing was pruned with "
                        "torch.nn.utils.prune", "not_pruned")
        if all(ev.types[name] == "Conv2d" for name in unmasked):
            return fail(f"the Conv2d layers {', '.join(unmasked)} have no weight_mask: only the Linear layers were "
                        "pruned", "linear_only")
        return fail(f"layers {', '.join(unmasked)} have no weight_mask after the {_nth(index)} call")
    return PASS if ev.calls else None


def judge_biases(ev: Evidence):
    for index, call in enumerate(ev.calls):
        for name in ev.layers:
            state = call["after"][name]
            if isinstance(state.get("bias_mask"), torch.Tensor) or isinstance(state.get("bias_orig"), torch.Tensor):
                return fail(f"{name}.bias has a bias_mask after the {_nth(index)} call: the bias was pruned",
                            "prunes_biases")
            theta0_bias = ev.inputs["theta0"].get(f"{name}.bias")
            bias = state.get("bias")
            if theta0_bias is not None and isinstance(bias, torch.Tensor) and bias.shape == theta0_bias.shape:
                zeroed = int(((bias == 0) & (theta0_bias != 0)).sum())
                if zeroed:
                    return fail(f"{zeroed} of the {bias.numel()} entries of {name}.bias were set to zero by the "
                                f"{_nth(index)} call", "prunes_biases")
    return PASS if ev.calls else None


def judge_biases_rewound(ev: Evidence):
    """The extra of the paper's IMP: after each call, every bias is θ₀'s again (not asked by the kata's text)."""
    for index, call in enumerate(ev.calls):
        for name in ev.layers:
            theta0_bias = ev.inputs["theta0"].get(f"{name}.bias")
            bias = call["after"][name].get("bias")
            if theta0_bias is None:
                continue
            if not isinstance(bias, torch.Tensor) or bias.shape != theta0_bias.shape:
                return fail(f"{name}.bias is not a tensor of θ₀'s shape after the {_nth(index)} call")
            wrong = ~close(bias, theta0_bias)
            if wrong.any():
                return fail(f"{count(wrong)} of the {bias.numel()} entries of {name}.bias keep their trained values "
                            f"after the {_nth(index)} call")
    return PASS if ev.calls else None


def judge_global_magnitude(ev: Evidence):
    if not ev.calls:
        return None
    masks = ev.effective_masks(ev.calls[0])
    if same_masks(masks, ev.oracle):
        return PASS
    n_total, pruned, expected = total(masks), total(masks) - survivors(masks), total(masks) - survivors(ev.oracle)
    if pruned == 0:
        return fail("the first call pruned no weight at all", ev.layer_mistake or "not_pruned")
    messages = {
        "linear_only": "the masks are what pruning only the Linear layers gives: the Conv2d weights all survived",
        "prunes_biases": "the masks are what one threshold over weights and biases together gives",
        "per_layer": f"every layer lost {percent(ev.amount)} of its weights ({ev.layer_fractions(masks)}); one global "
                     f"threshold prunes them unevenly ({ev.layer_fractions(ev.oracle)})",
        "ranks_theta0": "the pruned weights are exactly the smallest of θ₀, not of the trained weights",
    }
    for mistake, message in messages.items():
        if same_masks(masks, ev.predictions[mistake]):
            return fail(message, mistake)
    pruned_sets = {name: ~mask for name, mask in masks.items()}

    def overlap(reference):
        hits = sum(int((pruned_sets[name] & ~reference[name]).sum()) for name in ev.layers)
        return hits / max(1, total(reference) - survivors(reference))

    if abs(pruned - expected) <= len(ev.layers) and max(overlap(ev.oracle), overlap(ev.predictions["per_layer"]),
                                                          overlap(ev.predictions["ranks_theta0"])) < 0.5:
        return fail(f"only {percent(overlap(ev.oracle))} of the pruned weights are among the {expected:,} smallest "
                    f"trained weights (chance alone gives about {percent(ev.amount)})", "random_pruning")
    return fail(f"{differing(masks, ev.oracle):,} of {n_total:,} mask entries differ from one global magnitude "
                f"threshold on the trained weights ({percent(pruned / n_total)} pruned, expected "
                f"{percent(expected / n_total)})", ev.layer_mistake)


def judge_compounds(ev: Evidence):
    if len(ev.calls) < 2:
        return None
    first, second = ev.effective_masks(ev.calls[0]), ev.effective_masks(ev.calls[1])
    n_total, kept_first, kept_second = total(first), survivors(first), survivors(second)
    expected = kept_first - round(ev.amount * kept_first)
    observed = (f"after two calls {n_total - kept_second:,} of {n_total:,} weights are pruned "
                f"({percent(1 - kept_second / n_total)})")
    should = (f"pruning {percent(ev.amount)} of the {kept_first:,} the first call left should give "
              f"{n_total - expected:,} ({percent(1 - expected / n_total)})")
    if kept_second >= kept_first and kept_first < n_total:
        mistake = "no_compounding" if ev.removed(ev.calls[0]) or ev.layer_mistake is None else ev.layer_mistake
        return fail(f"{observed}, no more than after the first call; {should}", mistake)
    revived = sum(int((second[name] & ~first[name]).sum()) for name in ev.layers)
    if revived:
        mistake = "no_compounding" if ev.removed(ev.calls[0]) else ev.layer_mistake
        return fail(f"the second call brought back {revived:,} weights the first call had pruned", mistake)
    # Per-layer rounding moves the count by up to one weight per layer; pruning biases along with
    # the weights moves it by the few biases pruned: neither is a compounding mistake.
    if abs(kept_second - expected) > max(len(ev.layers), 0.01 * kept_first):
        return fail(f"{observed}; {should}", ev.layer_mistake)
    if same_masks(first, ev.oracle):
        before = ev.weights_before(ev.calls[1])
        oracle = torch_prune_masks({name: before[name] * first[name] for name in ev.layers}, first, ev.amount)
        if not same_masks(second, oracle):
            return fail(f"the second call did not prune the smallest remaining trained weights "
                        f"({differing(second, oracle):,} mask entries differ)")
    return PASS


def _rewind_mistake(ev: Evidence, call: dict, name: str, values: torch.Tensor, survivors_mask: torch.Tensor):
    """Why the survivors of ``name`` are not θ₀: kept trained values, θ₀ in the wrong place, or fresh ones."""
    before = ev.weights_before(call)[name]
    if before is not None and bool(close(values, before)[survivors_mask].all()):
        written = call["after"][name].get("weight")
        if isinstance(written, torch.Tensor) and written.shape == values.shape \
                and bool(close(written, ev.theta0[name])[survivors_mask].all()):
            return "writes_weight"
        return "no_rewind"
    matches_theta0 = close(values, ev.theta0[name])[survivors_mask].float().mean()
    matches_before = 0.0 if before is None else close(values, before)[survivors_mask].float().mean()
    return "reinitializes" if max(float(matches_theta0), float(matches_before)) < 0.5 else None


def _rewind_message(mistake: str | None, where: str, wrong: int, kept: int) -> str:
    what = {"writes_weight": "still hold their trained values in weight_orig (θ₀ went into weight)",
            "no_rewind": "still hold their trained values",
            "reinitializes": "hold new values, neither θ₀ nor the trained ones"}.get(mistake, "differ from θ₀")
    return f"{wrong:,} of the {kept:,} surviving weights of {where} {what}"


def judge_rewinds(ev: Evidence):
    for index, call in enumerate(ev.calls):
        for name in ev.layers:
            state = call["after"][name]
            original = layer_tensor(state.get("weight_orig"), ev.shape(name), f"{name}.weight_orig")
            mask = ev.mask(call, name)
            if original is None or mask is None:
                mistake = "no_compounding" if ev.removed(call) else ev.layer_mistake
                return fail(f"{name} has no weight_orig after the {_nth(index)} call", mistake)
            wrong = ~close(original, ev.theta0[name]) & mask
            if wrong.any():
                mistake = _rewind_mistake(ev, call, name, original, mask)
                return fail(_rewind_message(mistake, f"{name}.weight_orig after the {_nth(index)} call",
                                            count(wrong), count(mask)), mistake)
    return PASS if ev.calls else None


def judge_effective_weights(ev: Evidence):
    for index, call in enumerate(ev.calls):
        if call.get("forward_error"):
            return fail(f"the model fails on a forward pass after the {_nth(index)} call: {call['forward_error']}")
        masks = ev.effective_masks(call)
        for name in ev.layers:
            weight = layer_tensor(call["forward"].get(name), ev.shape(name), f"{name}.weight after a forward pass")
            if weight is None:
                return fail(f"{name} has no weight after a forward pass")
            expected = ev.theta0[name] * masks[name]
            wrong = ~close(weight, expected)
            if wrong.any():
                if ev.mask(call, name) is None:
                    return fail(f"{name}.weight after a forward pass is not θ₀ ⊙ mask ({count(wrong):,} entries "
                                "differ) and the layer has no weight_mask", ev.layer_mistake)
                wrong_survivors = wrong & masks[name]
                if not wrong_survivors.any():
                    return fail(f"{count(wrong):,} pruned entries of {name}.weight are not zero after a forward pass")
                mistake = _rewind_mistake(ev, call, name, weight, masks[name])
                where = f"{name}.weight after a forward pass following the {_nth(index)} call"
                return fail(_rewind_message(mistake, where, count(wrong_survivors), count(masks[name])), mistake)
    return PASS if ev.calls else None


def judge_initial_state(ev: Evidence):
    if not ev.calls:
        return None
    pairs = (("initial_state_dict", "theta0"),)
    for index, call in enumerate(ev.calls):
        finding = inputs_unchanged(pairs, ev.inputs, {}, "mutates_initial_state", {"theta0": call.get("theta0_after")})
        if finding.status != "pass":
            return fail(f"after the {_nth(index)} call, {finding.message}", finding.mistake)
    # What the memory shared with the grader holds after both calls (nothing in the sandbox can hide a change).
    finding = inputs_unchanged(pairs, ev.inputs, {"inputs_after": ev.outputs.get("inputs_after")},
                               "mutates_initial_state", {"theta0": ev.inputs["theta0"]})
    return finding if finding.status == "pass" else fail(f"after the calls, {finding.message}", finding.mistake)


def judge_returns_model(ev: Evidence):
    for index, call in enumerate(ev.calls):
        finding = returns_model(call, f"the {_nth(index)} call")
        if finding.status != "pass":
            return finding
    return PASS if ev.calls else None


SPEC = KataSpec(
    name=NAME,
    title="find_winning_ticket_step: one step of iterative magnitude pruning",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    watched_inputs=("theta0",),
    example=example,
    call=call_once,
    chained=True,
    checks=(
        Check("runs_on_any_model", "runs on any model: a Sequential MLP, other layer names, a conv net", 1,
              "The function raised on a hidden model. It must work on any network of nn.Linear and nn.Conv2d "
              "layers, whatever their names, with or without biases.",
              judge_runs, mistakes=("hard_coded_names",), about_errors=True, hidden_only=True),
        Check("prunes_every_layer", "prunes the weights of every Linear and Conv2d layer (weight_mask)", 1,
              "Prune every nn.Linear and nn.Conv2d weight through torch.nn.utils.prune, so that each layer ends "
              "up with weight_orig and weight_mask.",
              judge_prunes_every_layer, mistakes=("linear_only", "no_compounding", "not_pruned")),
        Check("biases_not_pruned", "leaves the biases unpruned", 1,
              "Prune weights only; biases stay as they are.",
              judge_biases, mistakes=("prunes_biases",)),
        Check("global_magnitude", "one global threshold: prunes the smallest trained weights across all layers", 2,
              "Rank the surviving weights of all layers together by |trained weight| and prune the smallest "
              "prune_amount of them: prune.global_unstructured with prune.L1Unstructured.",
              judge_global_magnitude,
              mistakes=("linear_only", "prunes_biases", "per_layer", "ranks_theta0", "random_pruning", "not_pruned")),
        Check("compounds", "prunes prune_amount of the remaining weights each call (0.2 → 0.36)", 1,
              "Each call prunes prune_amount of the weights still there, so two calls at 0.2 leave 36% pruned.",
              judge_compounds, mistakes=("no_compounding", "linear_only", "prunes_biases", "not_pruned")),
        Check("rewinds_weight_orig", "the survivors' weight_orig equals θ₀", 1,
              "After pruning, copy θ₀ from initial_state_dict into every layer's weight_orig.",
              judge_rewinds,
              mistakes=("writes_weight", "no_rewind", "reinitializes", "no_compounding", "linear_only", "not_pruned")),
        Check("effective_weights", "after a forward pass, weight equals θ₀ ⊙ mask", 1,
              "After a forward pass, module.weight (= weight_orig * weight_mask) must equal θ₀ ⊙ mask.",
              judge_effective_weights,
              mistakes=("writes_weight", "no_rewind", "reinitializes", "linear_only", "not_pruned")),
        Check("initial_state_untouched", "leaves initial_state_dict untouched", 1,
              "Do not modify initial_state_dict.",
              judge_initial_state, mistakes=("mutates_initial_state",)),
        Check("returns_model", "returns the model it was given", 1,
              "Return the model.",
              judge_returns_model, mistakes=("returns_other",)),
        # The kata's text (ML-Katas) asks only for the surviving weights back at θ₀ through weight_orig; the
        # paper's IMP resets the biases too. Reported, worth nothing, never required.
        Check("biases_rewound", "the biases are back at θ₀ too, as the paper's IMP does", 0,
              "The paper's IMP restarts the whole network from θ₀: also copy initial_state_dict[f'{name}.bias'] into "
              "each layer's bias (under torch.no_grad()). The kata does not ask for it.",
              judge_biases_rewound, required=False),
    ),
)
