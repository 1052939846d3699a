"""Notebook 9's kata: ``compact_linear(weight, bias, mask_in, mask_out) -> (weight, bias, keep)``.

One hidden fully connected layer of a ticket, followed by a ReLU, shrunk to the neurons that can matter
(notebook 9): ``mask_in`` is the layer's own mask ``(out, in)`` (each neuron's incoming weights),
``mask_out`` the next layer's ``(next, out)`` (each neuron's outgoing weights). A neuron is kept when at
least one outgoing weight survives **and** it can output something other than 0: an incoming weight
survives, or its bias is positive (then it outputs the constant ``relu(bias)``, which the next layer
still reads). Return the kept rows of the masked weight (every pruned entry exactly 0, every column
kept), of the bias, and ``keep``, a boolean tensor of shape ``(out,)``; leave the inputs unchanged
(reference: ``lthkit.grading.katas.compact_linear.reference``, the library's ``compact_linear``).

The grader's oracle is plain torch in its own process: the keep rule on the masks, the masked rows, and
the function itself: the next layer's masked weights applied to the ReLU of the layer, for the whole
layer and for the compact one, on seeded random inputs.

Each hidden case is a seeded layer and its next layer's mask; most have planted neurons: one with no
incoming weight and a positive bias (kept), one with a negative bias and one with a bias of exactly 0
(both removed), one with no outgoing weight (removed), and an input no weight reads (its column stays).
"""

from __future__ import annotations

import torch

from ...oracle import close, count
from ...spec import PASS, Case, Check, KataSpec, Mismatch, Mistake, fail
from ..common import copied, example_case, inputs_unchanged
from .run import ARGUMENTS, call, run

NAME = "compact_linear"

MISTAKES = (
    Mistake("returns_wrong_type",
            "Return a tuple of three tensors, (weight, bias, keep): keep a boolean tensor of shape (out,), True for "
            "each neuron kept (mask_out.any(0) & (mask_in.any(1) | (bias > 0)) has that shape)."),
    Mistake("wrong_axis",
            "keep has the length of the wrong axis. A neuron's incoming weights are a row of mask_in (any over "
            "dim 1), its outgoing weights a column of mask_out (any over dim 0): keep has one entry per neuron, "
            "weight.shape[0]."),
    Mistake("incoming_only",
            "Neurons that feed nothing were kept: only the incoming weights were looked at. A neuron whose outgoing "
            "weights (its column of mask_out) are all pruned reaches nothing: keep requires mask_out.any(0)."),
    Mistake("outgoing_only",
            "Neurons with no surviving incoming weight and a bias of 0 or less were kept: they output relu(bias) = 0 "
            "whatever the input. Keep a neuron only if mask_in.any(1) or bias > 0, and it has an outgoing weight."),
    Mistake("drops_live_bias",
            "A neuron with no incoming weight but a positive bias was removed: it outputs the constant relu(bias) > 0, "
            "which the next layer still reads, so removing it changes the network. Keep it: mask_in.any(1) | (bias > 0)."),
    Mistake("unmasked",
            "The compact weight holds pruned weights: the rows were cut from the raw weight. Multiply by the mask "
            "first: (weight * mask_in)[keep]."),
    Mistake("cuts_inputs",
            "Columns were removed too. This layer's inputs are the previous layer's neurons: which of them stay is "
            "decided there (by the previous layer's call). Keep every column: (weight * mask_in)[keep] only cuts rows."),
    Mistake("bias_forgotten",
            "The bias was returned whole. It has one entry per neuron: return bias[keep], the entries of the kept "
            "neurons."),
    Mistake("mutates_inputs",
            "weight, bias, mask_in or mask_out was changed. Only read them: weight * mask_in makes a new tensor "
            "(weight.mul_(mask_in) would overwrite the ticket's weight)."),
)

