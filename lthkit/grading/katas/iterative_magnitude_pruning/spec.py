"""Notebook 2's kata: ``iterative_magnitude_pruning(new_network, train, rounds, rate, output_rate) -> dict``.

The whole IMP loop with ``torch.nn.utils.prune``, around a training function the caller provides: train the
dense network, then each round prune ``rate`` of every hidden layer's surviving weights by trained magnitude
(``output_rate`` for the output layer), rewind the survivors (and the biases) to θ₀ through ``weight_orig``,
and train the ticket and its two controls: the ticket's mask on a fresh initialization (random re-init) and
θ₀ with the ticket's per-layer counts at random positions (random pruning). It returns what ``train`` returned
for each (reference: ``lthkit.grading.katas.iterative_magnitude_pruning.reference``).

Each hidden case gives the learner's loop a hidden network maker (a new seeded draw at each call) and a
stand-in ``train`` that moves the trainable parameters as a round of SGD would and records, for every call,
the network it was handed and what training left (:mod:`.run`). The grader then follows the loop round by
round: each round's ticket mask against ``torch.nn.utils.prune`` run here on the learner's own previous round
(so that one wrong round does not hide the next), the counts against the compounding schedule of each layer's
rate, the starting weights against θ₀ and against the network maker's draws, the pruned weights after every
training call, and the controls against the ticket of the same round.
"""

from __future__ import annotations

import re
from functools import cached_property

import torch

from ...hidden import architecture, build_hidden, prunable_names
from ...oracle import close, count, differing, percent, torch_prune_masks
from ...spec import PASS, Case, Check, Finding, KataSpec, Mismatch, Mistake, fail
from ..common import layer_tensor
from .run import call_value, run

NAME = "iterative_magnitude_pruning"
KINDS = ("ticket", "reinit", "random_prune")

MISTAKES = (
    Mistake("hard_coded_names",
            "The loop looks layers up by name (model.fc1, 'fc1.weight'), so it only works on the notebook's "
            "LeNet. Find them instead: [(name, m) for name, m in model.named_modules() if isinstance(m, "
            "(nn.Linear, nn.Conv2d))]; the output layer is the last of them."),
    Mistake("wrong_results",
            "Return a dict {'ticket': [...], 'reinit': [...], 'random_prune': [...]} holding what train(...) "
            "returned: the ticket in rounds 0 to rounds (rounds + 1 numbers), each control in rounds 1 to rounds "
            "(rounds numbers), one train call per entry."),
    Mistake("global_scope",
            "One magnitude threshold was taken across all layers. IMP here is layer-wise: each layer loses its own "
            "fraction of its own survivors, prune.l1_unstructured(module, 'weight', amount=...) on every layer "
            "(not prune.global_unstructured)."),
    Mistake("one_rate",
            "The output layer was pruned at rate like the hidden layers. It has few weights and every one counts: "
            "prune it at output_rate (the paper's LeNet: 20% for the hidden layers, 10% for the output layer). "
            "The output layer is the last Linear/Conv2d layer."),
    Mistake("no_compounding",
            "Each round pruned rate of *all* the weights, the pruned zeros included, so the density stays at "
            "1 - rate instead of shrinking as (1 - rate)^round. Prune the survivors only: keep the pruning hooks "
            "(weight_orig, weight_mask) on the network across rounds, and prune.l1_unstructured on an already "
            "pruned layer prunes amount of the weights still alive."),
    Mistake("ranks_theta0",
            "The pruned weights are the smallest of θ₀, not of the trained weights: the network was rewound "
            "before it was pruned. Prune right after train(...), while the layers hold their trained values, "
            "and rewind afterwards."),
    Mistake("prunes_biases",
            "Biases were pruned. A lottery ticket prunes weights only: prune (module, 'weight'), never "
            "(module, 'bias')."),
    Mistake("writes_weight",
            "θ₀ went into module.weight, but under torch.nn.utils.prune `weight` is recomputed as "
            "weight_orig * weight_mask at every forward pass, so training started from the trained values. "
            "Rewind the real parameter: module.weight_orig.copy_(theta0[f'{name}.weight']) under "
            "torch.no_grad()."),
    Mistake("no_rewind",
            "The survivors started the round from the values they were trained to: that is pruning followed by "
            "fine-tuning, not a lottery ticket. After pruning, copy θ₀ (taken before the first train call) into "
            "every weight_orig."),
    Mistake("biases_kept",
            "The weights went back to θ₀ but the biases kept their trained values. The whole network restarts "
            "from θ₀: copy theta0[name] into the biases too."),
    Mistake("masks_not_enforced",
            "Training brought pruned weights back: they were zeroed once (or the pruning was made permanent with "
            "prune.remove), but train(...) updates every entry of a plain parameter. Keep the pruning hooks on the "
            "network while it trains: with weight_orig and weight_mask, the weight it uses is weight_orig * "
            "weight_mask at every step."),
    Mistake("reinit_theta0",
            "The random re-init control started from θ₀, which makes it the ticket itself. Take a fresh network "
            "from new_network(), give it the ticket's masks (prune.custom_from_mask) and train that."),
    Mistake("reinit_other_mask",
            "The random re-init control did not use the ticket's mask of the same round. It keeps the ticket's "
            "connections and changes only the initial values: prune.custom_from_mask(module, 'weight', "
            "ticket_module.weight_mask) on each layer of the fresh network."),
    Mistake("random_counts",
            "The random pruning control kept a different number of weights in some layer than the ticket. It must "
            "keep exactly the ticket's count in every layer, at random positions: e.g. "
            "torch.randperm(mask.numel())[:int(mask.sum())] as the surviving positions (a Bernoulli draw only "
            "keeps about the right count)."),
)


