"""The questions the notebooks ask: predictions before an experiment, and end-of-notebook questions with answers.

A notebook asks the learner to think before it runs: a **prediction** (a choice, or a number on a slider) is
recorded before the experiment and shown beside the measured result afterwards; a few **questions** at the end
have one right choice and an explanation. Both are graded like katas: a prediction earns its points when it was
recorded before its result was shown (there is no wrong prediction, only a missing one), a question when its
right choice was picked. The widgets live in :mod:`lthkit.course.predictions`; this module holds the questions,
their answers, and the grading, which ``check(answer_sheet(...))`` and ``python -m lthkit grade --kata questions`` use.

Every question is one entry of :data:`QUESTIONS`, named ``"<notebook number>.<name>"``; the notebook asks it in
one line (``predict("02.reinit_gap")``, ``ask("02.why_reinit")``). A recorded answer is a small JSON record in
the output of the cell that asked (:data:`ANSWER_MIMETYPE`), so it is saved with the notebook and read back from
a submitted ``.ipynb`` by :func:`answers_from_notebook`.

Example:
    >>> question = QUESTIONS.require("02.why_reinit")
    >>> question.kind, question.choices[question.answer][:30]
    ('quiz', 'the initial values, together w')
    >>> sheet = AnswerSheet("02", {"02.why_reinit": Answer("02.why_reinit", question.answer)})
    >>> report = sheet.grade()
    >>> [(check.name, check.status) for check in report.checks if check.name == "02.why_reinit"]
    [('02.why_reinit', 'pass')]
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.registry import Registry
from ..errors import LthkitError
from .spec import CheckResult, GradeReport

#: The MIME type of a recorded answer in a notebook cell's output.
ANSWER_MIMETYPE = "application/vnd.lthkit.answer+json"
#: The pseudo-kata name under which ``python -m lthkit grade`` grades a notebook's questions.
QUESTIONS_KATA = "questions"
_ID = re.compile(r"^(\d\d)\.[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Question:
    """One question a notebook asks.

    Attributes:
        name: ``"<notebook number>.<name>"`` (``"02.reinit_gap"``); the notebook number says where it is asked.
        prompt: the question, in Markdown.
        choices: the choices of a choice question (empty for a slider).
        scale: ``(low, high, step)`` of a slider, for a prediction of a number (``None`` for a choice).
        unit: what the slider's number counts (``"points"``).
        answer: for an end-of-notebook question, the index of the right choice; ``None`` for a prediction.
        explanation: shown once the learner has answered (a question) or beside the measured result (a prediction).
        points: what it is worth.
    """

    name: str
    prompt: str
    choices: tuple[str, ...] = ()
    scale: tuple[float, float, float] | None = None
    unit: str = ""
    answer: int | None = None
    explanation: str = ""
    points: int = 1

    def __post_init__(self):
        if not _ID.match(self.name):
            raise LthkitError(f"question name {self.name!r} must look like '02.reinit_gap' (notebook number, a dot, "
                              "a lower-case name)")
        if bool(self.choices) == (self.scale is not None):
            raise LthkitError(f"question {self.name}: give either choices or a slider scale, not both or neither")
        if self.scale is not None:
            low, high, step = self.scale
            if not (low < high and step > 0):
                raise LthkitError(f"question {self.name}: the scale (low, high, step) needs low < high and step > 0")
        if self.answer is not None and not (self.choices and 0 <= self.answer < len(self.choices)):
            raise LthkitError(f"question {self.name}: answer must index one of its {len(self.choices)} choices")

    @property
    def notebook(self) -> str:
        """The notebook's number (``"02"``)."""
        return self.name[:2]

    @property
    def kind(self) -> str:
        """``"prediction"`` (recorded before a run) or ``"quiz"`` (one right choice)."""
        return "prediction" if self.answer is None else "quiz"

    def check_value(self, value):
        """``value`` as this question records it: a choice's index, or a number on the slider.

        Raises:
            LthkitError: the value is not one of the choices or not on the slider's range.
        """
        if self.choices:
            if isinstance(value, str) and value in self.choices:
                return self.choices.index(value)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.choices):
                return value
            raise LthkitError(f"question {self.name}: answer with one of its choices (or its index), got {value!r}")
        low, high, _ = self.scale
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
                or not low <= value <= high:
            raise LthkitError(f"question {self.name}: answer with a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    def show(self, value) -> str:
        """How a recorded value reads (the choice's text, or the number with its unit)."""
        if value is None:
            return "no answer"
        if self.choices:
            return self.choices[value]
        unit = self.unit[:-1] if value == 1 and self.unit.endswith("s") else self.unit  # 1 round, 2 rounds
        return f"{value:g} {unit}".strip()


@dataclass(frozen=True)
class Answer:
    """A learner's answer to one question.

    Attributes:
        question: the question's name.
        value: the choice's index, or the slider's number.
        before_result: whether it was recorded before the question's result was shown (a prediction counts only
            then).
    """

    question: str
    value: int | float | None
    before_result: bool = True

    def record(self) -> dict:
        """The JSON record saved in the notebook."""
        return {"question": self.question, "value": self.value, "before_result": self.before_result}

    @classmethod
    def from_record(cls, record) -> Answer | None:
        """The answer a saved record holds, or ``None`` for a record that is not one (or holds no answer)."""
        if not isinstance(record, dict) or not isinstance(record.get("question"), str):
            return None
        question = QUESTIONS.get(record["question"])
        if question is None or record.get("value") is None:
            return None
        try:
            value = question.check_value(record["value"])
        except LthkitError:
            return None
        return cls(question.name, value, bool(record.get("before_result", False)))


class Questions(Registry):
    """The registry of questions, in the order the notebooks ask them."""

    def __init__(self, questions=()):
        super().__init__(questions, kind="question")

    def of_notebook(self, notebook: str) -> list[Question]:
        """The questions notebook ``notebook`` (``"02"``) asks, in order."""
        return [question for question in self.values() if question.notebook == notebook]


# ------------------------------------------------------------------------------------------ the questions
#
# One entry per question: Question(name, prompt, choices=... or scale=..., answer=... for an end-of-notebook
# question, explanation=...). The notebook asks it with predict("<name>") (a prediction, revealed after the run)
# or ask("<name>") (an end-of-notebook question).

QUESTIONS = Questions([
    # Notebook 1: one pruning step.
    Question("01.most_pruned_layer", "Your step removes 20% of LeNet-300-100's weights with **one global threshold** "
             "on the trained magnitudes. Which layer will lose the largest share of its *own* weights?",
             choices=("fc1 (784 → 300, the first and largest layer)", "fc2 (300 → 100)",
                      "fc3 (100 → 10, the output layer)", "none: every layer loses 20%"),
             explanation="The layers' weights live on different scales: Glorot initialization draws each layer's "
                         "weights with variance 2 / (fan-in + fan-out), so the first layer's (fan-in 784) are the "
                         "smallest, and one threshold for all layers cuts mostly there. That is why the paper prunes "
                         "LeNet layer-wise instead: 20% of each hidden layer, 10% of the output layer."),
    Question("01.ticket_cost", "The ticket keeps 80% of the weights, rewound to θ₀, and trains again with the dense "
             "network's budget. **How many points** of test accuracy will it lose against the dense network? "
             "(Negative: it gains.)",
             scale=(-2.0, 5.0, 0.25), unit="points",
             explanation="In Frankle & Carbin's Figure 3, LeNet-300-100's winning tickets are as accurate as the "
                         "dense network, or more, from 100% down to a few percent of the weights: a first round of "
                         "20% costs nothing. One seed's accuracy moves by tenths of a point between runs, so a "
                         "small loss or gain here is noise, not an effect."),
    Question("01.why_deepcopy", "What goes wrong with `initial_state_dict = model.state_dict()`, without "
             "`copy.deepcopy`?",
             choices=(("its tensors are the model's own: training changes them in place, so the 'θ₀' you rewind to "
                      "is the trained weights"),
                      "nothing: state_dict() always returns a copy",
                      "the biases are left out of it",
                      "it cannot be loaded back into the model"),
             answer=0,
             explanation="`state_dict()` returns references to the parameters' storage, not copies. Without "
                         "`deepcopy`, 'rewinding' copies the trained values onto themselves: the ticket would "
                         "start from its trained weights, which is fine-tuning, not a lottery ticket."),
    Question("01.weight_orig", "After `torch.nn.utils.prune` has pruned a layer, why do you write θ₀ into "
             "`weight_orig` and not into `weight`?",
             choices=(("`weight` is recomputed as `weight_orig * weight_mask` by a hook before every forward "
                      "pass: what you write into it is overwritten"),
                      "`weight` is read-only after pruning",
                      "`weight_orig` holds only the surviving weights",
                      "it makes no difference which one you write"),
             answer=0,
             explanation="Pruning moves the parameter to `weight_orig` (what the optimizer trains) and keeps the "
                         "mask in the buffer `weight_mask`; `weight` is only their product. Rewinding the real "
                         "parameter is one of the traps other lottery-ticket code fell into."),
    Question("01.why_rewind", "Why does a lottery ticket restart its surviving weights from **θ₀** instead of "
             "keeping their trained values?",
             choices=(("the hypothesis is about the initialization: a winning ticket is a subnetwork that trains "
                      "well *from its initial values*; keeping the trained values is fine-tuning, another method"),
                      "trained values cannot be pruned",
                      "rewinding makes training faster in every case",
                      "θ₀ has more non-zero weights than the trained network"),
             answer=0,
             explanation="Frankle & Carbin: a dense, randomly initialized network contains a subnetwork that, "
                         "trained in isolation *from the same initialization*, matches the dense network. Notebook 2 "
                         "tests that claim against controls with other initial values; notebook 4 rewinds to θ_k "
                         "instead, and compares it with fine-tuning."),
    # Notebook 2: iterative magnitude pruning and its controls.
    Question("02.best_at_7", "IMP will take LeNet-300-100 down to about **7% of its weights**. At that density, "
             "which of the three will reach the highest test accuracy?",
             choices=("the winning ticket", "random re-init (the ticket's mask, new initial values)",
                      "random pruning (the ticket's counts per layer, random connections)",
                      "all three within half a point of each other"),
             explanation="Frankle & Carbin found the ticket ahead of both controls once the network is sparse: "
                         "the mask alone (random re-init) or the sizes alone (random pruning) are not enough."),
    Question("02.reinit_gap", "At the sparsest round, **how many points** of test accuracy will random re-init be "
             "behind the winning ticket? (Negative: ahead of it.)",
             scale=(-2.0, 10.0, 0.5), unit="points",
             explanation="Compare the gap with the noise: one seed's curve moves by a few tenths of a point from "
                         "round to round."),
    Question("02.why_reinit", "Random re-init keeps the ticket's mask and changes only the initial values, and it "
             "falls behind the ticket once the network is sparse. What does that tell you?",
             choices=("the initial values, together with the mask, make the ticket: the mask alone is not enough",
                      "the mask is all that matters; the gap is noise",
                      "pruning hurts every sparse network equally",
                      "the ticket trained for longer than the control"),
             answer=0,
             explanation="Both runs train for the same budget on the same connections; only θ₀ differs. A gap "
                         "larger than the seed-to-seed noise means the ticket's particular initial values matter: "
                         "the 'winning' draw of the lottery."),
    Question("02.output_rate", "IMP prunes LeNet's output layer at 10% per round and the hidden layers at 20%. Why "
             "the lower rate?",
             choices=(("it holds few weights (1,000 of 266,200), each one feeds a class score, so pruning it harder "
                      "costs accuracy and saves almost nothing"),
                      "the output layer's weights are smaller, so they would all be pruned first",
                      "torch.nn.utils.prune cannot prune a layer with 10 outputs faster",
                      "the paper's rate is arbitrary: any rate gives the same curve"),
             answer=0,
             explanation="The output layer is 0.4% of LeNet's weights: pruning it at 20% would save a few hundred "
                         "weights while removing connections every class score depends on. The paper (Appendix A) "
                         "prunes it at half the hidden layers' rate."),
    Question("02.border_pixels", "In the last round, the pixels that are 0 in every training image (no digit ever "
             "reaches them) still keep a few of their 300 outgoing weights. Why do those weights survive?",
             choices=(("a pixel that is always 0 gives its weights no gradient: they keep their initial values, and "
                      "the largest of those stay above the magnitude threshold"),
                      "the network learned to watch the border",
                      "border weights are never pruned",
                      "random pruning kept them"),
             answer=0,
             explanation="With pixels scaled to [0, 1], a blank pixel is exactly 0, so the gradient of each of its "
                         "weights is 0 and the weight stays at θ₀. Magnitude pruning then keeps the ones whose "
                         "initial magnitude happens to be large: they survive by size, not by use."),
    # Notebook 3: explore.
    Question("03.reinit_trend", "The dashboard prunes LeNet round by round. Random re-init trains the ticket's "
             "mask from *new* initial values. From the first pruned round to the last, the ticket's lead over "
             "random re-init will ...",
             choices=("grow by more than half a point: re-init falls behind as the network gets sparser",
                      "stay within half a point of what it was",
                      "shrink by more than half a point: re-init catches up as the network gets sparser"),
             explanation="Frankle & Carbin's re-initialized networks keep up with the ticket while many weights "
                         "remain and fall behind as the network gets sparser (their Figures 3 and 4): the sparser "
                         "the network, the more its particular initial values matter. With one seed, differences "
                         "of a few tenths of a point are noise."),
    Question("03.one_shot", "Now the ticket again, pruned to the same weights remaining in **one** round instead of "
             "several (*one-shot* pruning: train once, prune, rewind, train). Its test accuracy against the "
             "iterative ticket's will be ...",
             choices=("more than half a point lower", "within half a point", "more than half a point higher"),
             explanation="Frankle & Carbin (§2, Figure 4c): one-shot pruning finds winning tickets too, and costs "
                         "two trainings instead of one per round, but iterative pruning finds tickets that learn faster "
                         "and stay accurate at smaller sizes. With many weights remaining the two can be within a "
                         "seed's noise; the gap opens as the network gets sparser."),
    Question("03.seed_noise", "Two settings, one seed each, end 0.3 points apart. What does that difference tell you?",
             choices=(("nothing yet: changing only the seed moves a network by about as much; run several trials "
                      "of each and compare their spreads (or intervals)"),
                      "the better setting is better: a test accuracy is exact",
                      "the worse setting is broken",
                      "the difference is real if it is positive in both panels"),
             answer=0,
             explanation="A single run mixes the setting's effect with the seed's (θ₀ and the data order). The "
                         "dashboard's **trials** slider draws the spread of several seeds; when two bands overlap, "
                         "the runs cannot tell the settings apart. The paper reports five trials for this reason."),
    Question("03.per_round_rate", "You ask for **5% of the weights remaining after 8 rounds**. What fraction of the "
             "surviving weights does each round prune (in the hidden layers)?",
             choices=("about 31%: 1 − 0.05^(1/8), since each round prunes a share of the survivors",
                      "about 12%: 95% / 8",
                      "95% in the first round, nothing after",
                      "20%, the paper's rate, whatever the target"),
             answer=0,
             explanation="Each round keeps (1 − rate) of the survivors, so after n rounds (1 − rate)^n remain: the "
                         "rate that reaches a density d in n rounds is 1 − d^(1/n). The paper's 20% per round "
                         "reaches 5% only after 13 or 14 rounds."),
    Question("03.no_rewind", "Set **rewind to** 'none (keep trained weights)'. What does IMP become?",
             choices=(("pruning with fine-tuning: the survivors keep their trained values and train on; no "
                      "lottery ticket, which restarts from θ₀ or θ_k"),
                      "the same as rewinding to θ₀",
                      "random re-initialization",
                      "one-shot pruning"),
             answer=0,
             explanation="Rewinding is what makes a lottery ticket: the subnetwork restarts from its early values. "
                         "Keeping the trained survivors is the older pruning recipe (Han et al. 2015, fine-tuning); "
                         "notebook 4 compares it with rewinding to θ₀ and to θ_k."),
    # Notebook 4: rewinding.
    Question("04.lenet_theta0", "On LeNet-300-100 at the paper's learning rate, will the ticket rewound to **θ₀** "
             "end clearly below the one rewound to an early **θ_k** (late rewinding)?",
             choices=("yes: θ₀ clearly worse", "no: within the seed-to-seed noise", "no: θ₀ clearly better"),
             explanation="Frankle et al. (2020) found LeNet stable to SGD noise from the start, so θ₀ should be "
                         "as good a rewind point as θ_k there."),
    Question("04.large_lr_theta0", "Now LeNet trained by Adam at a **large learning rate**, 7 pruned rounds, 5 trials. "
             "In how many of the 7 rounds will the ticket rewound to **θ₀** be shown to be *matching*: the 95% "
             "interval of (ticket − the dense network of its trial) entirely above −0.2 points?",
             scale=(0.0, 7.0, 1.0), unit="rounds",
             explanation="Frankle et al. (2019, 2020) found rewinding to θ₀ failing at the learning rates used for "
                         "large networks: the network is unstable early in training, and a ticket needs the weights "
                         "of a moment when it has become stable (θ_k)."),
    Question("04.late_rewinding_gain", "And the ticket of the same trials rewound to **θ_200** (late rewinding): in "
             "how many of the 7 rounds will it be shown to be matching?",
             scale=(0.0, 7.0, 1.0), unit="rounds",
             explanation="A verdict needs the whole interval on one side of the line: with 5 trials, a small "
                         "difference stays inconclusive, and a count of rounds says what the trials can show."),
    Question("04.liu_small_lr", "Liu et al. (2019) found that at a large learning rate, random re-init does as "
             "well as the ticket. At a **small** learning rate, what do you expect?",
             choices=("the ticket ahead of random re-init", "random re-init ahead of the ticket",
                      "the two within noise"),
             explanation="At a small learning rate the weights stay close to θ₀, so the mask IMP finds depends on "
                         "θ₀: the ticket's initial values matter, as Frankle & Carbin reported. Liu et al.'s "
                         "result holds at the large rates their training used."),
    Question("04.late_rewinding", "What does **late rewinding** (Frankle et al. 2019) rewind the survivors to?",
             choices=("θ_k: their values after k iterations of the dense network's training, early in training",
                      "their values at the end of training (fine-tuning)",
                      "θ₀, the values before training",
                      "fresh random values"),
             answer=0,
             explanation="'Late' means later than θ₀, still early in training: a few hundred iterations, or a "
                         "few percent of the run. Keeping the trained values is fine-tuning; rewinding only the "
                         "learning-rate schedule is learning-rate rewinding."),
    Question("04.matching", "A sparse network is **matching** when ...",
             choices=(("trained in isolation it reaches the dense network's test accuracy (within a tolerance) "
                      "in no more training"),
                      "its mask matches the mask of another run",
                      "it reaches 100% training accuracy",
                      "its weights match θ₀"),
             answer=0,
             explanation="Frankle et al. (2020) call a subnetwork matching when, trained alone, it reaches the dense "
                         "network's test accuracy; in practice up to a tolerance written down before the run (later "
                         "papers use one standard deviation over trials; notebook 4 states its own, see "
                         "docs/glossary.md)."),
    Question("04.why_theta_k", "Why can rewinding to θ_k rescue tickets that θ₀ cannot?",
             choices=(("after a few iterations the network is stable to SGD noise: copies trained from θ_k on "
                      "different batch orders end in one linearly connected region, so the mask found by one run "
                      "still suits the weights it is rewound to"),
                      "θ_k has more weights than θ₀",
                      "θ_k is closer to a random initialization",
                      "rewinding to θ_k trains for longer"),
             answer=0,
             explanation="Frankle et al. (2020): IMP subnetworks match exactly when they are stable to SGD noise; "
                         "large networks and learning rates become stable only after some training. A run rewound "
                         "to θ_k trains for fewer iterations (T − k), not more."),
    # Notebook 5: the paper's experiment, in full.
    Question("05.ticket_at_3_6", "The paper says the ticket at **P_m 3.6%** is back at the dense network's accuracy. "
             "The kit judges that claim on five trials: the 95% interval of (ticket − the dense network of its "
             "trial) against ± 0.2 points. Its verdict will be ...",
             choices=("consistent: the whole interval within ± 0.2 points",
                      "inconclusive: the interval straddles an edge of ± 0.2 points",
                      "inconsistent: the whole interval outside ± 0.2 points"),
             explanation="Frankle & Carbin's tickets return to the dense network's accuracy at P_m 3.6% after being "
                         "above it at larger sizes. With five trials an interval is a few tenths of a point wide, "
                         "about the width of the claim's whole range: a verdict needs the whole interval inside that "
                         "range (consistent) or outside it (inconsistent). *Matching* (docs/glossary.md) asks less: "
                         "at most 0.2 points below dense, with no upper limit."),
    Question("05.claims_confirmed", "The table judges **13 of the paper's claims** about LeNet-300-100 (and a "
             "placebo). With five trials, how many will it find *consistent* (the whole interval inside what the "
             "claim allows)?",
             scale=(0.0, 13.0, 1.0), unit="claims",
             explanation="Most of the paper's LeNet claims are about differences of a few tenths of a point, the size "
                         "of what the seed alone does. Five trials can confirm the direction of an effect long "
                         "before they pin down its size."),
    Question("05.inconclusive", "A claim's verdict is **inconclusive**. What does that say?",
             choices=(("the 95% interval holds values the claim allows and values it does not: these trials cannot "
                      "decide"),
                      "the paper's claim is wrong",
                      "the claim holds, with a small effect",
                      "the run failed and must be repeated"),
             answer=0,
             explanation="An interval that straddles an edge of the allowed range fits both answers. More trials "
                         "narrow it (its width shrinks about as 1/√n); only an interval entirely inside the range is "
                         "consistent, and only one entirely outside is inconsistent."),
    Question("05.paired", "Why is each comparison **paired within a trial** (the ticket minus the dense network of the "
             "same seed) before it is averaged over trials?",
             choices=(("the two networks of a trial share θ₀ and the data order: pairing cancels what the seed does "
                      "to both, which is as large as the effects the paper reports"),
                      "pairing makes the interval wider, which is safer",
                      "because the paper does so; it changes nothing",
                      "so that the test set can choose the best round"),
             answer=0,
             explanation="Changing only the seed moves a dense network by tenths of a point. A difference taken within "
                         "a trial removes what the trial's networks have in common, so the interval measures the "
                         "effect, not the spread of the seeds."),
    Question("05.placebo", "The last row compares **two dense networks** that differ only in their seed, where the "
             "paper claims nothing. Why is it there?",
             choices=(("to show what the method finds where there is nothing to find: it must not call a difference "
                      "real, and its spread is the noise floor the claims are held to"),
                      "to check that the dense network reaches 98%",
                      "it is one of the paper's claims",
                      "to pick the better of the two seeds"),
             answer=0,
             explanation="A placebo guards the method: if two equivalent networks came out 'different', every other "
                         "verdict would be suspect. The seed-to-seed spread is also the noise floor: a claimed "
                         "difference smaller than it is never called consistent."),
    # Notebook 6: stability to SGD noise (Frankle et al. 2020) and retraining after pruning (Renda et al. 2020).
    Question("06.dense_stable_k0", "Two copies of the **dense** LeNet-300-100 start from the same θ₀ (k = 0) and "
             "train on different batch orders. Will the error barrier on the straight path between them be under "
             "2 points (stable)?",
             choices=("stable: the barrier stays under 2 points", "unstable: a barrier of 2 points or more"),
             explanation="Frankle et al. (2020) found LeNet on MNIST stable from initialization: the copies end in one "
                         "linearly connected valley, so SGD noise does not decide where training goes. Larger "
                         "networks (ResNet-20 on CIFAR-10, ResNet-50 on ImageNet) became stable only after some "
                         "training."),
    Question("06.barrier_vs_k", "Now split the copies later, at iteration k instead of 0. As k grows, the dense "
             "network's error barrier will ...",
             choices=("shrink", "stay about the same (within the noise between seeds)", "grow"),
             explanation="The later the split, the more of the training the two copies share, so they can only "
                         "drift less apart: Frankle et al. (2020) saw barriers fall with k and reach about zero "
                         "early in training. Where the barrier is already tiny at k = 0, as for LeNet, there is "
                         "little left to shrink."),
    Question("06.stable_not_matching", "Suppose a kind of subnetwork is **stable** at k = 0 (error barrier under 2 "
             "points) but **not matching** (its accuracy more than 0.2 points below the dense network's). What "
             "follows?",
             choices=(("stability alone does not make a subnetwork matching: two copies can share one valley that "
                       "is worse than the dense network's"),
                      "the error barrier was measured wrongly: a stable network is always matching",
                      "the subnetwork is a winning ticket",
                      "the dense network must be unstable"),
             answer=0,
             explanation="Frankle et al. (2020) found IMP subnetworks matching only when they were stable: stability "
                         "is what IMP needs, not a guarantee of accuracy. A randomly pruned network can be stable "
                         "and still lose accuracy, because its connections are worse, not because SGD noise "
                         "scatters it."),
    Question("06.matching_interval", "Over 3 trials, (subnetwork − dense network of the same trial) has the 95% "
             "interval [−0.35, −0.05] points. Is the subnetwork **matching** by lthkit's definition?",
             choices=("inconclusive: the interval straddles −0.2 points", "yes: its mean is above −0.2 points",
                      "no: its interval lies below 0", "yes: part of it lies above −0.2 points"),
             answer=0,
             explanation="lthkit calls a subnetwork matching when its accuracy is at most 0.2 points below the dense "
                         "network of the same trial, judged on the paired 95% interval: consistent when the whole "
                         "interval lies above −0.2, inconsistent when all of it lies below, inconclusive when it "
                         "straddles the line, as here (docs/glossary.md). More trials narrow the interval."),
    Question("06.lr_rewinding", "What does **learning-rate rewinding** (Renda et al. 2020) do after each pruning round?",
             choices=(("keeps the trained weights of the survivors and replays the learning-rate schedule from "
                       "iteration k"),
                      "rewinds the survivors to θ_k and replays the schedule (weight rewinding)",
                      "keeps the trained weights and trains on at the final, smallest rate (fine-tuning)",
                      "re-initializes the survivors and trains at a large learning rate"),
             answer=0,
             explanation="Renda et al. compare three ways to retrain for the same budget: fine-tuning (trained "
                         "weights, final small rate), weight rewinding (θ_k and the schedule from k) and "
                         "learning-rate rewinding (trained weights, the schedule from k). They found both rewinding "
                         "methods ahead of fine-tuning, and learning-rate rewinding as good as or better than "
                         "weight rewinding."),
    # Notebook 7: what a ticket is made of (Zhou et al. 2019; pruning at initialization, Frankle et al. 2021).
    Question("07.signs_reset", "Keep IMP's mask, but reset each survivor to the **sign** of its θ₀ value times one "
             "constant per layer: its initial magnitude is thrown away. Trained like the ticket, against the "
             "ticket rewound to θ₀ itself it will end ...",
             choices=("about as accurate as θ₀ (within half a point)", "clearly worse, like a fresh random init",
                      "clearly better than θ₀"),
             explanation="Zhou et al. (2019) found the signs of θ₀ with a constant magnitude per layer about as good "
                         "as θ₀ itself, while shuffling θ₀'s values within a layer (which scrambles the signs) or a "
                         "fresh initialization did worse: what a survivor needs from θ₀ is mostly its sign."),
    Question("07.supermask_accuracy", "Now no training at all: θ₀'s signs times the layer constant, under the best "
             "mask (`large_final_same_sign`). What test accuracy will this **untrained** LeNet reach on MNIST? "
             "(Chance is 10%.)",
             scale=(0.0, 100.0, 5.0), unit="percent",
             explanation="Zhou et al. (2019) report such supermasks far above chance on MNIST (86% for their network): "
                         "the mask alone already carries much of what training would learn."),
    Question("07.why_signs", "The signs of θ₀ with one constant per layer do about as well as θ₀, and θ₀'s own values "
             "shuffled within the layer do worse. What does that say about a ticket's initial values?",
             choices=("what matters is mostly each survivor's sign; its exact magnitude matters little",
                      "the exact magnitudes matter and the signs do not",
                      "any initial values do, as long as the mask is IMP's",
                      "the constant per layer must be learned"),
             answer=0,
             explanation="Shuffling keeps the layer's distribution of values but scrambles which weight gets which "
                         "sign; the signed constant keeps every sign and drops the magnitudes. Zhou et al. found the "
                         "second about as good as θ₀ and the first worse: the signs carry what θ₀ gives the mask."),
    Question("07.supermask_why", "Why can θ₀ under a `large_final` mask be far above chance with no training?",
             choices=(("the mask was chosen from the trained weights: it keeps the weights training made large and "
                       "zeroes the ones it pushed toward zero, so masking moves θ₀ the way training did"),
                      "any random mask of θ₀ is far above chance",
                      "the mask was chosen on the test set",
                      "a pruned network is always more accurate than a dense one"),
             answer=0,
             explanation="Zhou et al. call it masking as training: setting to zero the weights that training moved "
                         "toward zero, and keeping the ones it moved away from zero (in θ₀'s sign, for "
                         "`large_final_same_sign`), is itself a step in the direction training took. A random mask "
                         "of θ₀ stays near chance."),
    Question("07.pai_shuffle", "A pruning-at-initialization method keeps its accuracy when its mask is **shuffled** "
             "within each layer (same count per layer, other connections). What did the method find?",
             choices=("how many weights each layer should keep, not which ones",
                      "exactly the connections that matter, like IMP",
                      "nothing: its accuracy is at chance",
                      "the initial values of the survivors"),
             answer=0,
             explanation="Frankle et al. (2021, 'Pruning Neural Networks at Initialization: Why Are We Missing the "
                         "Mark?') found SNIP, GraSP, SynFlow and magnitude at initialization unhurt by this check, "
                         "while IMP's ticket loses accuracy when shuffled: the methods at initialization find per-layer "
                         "densities, IMP particular connections."),
    # Notebook 8: a ticket for the learner's own network.
    Question("08.ticket_matches", "`find_ticket` will prune your network round after round, down to what "
             "`target_sparsity` asks for. At that last round, will the ticket's test accuracy be within **half a "
             "point** of the dense network's, or above it?",
             choices=("yes: within half a point of dense, or above", "no: more than half a point below dense"),
             explanation="Frankle & Carbin 'consistently find winning tickets that are less than 10-20% of the size' "
                         "of the fully connected and convolutional networks they study on MNIST and CIFAR-10. Your "
                         "network is a new case: one search with one seed shows a curve, not yet a verdict."),
    Question("08.reinit_gap", "At that last round, **how many points** of test accuracy will the same masks, "
             "re-initialized, be behind the ticket? (Negative: ahead of it.)",
             scale=(-5.0, 15.0, 0.5), unit="points",
             explanation="Frankle & Carbin found re-initialized tickets learning more slowly and ending below the "
                         "ticket once the network is sparse: the gap is the evidence that θ₀ matters for this "
                         "network, not only the mask."),
    Question("08.optimizer_revival", "Why does lthkit zero the pruned weights again after every `optimizer.step()`, "
             "and not only their gradients?",
             choices=(("Adam's running moments (and SGD's momentum) keep moving a weight whose gradient is zero: a "
                       "pruned weight would come back to life"),
                      "the forward pass would otherwise ignore the mask",
                      "to save memory",
                      "weight decay is applied before the gradient"),
             answer=0,
             explanation="An optimizer's state remembers past gradients: Adam divides its first moment by the second "
                         "and keeps stepping after the gradient turns zero, and momentum carries the last update on. "
                         "Masking only in `forward`, or only the gradients, lets a pruned weight grow; zeroing it after "
                         "every step keeps the mask, whatever optimizer your loop uses."),
    Question("08.one_seed", "Your search shows the ticket ahead of the re-initialized masks, in one run with one "
             "seed. What do you need before calling it a winning ticket?",
             choices=(("the search repeated with other seeds (θ₀ and batch order), and the paired differences' 95% "
                       "interval judged against a tolerance written down before the run"),
                      "nothing: one run is enough when the gap is larger than half a point",
                      "a longer training of the same run",
                      "the test accuracy of the best round, chosen on the test set"),
             answer=0,
             explanation="One seed is one draw of θ₀ and of the batch order; the gap between two curves moves with "
                         "both. lthkit judges a claim on several trials: the mean of the paired differences with its "
                         "95% interval, against a tolerance fixed beforehand (matching: at most 0.2 points below "
                         "the dense network, docs/glossary.md)."),
    Question("08.ticket_file", "What must a ticket's file hold so that someone else can train the ticket again?",
             choices=("the mask and the weights the survivors start from (θ₀ or θ_k)",
                      "the trained weights only: the zeros show the mask",
                      "the mask only: any initialization will do",
                      "the training loop's source code"),
             answer=0,
             explanation="A ticket is a mask together with the values its survivors restart from: the trained "
                         "weights do not hold θ₀, and the same mask with other initial values is the random re-init "
                         "control, which does worse. lthkit's file holds both, and the trained weights beside them."),
    # Notebook 9: sparsity is not speed.
    Question("09.masked_speed", "lthkit stores a ticket as dense weights times a mask. A ticket with about **10%** of "
             "LeNet's weights, on a batch of 64 images, one thread: how long will its forward pass take against the "
             "dense network's?",
             choices=("about the same time as dense", "about a tenth of the dense time, or less",
                      "faster, but by less than ten times", "clearly longer than dense"),
             explanation="A dense matrix product does every multiply-add, zero or not: the work is the layer's size, "
                         "not its number of survivors. Stored as weights × mask, a ticket costs what the dense "
                         "network costs."),
    Question("09.csr_speed", "The same ticket stored as **CSR** (only the survivors, each with its column index), "
             "batch 64, one thread. Will it beat the dense network?",
             choices=("yes: clearly faster than dense", "no: about as fast as dense, or slower"),
             explanation="CSR skips the zeros but reads an index for every survivor and vectorizes worse than a dense "
                         "product, so it wins only below a crossover density that depends on the layer shapes, the "
                         "batch size, the threads and the machine. Section 4 measures where it lies on yours."),
    Question("09.why_same", "Why does a ticket stored as weights × mask run no faster than the dense network?",
             choices=("the dense matrix product multiplies every entry, zeros included",
                      "PyTorch undoes the mask before each forward pass",
                      "the mask itself takes most of the time",
                      "the ticket has more layers than the dense network"),
             answer=0,
             explanation="To the processor a zero is a number like any other: the number of multiply-adds of a "
                         "dense layer is its size. Sparsity becomes speed only when the zeros leave the computation: "
                         "whole rows and columns (a compact or structured network) or one at a time (a sparse format)."),
    Question("09.two_four", "NVIDIA's sparse tensor cores multiply at up to twice the dense speed for the 2:4 pattern. "
             "What does a lottery ticket need to use them?",
             choices=(("re-pruning to at most 2 survivors in every 4 consecutive weights of a row, which changes the "
                       "network and can cost accuracy"),
                      "nothing: any mask with half the weights or fewer runs on them",
                      "only a conversion of the file format",
                      "retraining from θ₀ with the same mask"),
             answer=0,
             explanation="An unstructured mask has rows with 3 or 4 survivors in some groups of 4; the 2:4 kernels "
                         "cannot run it. Keeping the two largest of each group is a different, sparser network, and "
                         "section 5 measures what that costs without retraining."),
    Question("09.compact", "Why is the compact network exactly as accurate as the ticket, and faster?",
             choices=(("it removes only units that compute nothing the output reads (no surviving outgoing weight, "
                       "or a constant folded into the next bias), so it is a smaller dense network computing the "
                       "same function"),
                      "it is retrained after compaction",
                      "it keeps only the most accurate neurons",
                      "it stores its weights in a sparse format"),
             answer=0,
             explanation="Unstructured pruning leaves some whole units cut off. Removing them changes no output, and "
                         "what remains is an ordinary dense network, faster by as much as it is smaller."),
])


# ------------------------------------------------------------------------------------------ grading

@dataclass
class AnswerSheet:
    """One learner's answers to one notebook's questions, gradable like a kata.

    Attributes:
        notebook: the notebook's number (``"02"``).
        answers: ``{question name: Answer}``.
        submission: where the answers came from (a notebook path, or ``"this notebook"``).
    """

    notebook: str
    answers: dict = field(default_factory=dict)
    submission: str = "this notebook"

    def grade(self) -> GradeReport:
        """A :class:`~lthkit.grading.spec.GradeReport` with one check per question of the notebook."""
        checks = tuple(_graded(question, self.answers.get(question.name)) for question in
                       QUESTIONS.of_notebook(self.notebook))
        if not checks:
            return ungraded(self.submission, "missing", f"notebook {self.notebook} asks no questions")
        return GradeReport(QUESTIONS_KATA, self.submission, checks)


def ungraded(submission: str, status: str, message: str) -> GradeReport:
    """A report for answers that cannot be graded at all (``status`` as in a kata's report), with one check."""
    check = CheckResult("answers", "the notebook's recorded answers", "error", 0, 1, message,
                        "Answer the questions in the course notebook and save it; submit the .ipynb.")
    return GradeReport(QUESTIONS_KATA, submission, (check,), status, message)


def _graded(question: Question, answer: Answer | None) -> CheckResult:
    kind = "prediction" if question.kind == "prediction" else "question"
    title = f"{kind}: {question.prompt.replace('*', '')}"  # the prompt's Markdown emphasis, not in a table
    if answer is None or answer.value is None:
        return CheckResult(question.name, title, "fail", 0, question.points, f"no answer recorded for {question.name}",
                           f"Run the cell that asks it and answer with the widget (or "
                           f"record_answer({question.name!r}, ...)).")
    if question.kind == "prediction":
        if not answer.before_result:
            return CheckResult(question.name, title, "fail", 0, question.points,
                               f"predicted {question.show(answer.value)}, but only after the result was shown",
                               "A prediction counts when it is made before the run: answer it, then run the "
                               "experiment.")
        return CheckResult(question.name, title, "pass", question.points, question.points)
    if answer.value == question.answer:
        return CheckResult(question.name, title, "pass", question.points, question.points)
    return CheckResult(question.name, title, "fail", 0, question.points,
                       f"answered: {question.show(answer.value)}", question.explanation)


def answers_from_notebook(notebook: dict) -> dict:
    """The answers recorded in a notebook's saved outputs (``{question name: Answer}``, the last record of each)."""
    found = {}
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs if isinstance(outputs, list) else []:
            data = output.get("data") if isinstance(output, dict) else None
            record = data.get(ANSWER_MIMETYPE) if isinstance(data, dict) else None
            if isinstance(record, str):
                try:
                    record = json.loads(record)
                except ValueError:
                    record = None
            answer = Answer.from_record(record)
            if answer is not None:
                found[answer.question] = answer
    return found


def notebook_number(path) -> str | None:
    """The number a course notebook's file name starts with (``02_iterative_magnitude_pruning.ipynb`` → ``"02"``)."""
    match = re.match(r"^(\d\d)_", Path(path).name)
    return match.group(1) if match else None


def grade_notebook_questions(path) -> GradeReport:
    """Grade the questions of a saved notebook (``.ipynb``): the answers recorded in its outputs.

    The notebook is recognized by its file name's number (``02_...``), or else by the questions it answered.
    """
    path = Path(path)
    if path.suffix != ".ipynb":
        return ungraded(str(path), "missing", "questions are answered in a notebook (.ipynb), not in a .py file")
    try:
        notebook = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as error:
        return ungraded(str(path), "syntax", f"cannot read the notebook: {error}"[:300])
    answers = answers_from_notebook(notebook)
    number = notebook_number(path) or next((QUESTIONS[name].notebook for name in answers), None)
    if number is None or not QUESTIONS.of_notebook(number):
        return ungraded(str(path), "missing", "no course questions found: the file name does not start with the "
                        "number of a notebook that asks questions, and no answer is recorded")
    return AnswerSheet(number, {name: answer for name, answer in answers.items()
                                if QUESTIONS[name].notebook == number}, str(path)).grade()