#: The hidden layers by seed: (neurons, inputs, next layer's neurons, planted neurons, biases all ≤ 0).
LAYERS = {61: (12, 10, 7, True, False), 62: (40, 30, 20, True, False), 63: (20, 784, 10, True, False),
          64: (8, 5, 3, False, False), 65: (30, 16, 12, True, True)}
CASES = (Case("layer", 61, 0.3, "12 neurons of 10 inputs, next layer 7, 30% of the weights", about="-"),
         Case("layer", 62, 0.05, "40 neurons of 30 inputs, next layer 20, 5% of the weights", about="-"),
         Case("layer", 63, 0.02, "20 neurons of 784 inputs, next layer 10, 2% of the weights", about="-"),
         Case("layer", 64, 1.0, "8 neurons of 5 inputs, next layer 3, nothing pruned", about="-"),
         Case("layer", 65, 0.1, "30 neurons of 16 inputs, next layer 12, 10%, every bias at most 0", about="-"))


def prepare(case: Case) -> dict:
    """A seeded layer (weight, bias, its mask) and the next layer's mask, with planted neurons."""
    out, inputs, following, planted, non_positive = LAYERS[case.seed]
    generator = torch.Generator().manual_seed(case.seed)
    weight = torch.randn(out, inputs, generator=generator) * 0.3
    bias = torch.randn(out, generator=generator) * 0.2
    if non_positive:
        bias = -bias.abs()
    mask_in = torch.rand(out, inputs, generator=generator) < case.amount
    mask_out = torch.rand(following, out, generator=generator) < case.amount
    if planted:
        for neuron, value in ((0, 0.5), (1, -0.5), (2, 0.0)):  # no incoming weight; a positive, negative, zero bias
            mask_in[neuron] = False
            mask_out[neuron % following, neuron] = True
            if not non_positive or value <= 0:
                bias[neuron] = value
        mask_out[:, 3] = False  # no outgoing weight
        mask_in[3, 0] = True
        mask_in[4, 1], mask_out[1 % following, 4] = True, True  # both: kept
        mask_in[:, -1] = False  # an input no weight reads: its column stays all the same
    return {"layer": {"weight": weight, "bias": bias, "mask_in": mask_in, "mask_out": mask_out}}


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``compact_linear(weight, bias, mask_in, mask_out)`` as a case."""
    layer = copied({name: arguments[name] for name in ARGUMENTS})
    rows, columns = tuple(layer["weight"].shape) if isinstance(layer["weight"], torch.Tensor) else ("?", "?")
    return example_case(0.0, f"your layer of {rows} neurons of {columns} inputs"), {"layer": layer}


class Evidence:
    """One case's layer, what came back, and the oracle (plain torch)."""

    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        layer = inputs["layer"]
        self.weight, self.bias = layer["weight"], layer["bias"]
        self.mask_in, self.mask_out = layer["mask_in"].bool(), layer["mask_out"].bool()
        self.finished = "returned" in outputs
        self.feeds = self.mask_out.any(0)
        self.receives = self.mask_in.any(1)
        self.keep = self.feeds & (self.receives | (self.bias > 0))

    def predictions(self) -> dict[str, torch.Tensor]:
        """What ``keep`` is under each known mistake of the keep rule."""
        return {"incoming_only": self.receives.clone(), "outgoing_only": self.feeds.clone(),
                "drops_live_bias": self.feeds & self.receives}

    def item(self, index: int):
        value = self.outputs.get("returned")
        if not isinstance(value, list) or len(value) <= index:
            raise Mismatch(f"returned {self.outputs.get('returned_type')}, not (weight, bias, keep)")
        return value[index]

    def their_keep(self) -> torch.Tensor:
        """The returned ``keep``, checked: a boolean tensor of shape (out,), else :class:`Mismatch`."""
        keep = self.item(2)
        if not isinstance(keep, torch.Tensor):
            raise Mismatch(f"keep is {keep}, not a tensor")
        if keep.dtype != torch.bool or tuple(keep.shape) != (self.weight.shape[0],):
            raise Mismatch(f"keep is a {str(keep.dtype).replace('torch.', '')} tensor of shape {tuple(keep.shape)}, "
                           f"not a boolean tensor of shape ({self.weight.shape[0]},)")
        return keep