# ----------------------------------------------------------------------------------- the cases

#: (hidden model, seed) → (rounds, output layer's rate); the case's ``amount`` is the hidden layers' rate.
BUDGETS = {("lenet_like", 41): (3, 0.1), ("sequential", 42): (2, 0.25), ("own_names", 43): (3, 0.2),
           ("conv", 44): (2, 0.15)}
RATES = {("lenet_like", 41): 0.2, ("sequential", 42): 0.5, ("own_names", 43): 0.35, ("conv", 44): 0.3}
CASES = tuple(Case(model, seed, RATES[model, seed], f"{rounds} rounds, output layer at {output_rate:g}", about="rate")
              for (model, seed), (rounds, output_rate) in BUDGETS.items())


def prepare(case: Case) -> dict:
    """The budget (rounds and the output layer's rate) and the layout of the hidden network."""
    rounds, output_rate = BUDGETS[case.model, case.seed]
    model = architecture(case.model)
    layers = prunable_names(model)
    return {"rounds": rounds, "output_rate": output_rate, "layers": layers,
            "layer_types": [type(model.get_submodule(name)).__name__ for name in layers]}


def schedule(size: int, amount: float, rounds: int) -> int:
    """How many of ``size`` weights survive ``rounds`` rounds that each prune ``amount`` of the survivors
    (``torch.nn.utils.prune`` prunes ``round(amount * survivors)``).

    Example:
        >>> [schedule(100, 0.2, r) for r in range(4)]
        [100, 80, 64, 51]
    """
    for _ in range(rounds):
        size -= round(amount * size)
    return size


# ------------------------------------------------------------------------------ grader side

