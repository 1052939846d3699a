"""Kata 8: ``train_loop(model, images, labels, epochs, batch_size, lr, seed) -> None``.

A plain PyTorch training loop that ``lthkit.find_ticket`` can prune under: it trains the model it
is given in place, from the weights it is given, changing them only through its optimizer (so the
masks lthkit enforces through that optimizer are kept), in training mode, over every example once
per epoch, in a batch order seeded by ``seed`` (reference:
``lthkit.grading.katas.train_loop.reference``).

Each hidden case is a hidden network already pruned (its pruned weights at zero, handed over in
eval mode, as an evaluation leaves it) and a small learnable data set (200 MNIST-shaped images of
10 classes). The sandbox runs the loop as ``find_ticket`` does, under
:class:`lthkit.core.enforce.MaskEnforcer`, twice with the same seed, each time on a new network at
the same weights. A notebook's call is judged the same way (:func:`example`): its network's zeros
are the pruned weights, and a second call from the same weights, data and settings is the second
run of the same case.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ...hidden import architecture, build_hidden
from ...oracle import close
from ...spec import PASS, Case, Check, KataSpec, Mistake, fail
from ..common import copied, example_case, inputs_unchanged
from .run import BATCH_SIZE, EPOCHS, LR, SETTINGS, run
from .run import call as call_once

NAME = "train_loop"
#: Images of each hidden data set (not a multiple of the batch size: the last batch is smaller).
IMAGES = 200
#: The loss after training must be at most this fraction of the loss before.
LEARNED = 0.7

MISTAKES = (
    Mistake("optimizer_outside",
            "The model you were given did not change: the optimizer steps other parameters. Build the optimizer "
            "inside the function, over model.parameters() of the model it receives (find_ticket hands it a new "
            "copy each round)."),
    Mistake("trains_copy",
            "A copy was trained, not the model you were given. Train the model in place (find_ticket keeps the "
            "weights of the model it passed) and return None."),
    Mistake("reinitializes",
            "Training did not start from the weights you were given: something re-initialized or loaded them first. "
            "find_ticket hands over θ₀ or θ_k with the mask applied; start from exactly those."),
    Mistake("writes_weights",
            "Pruned weights are no longer zero after your loop: it changed weights outside optimizer.step() (noise, "
            "clamping, load_state_dict, reset_parameters). lthkit keeps the masks through the optimizer's steps "
            "only: change weights through the optimizer alone."),
    Mistake("drops_last",
            "Some examples were never trained on: the last, smaller batch of each epoch is missing. Go over every "
            "example once per epoch: torch.randperm(len(labels)).split(batch_size) keeps the short last batch."),
    Mistake("forgets_train_mode",
            "The model trained in eval mode (an evaluation left it there): BatchNorm used its running statistics "
            "and did not update them. Call model.train() before the loop."),
    Mistake("unseeded",
            "The same seed gave different trained weights: the batch order comes from the global random state. Draw "
            "it from your own generator, torch.Generator().manual_seed(seed), so every round sees the same batches."),
    Mistake("mutates_inputs",
            "images or labels was changed. Only read them (find_ticket calls your loop again every round)."),
)

CASES = (Case("sequential", 61, 0.5), Case("conv_bn", 62, 0.5), Case("own_names", 63, 0.8))


def _data(seed: int) -> dict:
    """A learnable task: one prototype image per class, plus noise."""
    generator = torch.Generator().manual_seed(seed + 17)
    prototypes = torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(2024))
    labels = torch.randint(0, 10, (IMAGES,), generator=generator)
    return {"images": prototypes[labels] + 0.5 * torch.randn(IMAGES, 1, 28, 28, generator=generator),
            "labels": labels}


def prepare(case: Case) -> dict:
    """The hidden network at θ₀ with ``case.amount`` of its weights pruned at random (zeros), its masks, a task."""
    model = build_hidden(case.model, case.seed)
    theta0 = {key: value.detach().clone() for key, value in model.state_dict().items()}
    generator = torch.Generator().manual_seed(case.seed)
    masks = {}
    for name, parameter in model.named_parameters():
        if _prunable(name, parameter):
            masks[name] = torch.rand(parameter.shape, generator=generator) >= case.amount
    state = {key: value * masks[key] if key in masks else value for key, value in theta0.items()}
    return {"state": state, "masks": masks, "data": _data(case.seed),
            "settings": {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "lr": LR, "seed": case.seed}}


def _prunable(name: str, parameter: torch.Tensor) -> bool:
    """A weight matrix or kernel: what find_ticket prunes (biases and BatchNorm never)."""
    return name.endswith("weight") and parameter.dim() > 1


def example(arguments: dict) -> tuple[Case, dict]:
    """A notebook's call ``train_loop(model, images, labels, epochs, batch_size, lr, seed)`` as a case.

    The call runs as find_ticket makes it: the model's weights at zero when the call starts stand
    for the pruned ones (find_ticket hands over θ₀ ⊙ mask), kept at zero through the optimizer. A
    copy of the network as it was given stands for the hidden architecture when the grader
    measures the loss.
    """
    model = arguments["model"]
    settings = {name: arguments[name] for name in SETTINGS}
    masks = {name: parameter.detach() != 0 for name, parameter in model.named_parameters()
             if _prunable(name, parameter)}
    data = copied({"images": arguments["images"], "labels": arguments["labels"]})
    about = f"{len(data['labels'])} images, {settings['epochs']} epochs, seed {settings['seed']}"
    return (example_case(0.0, about),
            {"state": copied(model.state_dict()), "masks": masks, "data": data, "settings": settings,
             "network": copy.deepcopy(model)})


def same_case(previous: dict, inputs: dict) -> bool:
    """A call from the same weights, masks, data and settings as the previous one is its second run (find_ticket's
    next round): one case, whose runs must train to the same weights."""
    def same(first: dict, second: dict) -> bool:
        return first.keys() == second.keys() and all(
            isinstance(first[key], torch.Tensor) and isinstance(second[key], torch.Tensor)
            and first[key].shape == second[key].shape and torch.equal(first[key], second[key]) for key in first)

    return previous["settings"] == inputs["settings"] and all(
        same(previous[key], inputs[key]) for key in ("state", "masks", "data"))


class Evidence:
    """What the loop did on one case: one record per run (``calls``), the first of them, the case's data and settings."""

    def __init__(self, case: Case, inputs: dict, outputs: dict, error: dict | None):
        self.case, self.inputs, self.outputs, self.error = case, inputs, outputs, error
        calls = outputs.get("calls")
        self.calls = [call for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []
        self.first = self.calls[0] if self.calls else None
        self.finished = bool(self.calls)
        self.settings = inputs["settings"]
        self.images = len(inputs["data"]["labels"])

    def network(self) -> torch.nn.Module:
        """A new network of the case's architecture (the hidden one, or a copy of the one a notebook gave)."""
        given = self.inputs.get("network")
        return architecture(self.case.model) if given is None else copy.deepcopy(given)

    def loss(self, state: dict, training: bool = True) -> float:
        """Cross-entropy of the case's network at ``state`` on the case's data, in training mode (batch statistics
        for BatchNorm) or, with ``training=False``, in eval mode (its running statistics)."""
        model = self.network()
        model.load_state_dict(state)
        model.train(training)
        with torch.no_grad():
            return float(F.cross_entropy(model(self.inputs["data"]["images"]), self.inputs["data"]["labels"]))


def _nth_time(index: int) -> str:
    """How a message names the run: nothing for the first, "the second time (...)" for a later one."""
    if index == 0:
        return ""
    nth = ("the second time", "the third time")[index - 1] if index < 3 else f"on run {index + 1}"
    return f" {nth} (a new network, as in find_ticket's next round)"


def judge_in_place(ev: Evidence):
    if not ev.finished:
        return None
    for index, record in enumerate(ev.calls):
        call = _nth_time(index)
        if not (record["returned_none"] or record["returned_model"]):
            if not record["changed"]:
                return fail(f"the model you were given is unchanged and the function returned a "
                            f"{record['returned_type']}{call}", "trains_copy")
            return fail(f"the function returned a {record['returned_type']}{call}: return None (the model is trained "
                        "in place)")
        if not record["changed"]:
            if record["steps"] == 0:
                return fail(f"the model you were given did not change{call}: no optimizer stepped its parameters",
                            "optimizer_outside")
            return fail(f"the model you were given did not change{call}")
    return PASS


def judge_starts_from_given(ev: Evidence):
    if not ev.finished or not ev.first["changed"]:
        return None
    started = ev.first["started_from"]
    if started == "<no training step>":
        return fail("no forward pass with gradients ran on the model you were given")
    if started:
        return fail(f"at the first training forward pass {started} no longer held the weights you were given",
                    "reinitializes")
    return PASS


def judge_masks_kept(ev: Evidence):
    if not ev.finished or not ev.first["changed"]:
        return None
    if ev.first["revived"]:
        return fail(f"pruned weights of {ev.first['revived']} are not zero after your loop", "writes_weights")
    return PASS


def judge_every_example(ev: Evidence):
    if not ev.finished or not ev.first["changed"]:
        return None
    first, epochs, batch_size, images = ev.first, ev.settings["epochs"], ev.settings["batch_size"], ev.images
    expected = epochs * images
    if first["largest_batch"] > batch_size:
        return fail(f"a batch of {first['largest_batch']} examples went through the model; batch_size is {batch_size}")
    if first["examples"] < expected:
        full_batches = epochs * (images // batch_size) * batch_size
        mistake = "drops_last" if images % batch_size and first["examples"] == full_batches else None
        return fail(f"the model trained on {first['examples']} examples in {first['batches']} batches; {epochs} "
                    f"epochs of {images} images are {expected}", mistake)
    if first["examples"] > expected:
        return fail(f"the model trained on {first['examples']} examples; {epochs} epochs of {images} images are "
                    f"{expected}")
    return PASS


def judge_training_mode(ev: Evidence):
    if not ev.finished or not ev.first["changed"]:
        return None
    if ev.first["eval_batches"]:
        return fail(f"{ev.first['eval_batches']} of {ev.first['batches']} training batches ran in eval mode",
                    "forgets_train_mode")
    return PASS


def judge_learns(ev: Evidence):
    if not ev.finished or not ev.first["changed"]:
        return None
    after = ev.first["state_after"]
    if not isinstance(after, dict):
        return fail("the model's state could not be read after training")
    # The loss the loop itself lowered: in the mode it trained in (one that forgot model.train() minimized the
    # eval-mode loss; training_mode says that mistake, once).
    training = not (ev.first["batches"] and ev.first["eval_batches"] == ev.first["batches"])
    before, trained = ev.loss(ev.inputs["state"], training), ev.loss(after, training)
    if not trained <= LEARNED * before:
        mode = "" if training else " (in eval mode, the mode it trained in)"
        return fail(f"the training loss{mode} went from {before:.3f} to {trained:.3f}; a loop that learns brings it "
                    f"below {LEARNED:g} × {before:.3f}")
    return PASS


def judge_seeded(ev: Evidence):
    if len(ev.calls) < 2 or not all(record["changed"] for record in ev.calls):
        return None  # one run (a notebook's single call) cannot show it
    first = ev.first["state_after"]
    for record in ev.calls[1:]:
        other_state = record["state_after"]
        for name, value in first.items():
            other = other_state.get(name)
            if not isinstance(value, torch.Tensor) or not isinstance(other, torch.Tensor) or \
                    value.shape != other.shape or not bool(close(value, other).all()):
                return fail(f"two calls with seed {ev.settings['seed']} from the same weights trained {name} "
                            "differently", "unseeded")
    return PASS


def judge_inputs_unchanged(ev: Evidence):
    if not ev.finished:
        return None
    return inputs_unchanged((("images and labels", "data"),), ev.inputs, ev.outputs, "mutates_inputs")


SPEC = KataSpec(
    name=NAME,
    title="train_loop: a plain PyTorch training loop that keeps lthkit's masks under its optimizer",
    cases=CASES,
    mistakes=MISTAKES,
    prepare=prepare,
    run=run,
    context=Evidence,
    watched_inputs=("data",),
    example=example,
    call=call_once,
    same_case=same_case,
    checks=(
        Check("in_place", "trains the model it is given, in place, and returns None", 1,
              "Build the optimizer inside, over model.parameters(); train that model; return None.",
              judge_in_place, mistakes=("optimizer_outside", "trains_copy")),
        Check("starts_from_given", "starts from the weights it is given", 1,
              "Do not re-initialize or load weights: find_ticket hands over θ₀ or θ_k ⊙ mask.",
              judge_starts_from_given, mistakes=("reinitializes",)),
        Check("masks_kept", "keeps the masks: pruned weights are still zero after training", 2,
              "Change weights only through optimizer.step().",
              judge_masks_kept, mistakes=("writes_weights",)),
        Check("every_example", "sees every example once per epoch, in batches of batch_size", 1,
              "Loop over torch.randperm(len(labels), generator=...).split(batch_size) in each epoch.",
              judge_every_example, mistakes=("drops_last",)),
        Check("training_mode", "trains in training mode", 1, "Call model.train() before the loop.",
              judge_training_mode, mistakes=("forgets_train_mode",)),
        Check("learns", "learns: the training loss falls", 2,
              "Cross-entropy, optimizer.zero_grad(), loss.backward(), optimizer.step() for every batch.",
              judge_learns),
        Check("seeded", "the same seed gives the same trained weights", 1,
              "Draw the batch order from torch.Generator().manual_seed(seed).",
              judge_seeded, mistakes=("unseeded",)),
        Check("inputs_unchanged", "leaves images and labels unchanged", 1, "Only read images and labels.",
              judge_inputs_unchanged, mistakes=("mutates_inputs",)),
    ),
)