def judge_returns_triple(ev: Evidence):
    if not ev.finished:
        return None
    value = ev.outputs.get("returned")
    if not isinstance(value, list) or ev.outputs.get("returned_length") != 3:
        return fail(f"returned {ev.outputs.get('returned_type')}, not (weight, bias, keep)", "returns_wrong_type")
    names = ("weight", "bias", "keep")
    for name, item in zip(names, value):
        if not isinstance(item, torch.Tensor):
            return fail(f"the returned {name} is {item}, not a tensor", "returns_wrong_type")
    keep = value[2]
    out, inputs, following = ev.weight.shape[0], ev.weight.shape[1], ev.mask_out.shape[0]
    if keep.dtype == torch.bool and keep.dim() == 1 and keep.shape[0] != out and keep.shape[0] in (inputs, following):
        axis = "the inputs" if keep.shape[0] == inputs else "the next layer's neurons"
        return fail(f"keep has {keep.shape[0]} entries, one per {axis}, not one per neuron ({out})", "wrong_axis")
    try:
        ev.their_keep()
    except Mismatch as mismatch:
        return fail(str(mismatch), "returns_wrong_type")
    return PASS


def judge_keeps_right_neurons(ev: Evidence):
    if not ev.finished:
        return None
    keep = ev.their_keep()
    if torch.equal(keep, ev.keep):
        return PASS
    messages = {"incoming_only": "neurons whose outgoing weights are all pruned were kept",
                "outgoing_only": "neurons with no incoming weight and a bias ≤ 0 (they always output 0) were kept",
                "drops_live_bias": "a neuron with no incoming weight and a positive bias was removed"}
    for mistake, predicted in ev.predictions().items():
        if torch.equal(keep, predicted):
            return fail(messages[mistake], mistake)
    extra, missing = count(keep & ~ev.keep), count(~keep & ev.keep)
    return fail(f"{extra} neuron(s) kept that cannot matter, {missing} removed that can")


def _tensor(ev: Evidence, index: int, name: str) -> torch.Tensor:
    value = ev.item(index)
    if not isinstance(value, torch.Tensor):
        raise Mismatch(f"the returned {name} is {value}, not a tensor")
    return value


def judge_compact_weight(ev: Evidence):
    if not ev.finished:
        return None
    keep, weight = ev.their_keep(), _tensor(ev, 0, "weight")
    rows, inputs = count(keep), ev.weight.shape[1]
    if weight.dim() == 2 and weight.shape[0] == rows and weight.shape[1] < inputs:
        return fail(f"the compact weight has {weight.shape[1]} columns, not the layer's {inputs}", "cuts_inputs")
    if tuple(weight.shape) != (rows, inputs):
        return fail(f"the compact weight has shape {tuple(weight.shape)}, not ({rows}, {inputs}): the kept rows")
    expected = (ev.weight * ev.mask_in)[keep]
    if bool(close(weight, expected).all()):
        return PASS
    if bool(close(weight, ev.weight[keep]).all()):
        pruned = count(~ev.mask_in[keep])
        return fail(f"the compact weight keeps the values of {pruned:,} pruned weights", "unmasked")
    return fail(f"{count(~close(weight, expected)):,} entries of the compact weight are not (weight * mask_in)[keep]")