class Evidence:
    """What one hidden case showed: every training call, the learner's results, and the grader's expectations."""

    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        self.rounds, self.rate, self.output_rate = inputs["rounds"], case.amount, inputs["output_rate"]
        self.layers = list(inputs["layers"])
        self.types = dict(zip(self.layers, inputs["layer_types"]))
        self.output_layer = self.layers[-1]
        self.calls = [call if isinstance(call, dict) else {"raised": True} for call in outputs.get("calls", [])]
        self.finished = "returned" in outputs
        self.shapes = {name: tuple(architecture(case.model).get_submodule(name).weight.shape) for name in self.layers}

    # -- which call is which
    @cached_property
    def series(self) -> dict[str, list[int]]:
        """``{kind: [call index, ...]}`` from what the learner returned; :class:`Mismatch` saying what is wrong."""
        returned = self.outputs.get("returned")
        if not isinstance(returned, dict):
            raise Mismatch(f"the function returned {returned if isinstance(returned, str) else type(returned).__name__}"
                           ", not a dict {'ticket': [...], 'reinit': [...], 'random_prune': [...]}")
        missing = [kind for kind in KINDS if kind not in returned]
        if missing:
            raise Mismatch(f"the returned dict has no {', '.join(repr(kind) for kind in missing)}")
        by_value = {call_value(index): index for index, call in enumerate(self.calls) if not call.get("raised")}
        series, used = {}, set()
        for kind in KINDS:
            values, wanted = returned[kind], self.rounds + 1 if kind == "ticket" else self.rounds
            if not isinstance(values, list) or len(values) != wanted:
                found = f"{len(values)} entries" if isinstance(values, list) else values
                rounds = f"rounds 0 to {self.rounds}" if kind == "ticket" else f"rounds 1 to {self.rounds}"
                raise Mismatch(f"results[{kind!r}] has {found}; with {self.rounds} rounds it needs {wanted} ({rounds})")
            indices = []
            for position, value in enumerate(values):
                if value not in by_value:
                    raise Mismatch(f"results[{kind!r}][{position}] is {value!r}, not a number train(...) returned")
                if by_value[value] in used:
                    raise Mismatch(f"results[{kind!r}][{position}] is what an earlier entry's train call returned: "
                                   "every entry needs a training of its own")
                used.add(by_value[value])
                indices.append(by_value[value])
            series[kind] = indices
        return series

    def unreadable(self) -> Finding | None:
        """An error finding when the results do not say which call was which (its own check fails them)."""
        try:
            self.series  # noqa: B018 - it raises Mismatch for results it cannot read
        except Mismatch:
            return Finding("error", "not checked: the returned results do not say which train(...) call was which "
                                    "(see the check of what the function returns)")
        return None

    def call(self, kind: str, round_: int) -> dict:
        """The training call of ``kind`` in round ``round_`` (the controls start at round 1)."""
        return self.calls[self.series[kind][round_ if kind == "ticket" else round_ - 1]]

    # -- what a call was handed and what it left
    def state(self, call: dict, name: str) -> dict:
        state = call["before"][name]
        if not isinstance(state, dict) or state.get("missing"):
            raise Mismatch(f"layer {name} is no longer in the network handed to train(...)")
        return state

    def trainable(self, call: dict, name: str) -> torch.Tensor:
        """The values training starts from: ``weight_orig`` under pruning hooks, else ``weight``."""
        state = self.state(call, name)
        value = state.get("weight_orig") if isinstance(state.get("weight_orig"), torch.Tensor) else state.get("weight")
        value = layer_tensor(value, self.shapes[name], f"{name}.weight")
        if value is None:
            raise Mismatch(f"layer {name} has no weight")
        return value

    def hooked(self, call: dict, name: str) -> bool:
        return isinstance(self.state(call, name).get("weight_mask"), torch.Tensor)

    def mask(self, call: dict, name: str) -> torch.Tensor:
        """Which weights a call trains with: the ``weight_mask``, or for a layer without one, its non-zeros."""
        state = self.state(call, name)
        mask = layer_tensor(state.get("weight_mask"), self.shapes[name], f"{name}.weight_mask")
        if mask is None:
            return self.trainable(call, name) != 0
        return mask != 0

    def masks(self, call: dict) -> dict[str, torch.Tensor]:
        return {name: self.mask(call, name) for name in self.layers}

    def bias(self, call: dict, name: str) -> torch.Tensor | None:
        state = self.state(call, name)
        value = state.get("bias_orig") if isinstance(state.get("bias_orig"), torch.Tensor) else state.get("bias")
        return value if isinstance(value, torch.Tensor) else None

    def trained(self, call: dict) -> dict[str, torch.Tensor]:
        """The weights a call's training left (after a forward pass)."""
        if call.get("raised"):
            raise Mismatch("a train(...) call did not finish")
        return {name: layer_tensor(call["after"].get(name), self.shapes[name], f"{name}.weight after training")
                for name in self.layers}

    def amount(self, name: str) -> float:
        return self.output_rate if name == self.output_layer else self.rate

    @cached_property
    def theta0(self) -> dict[str, torch.Tensor]:
        """θ₀ as the dense round started from: the weights and the biases (``name.weight``, ``name.bias``)."""
        call = self.call("ticket", 0)
        values = {f"{name}.weight": self.trainable(call, name) for name in self.layers}
        values.update({f"{name}.bias": bias for name in self.layers if (bias := self.bias(call, name)) is not None})
        return values

    @cached_property
    def draws(self) -> list[dict[str, torch.Tensor]]:
        """The weights of every network ``new_network()`` handed out, rebuilt here from their seeds."""
        seeds = [seed for seed in self.outputs.get("draws", []) if isinstance(seed, int)][:64]
        return [{name: build_hidden(self.case.model, seed).get_submodule(name).weight.detach() for name in self.layers}
                for seed in seeds]

    # -- the oracle, and what the known mistakes would have pruned
    def expected_mask(self, round_: int) -> dict[str, torch.Tensor]:
        """Layer-wise magnitude pruning of round ``round_ - 1``'s trained ticket, by ``torch.nn.utils.prune``."""
        previous = self.call("ticket", round_ - 1)
        trained, masks = self.trained(previous), self.masks(previous)
        return {name: torch_prune_masks({name: trained[name]}, {name: masks[name]}, self.amount(name))[name]
                for name in self.layers}

    def predictions(self, round_: int) -> dict[str, dict[str, torch.Tensor]]:
        previous = self.call("ticket", round_ - 1)
        trained, masks = self.trained(previous), self.masks(previous)
        theta0 = {name: self.theta0[f"{name}.weight"] for name in self.layers}
        hidden = [name for name in self.layers if name != self.output_layer]
        split = torch_prune_masks({name: trained[name] for name in hidden}, {name: masks[name] for name in hidden},
                                  self.rate)
        split.update(torch_prune_masks({self.output_layer: trained[self.output_layer]},
                                       {self.output_layer: masks[self.output_layer]}, self.output_rate))

        def layer_wise(weights, current, amount_of):
            return {name: torch_prune_masks({name: weights[name]}, None if current is None else {name: current[name]},
                                            amount_of(name))[name] for name in self.layers}

        return {
            "global_scope": torch_prune_masks(trained, masks, self.rate),
            "global_scope_split": split,
            "ranks_theta0": layer_wise(theta0, masks, self.amount),
            "one_rate": layer_wise(trained, masks, lambda name: self.rate),
            "no_compounding": layer_wise({name: trained[name] * masks[name] for name in self.layers}, None,
                                         self.amount),
        }

    def count_mistake(self, round_: int, got: dict[str, torch.Tensor]) -> str | None:
        """The mistake the per-layer counts of round ``round_``'s ticket point to, if any."""
        counts = {name: count(got[name]) for name in self.layers}
        size = {name: got[name].numel() for name in self.layers}
        hidden = [name for name in self.layers if name != self.output_layer]
        if round_ >= 2 and all(counts[name] == schedule(size[name], self.amount(name), 1) for name in self.layers):
            return "no_compounding"
        if any(abs(counts[name] - schedule(size[name], self.rate, round_)) > round_ for name in hidden):
            return "global_scope"
        if counts[self.output_layer] == schedule(size[self.output_layer], self.rate, round_) != \
                schedule(size[self.output_layer], self.output_rate, round_):
            return "one_rate"
        return None


def _where(kind: str, round_: int) -> str:
    return {"ticket": "the ticket", "reinit": "the random re-init", "random_prune": "the random pruning"}[kind] + \
        f" of round {round_}"


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


def judge_results(ev: Evidence):
    if not ev.finished:
        return None
    try:
        ev.series  # noqa: B018 - it raises Mismatch for results it cannot read
    except Mismatch as mismatch:
        return fail(str(mismatch), "wrong_results")
    return PASS


def judge_layer_wise(ev: Evidence):
    if not ev.finished:
        return None
    if unreadable := ev.unreadable():
        return unreadable
    for round_ in range(1, ev.rounds + 1):
        call = ev.call("ticket", round_)
        for name in ev.layers:
            state = ev.state(call, name)
            if isinstance(state.get("bias_mask"), torch.Tensor):
                return fail(f"{name}.bias has a bias_mask in {_where('ticket', round_)}", "prunes_biases")
        got, expected = ev.masks(call), ev.expected_mask(round_)
        if all(torch.equal(got[name], expected[name]) for name in ev.layers):
            continue
        predictions = ev.predictions(round_)
        messages = {
            "global_scope": "is what one global threshold over all layers gives",
            "global_scope_split": "is what one threshold over all hidden layers together gives",
            "ranks_theta0": "prunes the smallest weights of θ₀, not of the trained weights",
            "one_rate": f"is what pruning the output layer at rate {ev.rate:g} gives (output_rate is "
                        f"{ev.output_rate:g})",
            "no_compounding": f"prunes {percent(ev.rate)} of all the weights of each layer, the pruned zeros first, "
                              "instead of that share of the survivors",
        }
        where = f"the mask of {_where('ticket', round_)}"
        for mistake, message in messages.items():
            prediction = predictions[mistake]
            if all(torch.equal(got[name], prediction[name]) for name in ev.layers):
                return fail(f"{where} {message}", mistake.replace("_split", ""))
        wrong = [name for name in ev.layers if not torch.equal(got[name], expected[name])]
        return fail(f"{where} differs from layer-wise magnitude pruning of round {round_ - 1}'s trained weights in "
                    f"{', '.join(wrong)} ({differing(got, expected):,} entries)", ev.count_mistake(round_, got))
    return PASS