def judge_compact_bias(ev: Evidence):
    if not ev.finished:
        return None
    keep, bias = ev.their_keep(), _tensor(ev, 1, "bias")
    if tuple(bias.shape) == tuple(ev.bias.shape) and count(keep) != ev.bias.shape[0] and \
            bool(close(bias, ev.bias).all()):
        return fail(f"the whole bias ({ev.bias.shape[0]} entries) was returned for {count(keep)} kept neurons",
                    "bias_forgotten")
    if tuple(bias.shape) != (count(keep),) or not bool(close(bias, ev.bias[keep]).all()):
        return fail(f"the compact bias is not bias[keep] (shape {tuple(bias.shape)}, expected ({count(keep)},))")
    return PASS


def judge_same_function(ev: Evidence):
    """The next layer's inputs, computed through the whole layer and through the compact one, agree."""
    if not ev.finished:
        return None
    keep, weight, bias = ev.their_keep(), _tensor(ev, 0, "weight"), _tensor(ev, 1, "bias")
    rows, inputs = count(keep), ev.weight.shape[1]
    if tuple(weight.shape) != (rows, inputs) or tuple(bias.shape) != (rows,):
        raise Mismatch(f"the compact layer's shapes ({tuple(weight.shape)}, {tuple(bias.shape)}) do not fit {rows} "
                       f"kept neurons of {inputs} inputs")
    generator = torch.Generator().manual_seed(ev.case.seed + 1)
    x = torch.randn(64, inputs, generator=generator, dtype=torch.float64)
    following = torch.randn(ev.mask_out.shape, generator=generator, dtype=torch.float64) * ev.mask_out
    whole = torch.relu(x @ (ev.weight.double() * ev.mask_in).T + ev.bias.double()) @ following.T
    compact = torch.relu(x @ weight.double().T + bias.double()) @ following[:, keep].T
    if bool(close(compact, whole).all()):
        return PASS
    worst = float((compact - whole).abs().max())
    mistake = None
    if not torch.equal(keep, ev.keep) and torch.equal(keep, ev.predictions()["drops_live_bias"]):
        mistake = "drops_live_bias"
    elif bool(close(weight, ev.weight[keep]).all()) and count(~ev.mask_in[keep]):
        mistake = "unmasked"
    return fail(f"the next layer reads different values through the compact layer (up to {worst:.3g} apart)", mistake)


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("weight, bias, mask_in and mask_out", "layer"),), ev.inputs, ev.outputs,
                            "mutates_inputs")


SPEC = KataSpec(
    name=NAME,
    title="compact_linear: one hidden layer of a ticket shrunk to the neurons that can matter",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    example=example,
    call=call,
    watched_inputs=("layer",),
    checks=(
        Check("returns_triple", "returns (weight, bias, keep), keep a boolean tensor with one entry per neuron", 1,
              "Return (weight, bias, keep) with keep = a boolean tensor of shape (weight.shape[0],).",
              judge_returns_triple, mistakes=("wrong_axis", "returns_wrong_type")),
        Check("keeps_right_neurons", "keeps exactly the neurons that feed something and can output more than 0", 3,
              "keep = mask_out.any(0) & (mask_in.any(1) | (bias > 0)).", judge_keeps_right_neurons,
              mistakes=("incoming_only", "outgoing_only", "drops_live_bias")),
        Check("compact_weight", "the compact weight is the kept rows of the masked weight, every column kept", 2,
              "Return (weight * mask_in)[keep].", judge_compact_weight, mistakes=("unmasked", "cuts_inputs")),
        Check("compact_bias", "the compact bias is the kept entries of the bias", 1, "Return bias[keep].",
              judge_compact_bias, mistakes=("bias_forgotten",)),
        Check("same_function", "the next layer reads the same values through the compact layer", 2,
              "Keep every neuron whose output reaches the next layer, with its masked weights and its bias.",
              judge_same_function, mistakes=("drops_live_bias", "unmasked")),
        Check("inputs_unchanged", "leaves weight, bias, mask_in and mask_out unchanged", 1,
              "Only read the inputs; build new tensors.", judge_inputs_unchanged, mistakes=("mutates_inputs",)),
    ),
)