def judge_compounds(ev: Evidence):
    if not ev.finished:
        return None
    if unreadable := ev.unreadable():
        return unreadable
    hidden = [name for name in ev.layers if name != ev.output_layer]
    for round_ in range(1, ev.rounds + 1):
        got = ev.masks(ev.call("ticket", round_))
        for name in hidden:
            expected = schedule(got[name].numel(), ev.rate, round_)
            if abs(count(got[name]) - expected) > round_:  # other rounding than round() may move a weight per round
                return fail(f"in {_where('ticket', round_)}, {name} keeps {count(got[name]):,} of "
                            f"{got[name].numel():,} weights ({percent(count(got[name]) / got[name].numel())}); "
                            f"(1 - {ev.rate:g})^{round_} keeps {expected:,} "
                            f"({percent(expected / got[name].numel())})", ev.count_mistake(round_, got))
    return PASS


def judge_output_rate(ev: Evidence):
    if not ev.finished:
        return None
    if unreadable := ev.unreadable():
        return unreadable
    name = ev.output_layer
    for round_ in range(1, ev.rounds + 1):
        got = ev.masks(ev.call("ticket", round_))
        size, kept = got[name].numel(), count(got[name])
        expected = schedule(size, ev.output_rate, round_)
        if abs(kept - expected) > round_:
            mistake = ev.count_mistake(round_, got)
            return fail(f"in {_where('ticket', round_)}, the output layer {name} keeps {kept:,} of {size:,} weights "
                        f"({percent(kept / size)}); at output_rate {ev.output_rate:g} it keeps {expected:,} "
                        f"({percent(expected / size)})", mistake)
    return PASS


def judge_rewinds(ev: Evidence):
    if not ev.finished:
        return None
    if unreadable := ev.unreadable():
        return unreadable
    for round_ in range(1, ev.rounds + 1):
        call, previous = ev.call("ticket", round_), ev.call("ticket", round_ - 1)
        trained = ev.trained(previous)
        for name in ev.layers:
            mask, values = ev.mask(call, name), ev.trainable(call, name)
            wrong = ~close(values, ev.theta0[f"{name}.weight"]) & mask
            if not wrong.any():
                continue
            where = f"{count(wrong):,} of the {count(mask):,} surviving weights of {name} in {_where('ticket', round_)}"
            if bool(close(values, trained[name])[mask].all()):
                written = ev.state(call, name).get("weight")
                if ev.hooked(call, name) and isinstance(written, torch.Tensor) and written.shape == values.shape \
                        and bool(close(written, ev.theta0[f"{name}.weight"])[mask].all()):
                    return fail(f"{where} start from their trained values in weight_orig (θ₀ went into weight)",
                                "writes_weight")
                return fail(f"{where} start from the values they were trained to", "no_rewind")
            return fail(f"{where} start neither from θ₀ nor from their trained values")
        for name in ev.layers:
            bias, theta0 = ev.bias(call, name), ev.theta0.get(f"{name}.bias")
            if theta0 is not None and (bias is None or bias.shape != theta0.shape or not bool(close(bias, theta0).all())):
                return fail(f"the bias of {name} in {_where('ticket', round_)} is not θ₀'s", "biases_kept")
    return PASS


def judge_masks_enforced(ev: Evidence):
    calls = [call for call in ev.calls if not call.get("raised")]
    if not calls:
        return None
    for index, call in enumerate(calls):
        if call.get("forward_error"):
            return fail(f"the network of training call {index + 1} fails on a forward pass: {call['forward_error']}")
        trained = ev.trained(call)
        for name in ev.layers:
            pruned = ~ev.mask(call, name)
            revived = count(pruned & (trained[name] != 0))
            if revived:
                return fail(f"after training call {index + 1}, {revived:,} of the {count(pruned):,} weights of {name} "
                            "pruned before it are no longer zero", "masks_not_enforced")
    return PASS


def _matches(values: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> bool:
    return bool(close(values, reference)[mask].all())


def judge_reinit(ev: Evidence):
    if not ev.finished:
        return None
    if unreadable := ev.unreadable():
        return unreadable
    for round_ in range(1, ev.rounds + 1):
        call, ticket = ev.call("reinit", round_), ev.masks(ev.call("ticket", round_))
        got = ev.masks(call)
        if any(not torch.equal(got[name], ticket[name]) for name in ev.layers):
            return fail(f"the mask of {_where('reinit', round_)} differs from the ticket's of that round in "
                        f"{differing(got, ticket):,} entries", "reinit_other_mask")
        values = {name: ev.trainable(call, name) for name in ev.layers}
        if all(_matches(values[name], ev.theta0[f"{name}.weight"], got[name]) for name in ev.layers):
            return fail(f"{_where('reinit', round_)} starts from θ₀", "reinit_theta0")
        if not any(all(_matches(values[name], draw[name], got[name]) for name in ev.layers) for draw in ev.draws):
            return fail(f"the surviving weights of {_where('reinit', round_)} are not those of a network "
                        "new_network() returned")
    return PASS


def judge_random_prune(ev: Evidence):
    if not ev.finished:
        return None
    if unreadable := ev.unreadable():
        return unreadable
    for round_ in range(1, ev.rounds + 1):
        call, ticket = ev.call("random_prune", round_), ev.masks(ev.call("ticket", round_))
        got = ev.masks(call)
        for name in ev.layers:
            if count(got[name]) != count(ticket[name]):
                return fail(f"{_where('random_prune', round_)} keeps {count(got[name]):,} weights of {name}, the "
                            f"ticket {count(ticket[name]):,}", "random_counts")
        if all(torch.equal(got[name], ticket[name]) for name in ev.layers):
            return fail(f"{_where('random_prune', round_)} keeps exactly the ticket's weights, not random ones")
        values = {name: ev.trainable(call, name) for name in ev.layers}
        starts = [{name: ev.theta0[f"{name}.weight"] for name in ev.layers}, *ev.draws]
        if not any(all(_matches(values[name], start[name], got[name]) for name in ev.layers) for start in starts):
            return fail(f"the surviving weights of {_where('random_prune', round_)} do not start from θ₀")
    return PASS


SPEC = KataSpec(
    name=NAME,
    title="iterative_magnitude_pruning: the IMP loop and its two controls",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    checks=(
        Check("runs_on_any_model", "runs on any network: a Sequential MLP, other layer names, a conv net", 1,
              "The loop raised on a hidden network. It must work on any network of nn.Linear and nn.Conv2d layers, "
              "whatever their names, with or without biases.",
              judge_runs, mistakes=("hard_coded_names",), about_errors=True),
        Check("returns_results", "returns what train returned: the ticket in rounds 0..rounds, each control in 1..rounds",
              1, "Return {'ticket': [...], 'reinit': [...], 'random_prune': [...]} with one train(...) result per "
                 "round.",
              judge_results, mistakes=("wrong_results",)),
        Check("layer_wise_magnitude", "each round prunes the smallest trained weights of each layer, survivors only", 2,
              "After train(...), prune each layer's surviving weights by magnitude: "
              "prune.l1_unstructured(module, 'weight', amount=...) on every Linear and Conv2d layer.",
              judge_layer_wise,
              mistakes=("prunes_biases", "global_scope", "ranks_theta0", "one_rate", "no_compounding")),
        Check("compounding_rate", "the hidden layers keep (1 - rate)^round of their weights", 1,
              "Each round prunes rate of the weights still alive in each hidden layer, so after r rounds "
              "(1 - rate)^r of them remain.",
              judge_compounds, mistakes=("no_compounding", "global_scope")),
        Check("output_layer_rate", "the output layer keeps (1 - output_rate)^round of its weights", 1,
              "Prune the last Linear/Conv2d layer at output_rate, the others at rate.",
              judge_output_rate, mistakes=("one_rate", "global_scope", "no_compounding")),
        Check("rewinds_to_theta0", "each round the ticket restarts from θ₀: weight_orig and biases", 1,
              "After pruning, copy θ₀ into every weight_orig and every bias.",
              judge_rewinds, mistakes=("writes_weight", "no_rewind", "biases_kept")),
        Check("masks_enforced", "pruned weights stay zero through every training call", 1,
              "Keep the pruning hooks on every network you train, so that training cannot revive a pruned weight.",
              judge_masks_enforced, mistakes=("masks_not_enforced",)),
        Check("reinit_control", "random re-init: the ticket's mask on a fresh new_network()", 1,
              "Each round, take new_network(), give it the ticket's masks with prune.custom_from_mask, and train it.",
              judge_reinit, mistakes=("reinit_theta0", "reinit_other_mask")),
        Check("random_prune_control", "random pruning: the ticket's per-layer counts at random positions, from θ₀", 1,
              "Each round, start a network at θ₀ and keep, in every layer, as many weights as the ticket does, "
              "at positions drawn at random.",
              judge_random_prune, mistakes=("random_counts",)),
    ),
)
