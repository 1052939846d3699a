"""The ticket-anatomy study: what a ticket is made of, and pruning at initialization (notebook 7).

Each *experiment* of :data:`EXPERIMENTS` is a list of labelled series, each series one kind of run
(a :class:`~lthkit.imp.config.LotteryConfig` differing from the base in ``criterion`` or
``control``; the resets, zeros and the IMP ticket beside pruning at init use the base's criterion,
``large_final`` by default), trained for every trial through :func:`lthkit.runs.experiments.run_experiments` (cached,
resumable, one driver). The experiments and the question each answers:

* ``criteria``: which weights should a ticket keep? IMP with each mask criterion of
  :mod:`lthkit.imp.scorers` (Zhou et al. 2019, §2);
* ``resets``: what must the survivors be reset to? θ₀, the signs of θ₀ with a constant per layer,
  θ₀ shuffled within the layer, a fresh init (Zhou et al. §3, :mod:`lthkit.imp.resets`);
* ``zeros``: do pruned weights need to be zero? zero vs frozen at θ₀ (Zhou et al. §4);
* ``pai``, ``pai_shuffled``, ``pai_reinit``: can a mask be found without training? SNIP, GraSP,
  SynFlow, magnitude and random at init beside the IMP ticket at the same densities, and the same
  masks shuffled within each layer or with re-initialized survivors (Frankle et al. 2021,
  :mod:`lthkit.imp.scorers`).

Besides these trained runs, :func:`supermask_rows` measures every mask of the ``criteria``
experiment *untrained*: the test accuracy of θ₀ ⊙ mask, and of sign(θ₀)·σ ⊙ mask (Zhou et al.
§5, the supermask).

:func:`run_study` runs them all and, given a folder, writes ``summary.csv`` (one row per
experiment, series, trial and round), ``supermask.csv``, ``tables.md`` (the measured
numbers as tables, for the report), one figure per question and ``run_info.json``; ``python -m lthkit anatomy`` (and ``prune-at-init``) is its command line.

Example:
    >>> from lthkit.runs.presets import preset_config
    >>> [label for label, _ in EXPERIMENTS["zeros"](preset_config("anatomy"))]
    ['pruned weights zero', 'pruned weights frozen at θ₀']
    >>> len(study_configs(preset_config("anatomy"), trials=3))
    78
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..core.data import get_data
from ..core.files import atomic_write_files, csv_text, json_bytes, with_kept_notes
from ..core.models import build_model
from ..errors import LthkitError
from ..imp.config import LotteryConfig
from ..imp.records import LotteryResult
from ..imp.resets import sign_constant_reinit, supermask_accuracy
from ..imp.scorers import SCORERS
from ..reporting.claims import Claim, JudgedClaim, claims_csv_text, claims_markdown, judge_claims, verdict_headline
from ..reporting.provenance import read_run_info, run_info
from ..reporting.stats import Expectation, spread
from ..reporting.summaries import summary_rows
from ..runs.experiments import run_experiments
from .base import Study

#: Labels of the pruning-at-init methods (and IMP) in figures, in order.
PAI_LABELS = {"imp": "IMP ticket", **{name: SCORERS.label_at_init(name) for name in SCORERS.at_init()}}
#: The pruning-at-init methods, in the order figures list them.
PAI_METHODS = SCORERS.at_init()


def _criteria(base: LotteryConfig) -> list[tuple[str, LotteryConfig]]:
    return [(name, base.replace(control="ticket", criterion=name)) for name in SCORERS.criteria()]


def _resets(base: LotteryConfig) -> list[tuple[str, LotteryConfig]]:
    return [("θ₀ (the ticket)", base.replace(control="ticket")),
            ("signs of θ₀ × layer constant", base.replace(control="sign_constant")),
            ("θ₀ shuffled in each layer", base.replace(control="shuffled_init")),
            ("random re-init", base.replace(control="reinit"))]


def _zeros(base: LotteryConfig) -> list[tuple[str, LotteryConfig]]:
    return [("pruned weights zero", base.replace(control="ticket")),
            ("pruned weights frozen at θ₀", base.replace(control="frozen_pruned"))]


def _pai(check: str, imp_control: str):
    def series(base: LotteryConfig) -> list[tuple[str, LotteryConfig]]:
        runs = [(PAI_LABELS["imp"], base.replace(control=imp_control))]
        return runs + [(PAI_LABELS[m], base.replace(control=f"pai_{m}{check}")) for m in PAI_METHODS]
    return series


#: Every experiment of the study: ``name -> (base config -> [(series label, config), ...])``.
EXPERIMENTS: dict[str, Callable[[LotteryConfig], list[tuple[str, LotteryConfig]]]] = {
    "criteria": _criteria,
    "resets": _resets,
    "zeros": _zeros,
    "pai": _pai("", "ticket"),
    "pai_shuffled": _pai("_shuffled", "random_prune"),  # IMP's mask shuffled in each layer: random pruning
    "pai_reinit": _pai("_reinit", "reinit"),
}
#: The experiments of ``python -m lthkit prune-at-init``.
PAI_EXPERIMENTS = ("pai", "pai_shuffled", "pai_reinit")
#: What each experiment asks, in plain words (figure titles).
QUESTIONS = {
    "criteria": "Which weights should a ticket keep? (mask criteria)",
    "resets": "What must the survivors be reset to?",
    "zeros": "Must the pruned weights be zero?",
    "pai": "Pruning at initialization against the IMP ticket",
    "pai_shuffled": "... with each mask shuffled within its layers",
    "pai_reinit": "... with the survivors re-initialized",
    "supermask": "How good is a mask without any training? (supermask)",
}
#: Columns of the study's ``summary.csv``.
SUMMARY_COLUMNS = ("experiment", "series", "control", "criterion", "trial", "round", "density", "early_stop_iter",
                   "test_acc_early_stop", "test_acc_final")
#: Columns of ``supermask.csv``.
SUPERMASK_COLUMNS = ("criterion", "weights", "trial", "round", "density", "test_acc")
#: What ``supermask.csv``'s ``weights`` column holds: the untrained weights a mask is put on.
SUPERMASK_WEIGHTS = {"theta0": "θ₀ ⊙ mask", "sign_constant": "sign(θ₀)·σ ⊙ mask"}
#: Every file :func:`run_study` writes into its folder.
STUDY_FIGURES = {"criteria": "criteria.png", "resets": "resets.png", "zeros": "zeros.png",
                 "supermask": "supermask.png", "pai": "pruning_at_init.png"}
STUDY_OUTPUTS = ("summary.csv", "supermask.csv", "tables.md", "run_info.json", "README.md", *STUDY_FIGURES.values())


def check_experiments(names) -> list[str]:
    """``names`` as a list, each an experiment of :data:`EXPERIMENTS` (a one-line error otherwise)."""
    names = list(names)
    unknown = [name for name in names if name not in EXPERIMENTS]
    if unknown or not names:
        raise LthkitError(f"unknown experiment {', '.join(map(repr, unknown)) or 'none given'}; choose from "
                          f"{', '.join(EXPERIMENTS)}")
    return names


def study_configs(base: LotteryConfig, *, trials: int = 3, first_seed: int = 0, experiments=tuple(EXPERIMENTS)):
    """Every distinct run of the study's experiments for seeds ``first_seed ...``, in order.

    Example:
        >>> from lthkit.runs.presets import preset_config
        >>> [c.control for c in study_configs(preset_config("anatomy"), trials=1, experiments=["zeros"])]
        ['ticket', 'frozen_pruned']
    """
    configs = []
    for name in check_experiments(experiments):
        for _, config in EXPERIMENTS[name](base):
            for trial in range(trials):
                configs.append(config.replace(seed=first_seed + trial))
    return list(dict.fromkeys(configs))


def study_rows(results: dict[LotteryConfig, LotteryResult], base: LotteryConfig, *, trials: int, first_seed: int = 0,
               experiments=tuple(EXPERIMENTS)) -> list[dict]:
    """One row per experiment, series, trial and round (:data:`SUMMARY_COLUMNS`) of finished runs."""
    rows = []
    for name in check_experiments(experiments):
        for label, config in EXPERIMENTS[name](base):
            for trial in range(trials):
                run = config.replace(seed=first_seed + trial)
                for row in summary_rows([results[run]]):
                    rows.append({"experiment": name, "series": label, "criterion": run.criterion, **row})
    return [{column: row[column] for column in SUMMARY_COLUMNS} for row in rows]


def supermask_rows(results, data) -> list[dict]:
    """The untrained accuracy of every mask of the given ticket runs (:data:`SUPERMASK_COLUMNS`).

    For each run and round: θ₀ ⊙ mask and sign(θ₀)·σ ⊙ mask (:func:`lthkit.imp.resets.sign_constant_reinit`)
    on the test set, without any training.
    """
    rows = []
    for result in results:
        config = result.config
        theta0 = build_model(config.model, seed=config.seed).state_dict()
        for round_index, (round_result, mask) in enumerate(zip(result.rounds, result.masks)):
            for weights in SUPERMASK_WEIGHTS:
                model = build_model(config.model, seed=config.seed)
                if weights == "sign_constant":
                    sign_constant_reinit(model, theta0, mask)
                accuracy = supermask_accuracy(model, mask, data.test_x, data.test_y)
                rows.append({"criterion": config.criterion, "weights": weights, "trial": config.seed,
                             "round": round_index, "density": round_result.density, "test_acc": accuracy})
    return rows




def read_study_csv(path) -> list[dict]:
    """Read a study's ``summary.csv`` or ``supermask.csv`` back, numbers as numbers.

    Raises:
        LthkitError: the file is missing or is not such a CSV.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise LthkitError(f"cannot read {path}: {error.strerror or error}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    columns = SUMMARY_COLUMNS if path.name != "supermask.csv" else SUPERMASK_COLUMNS
    if not rows or set(columns) - set(rows[0]):
        raise LthkitError(f"{path} is not a ticket-anatomy {path.name} (columns {', '.join(columns)})")
    integers, floats = {"trial", "round", "early_stop_iter"}, {"density", "test_acc_early_stop", "test_acc_final",
                                                               "test_acc"}
    try:
        return [{key: int(value) if key in integers else float(value) if key in floats else value
                 for key, value in row.items()} for row in rows]
    except ValueError as error:
        raise LthkitError(f"{path}: {error}") from None


@dataclass
class AnatomyRun:
    """What :func:`run_study` measured.

    Attributes:
        rows: ``summary.csv``'s rows (:data:`SUMMARY_COLUMNS`).
        supermask: ``supermask.csv``'s rows (:data:`SUPERMASK_COLUMNS`), empty without ``criteria``.
        results: every finished run, by config.
        info: what ``run_info.json`` records (command, machine, time).
    """

    rows: list[dict]
    supermask: list[dict]
    results: dict = field(repr=False)
    info: dict = field(default_factory=dict)


def run_study(out=None, *, base: LotteryConfig, trials: int = 3, first_seed: int = 0, experiments=tuple(EXPERIMENTS),
              device: str | None = None, cache_dir=None, data_root=None, progress: bool = True, workers: int = 1,
              scheduler: str | None = None, argv=None) -> AnatomyRun:
    """Train (or read from the cache) every run of the chosen experiments, then measure the supermasks.

    Args:
        out: a folder to write :data:`STUDY_OUTPUTS` into (``None``: write nothing).
        base: the config every series changes (``preset_config("anatomy")``).
        trials: independent trials (seeds ``first_seed`` ...).
        first_seed: the seed of the first trial.
        experiments: names of :data:`EXPERIMENTS`.
        device, cache_dir, data_root, progress, workers, scheduler: as for
            :func:`lthkit.runs.experiments.run_experiments`.
        argv: the command line, recorded in ``run_info.json``.

    Returns:
        A :class:`AnatomyRun`.

    Example:
        >>> from lthkit.runs.presets import preset_config
        >>> study = run_study("results/ticket-anatomy", base=preset_config("anatomy"), trials=3)  # doctest: +SKIP
        >>> anatomy_plot(study.rows, "criteria")  # lthkit.reporting.plots  # doctest: +SKIP
    """
    experiments = check_experiments(experiments)
    configs = study_configs(base, trials=trials, first_seed=first_seed, experiments=experiments)
    started = time.time()
    finished = run_experiments(configs, cache_dir=cache_dir, device=device, data_root=data_root, progress=progress,
                               workers=workers, scheduler=scheduler)
    results = dict(zip(configs, finished))
    rows = study_rows(results, base, trials=trials, first_seed=first_seed, experiments=experiments)
    supermask = []
    if "criteria" in experiments:
        data = get_data(base.data, device or ("cuda" if torch.cuda.is_available() else "cpu"), data_root)
        supermask = supermask_rows([results[c.replace(seed=first_seed + t)] for _, c in _criteria(base)
                                    for t in range(trials)], data)
    seconds = sum(r.train.seconds for result in finished for r in result.rounds)
    info = run_info("anatomy", argv=argv, device=device or "cpu", config=base.to_dict(), trials=trials,
                    trainings=sum(len(r.rounds) for r in finished), training_seconds=round(seconds, 1),
                    wall_seconds=round(time.time() - started, 1), experiments=experiments, first_seed=first_seed,
                    runs=len(configs))
    study = AnatomyRun(rows=rows, supermask=supermask, results=results, info=info)
    if out is not None:
        write_study(out, study)
    return study


def study_figures(rows, supermask) -> dict[str, bytes]:
    """The study's figures as PNG bytes, by file name (those whose experiments have rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.files import figure_png
    from ..reporting.plots import anatomy_plot, pai_plot, supermask_plot

    present = {row["experiment"] for row in rows}
    pngs = {}
    for name in ("criteria", "resets", "zeros"):
        if name in present:
            figure = anatomy_plot(rows, name, title=QUESTIONS[name])
            pngs[STUDY_FIGURES[name]] = figure_png(figure, dpi=120)
            plt.close(figure)
    if supermask:
        figure = supermask_plot(supermask, title=QUESTIONS["supermask"])
        pngs[STUDY_FIGURES["supermask"]] = figure_png(figure, dpi=120)
        plt.close(figure)
    if present & set(PAI_EXPERIMENTS):
        figure = pai_plot(rows)
        pngs[STUDY_FIGURES["pai"]] = figure_png(figure, dpi=120)
        plt.close(figure)
    return pngs


def _table(rows, series_key: str, value_key: str, title: str) -> str:
    """One markdown table: a row per round (mean density), a column per series, mean [min, max] in percent."""
    series = list(dict.fromkeys(row[series_key] for row in rows))
    rounds = sorted({row["round"] for row in rows})
    lines = [f"### {title}", "", "| round | weights remaining | " + " | ".join(series) + " |",
             "| --- | --- | " + " | ".join("---" for _ in series) + " |"]
    for round_index in rounds:
        at = [row for row in rows if row["round"] == round_index]
        density = sum(row["density"] for row in at) / len(at)
        cells = []
        for name in series:
            values = [100 * row[value_key] for row in at if row[series_key] == name]
            cells.append(f"{sum(values) / len(values):.2f} [{min(values):.2f}, {max(values):.2f}]" if values else "")
        lines.append(f"| {round_index} | {100 * density:.1f}% | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tables_markdown(rows, supermask) -> str:
    """Every experiment's test accuracy (%) per round and series, mean [min, max] over trials, as markdown.

    Example:
        >>> rows = [{"experiment": "zeros", "series": "zero", "round": 0, "density": 1.0, "test_acc_early_stop": 0.9}]
        >>> print(tables_markdown(rows, []).splitlines()[6])
        | 0 | 100.0% | 90.00 [90.00, 90.00] |
    """
    parts = ["Test accuracy at early stop in percent, mean [min, max] over the trials (`lthkit.studies.anatomy`).", ""]
    for name in EXPERIMENTS:
        picked = [row for row in rows if row["experiment"] == name]
        if picked:
            parts.append(_table(picked, "series", "test_acc_early_stop", f"{name}: {QUESTIONS[name]}"))
    for weights, label in SUPERMASK_WEIGHTS.items():
        picked = [row for row in supermask if row["weights"] == weights]
        if picked:
            parts.append(_table(picked, "criterion", "test_acc", f"supermask, untrained {label}"))
    return "\n".join(parts)


def write_study(out, study: AnatomyRun) -> None:
    """Write the study's CSVs, figures and ``run_info.json`` into ``out``, as one set."""
    out = Path(out)
    files = {out / "summary.csv": csv_text(study.rows, SUMMARY_COLUMNS).encode(),
             out / "supermask.csv": csv_text(study.supermask, SUPERMASK_COLUMNS).encode(),
             out / "tables.md": tables_markdown(study.rows, study.supermask).encode(),
             out / "run_info.json": json_bytes(study.info),
             out / "README.md": with_kept_notes(out / "README.md", report_text(study.rows, study.supermask,
                                                                               study.info)).encode()}
    files.update({out / name: png for name, png in study_figures(study.rows, study.supermask).items()})
    atomic_write_files(files)


def load_study(folder) -> tuple[list[dict], list[dict]] | None:
    """``(summary rows, supermask rows)`` of a committed study folder, or ``None`` when it has none."""
    folder = Path(folder)
    if not (folder / "summary.csv").is_file():
        return None
    supermask = read_study_csv(folder / "supermask.csv") if (folder / "supermask.csv").is_file() else []
    return read_study_csv(folder / "summary.csv"), supermask


def dumps_info(study: AnatomyRun) -> str:
    """``run_info.json``'s text."""
    return json.dumps(study.info, indent=2)


# --- the report: each finding of the two papers beside ours ------------------------------------------

#: The accuracy of guessing on MNIST's ten classes, beside which a supermask is judged.
CHANCE = 0.1


def _series_table(rows, experiment: str) -> dict[str, dict[int, dict[int, float]]]:
    """``{series: {trial: {round: test accuracy at early stop}}}`` of one experiment."""
    table: dict[str, dict[int, dict[int, float]]] = {}
    for row in rows:
        if row["experiment"] == experiment:
            table.setdefault(row["series"], {}).setdefault(row["trial"], {})[row["round"]] = row["test_acc_early_stop"]
    return table


def paired_difference(rows, experiment: str, variant: str, reference: str) -> dict | None:
    """How far ``variant`` sits from ``reference`` in one experiment, paired within each trial.

    Only the pruned rounds (round ≥ 1) count, and only trials and rounds both series have.

    Args:
        rows: the study's ``summary.csv`` rows.
        experiment, variant, reference: an experiment and two of its series labels.

    Returns:
        ``None`` when the two share no pruned round; else ``{"mean": mean over rounds of the mean
        over trials of variant − reference, "sparsest": that mean at the sparsest shared round,
        "sparsest_min"/"sparsest_max": the lowest and highest trial there, "sparsest_round",
        "rounds", "trials"}`` (accuracies as fractions).

    Example:
        >>> rows = [{"experiment": "zeros", "series": s, "trial": t, "round": r, "test_acc_early_stop": a}
        ...         for s, base in (("zero", 0.9), ("frozen", 0.8)) for t in (0, 1) for r, a in ((0, 0.9), (1, base))]
        >>> {key: round(value, 3) for key, value in paired_difference(rows, "zeros", "frozen", "zero").items()}
        {'mean': -0.1, 'sparsest': -0.1, 'sparsest_min': -0.1, 'sparsest_max': -0.1, 'sparsest_round': 1, 'rounds': 1, 'trials': 2}
    """
    table = _series_table(rows, experiment)
    if variant not in table or reference not in table:
        return None
    trials = sorted(set(table[variant]) & set(table[reference]))
    rounds = sorted(index for index in set.intersection(*(set(table[s][t]) for s in (variant, reference) for t in trials))
                    if index >= 1) if trials else []
    if not rounds:
        return None
    per_round = {index: [table[variant][t][index] - table[reference][t][index] for t in trials] for index in rounds}
    means = {index: sum(values) / len(values) for index, values in per_round.items()}
    last = rounds[-1]
    return {"mean": sum(means.values()) / len(means), "sparsest": means[last], "sparsest_min": min(per_round[last]),
            "sparsest_max": max(per_round[last]), "sparsest_round": last, "rounds": len(rounds), "trials": len(trials)}


def _density_of_round(rows, round_index: int) -> float:
    values = [row["density"] for row in rows if row["round"] == round_index]
    return sum(values) / len(values)


# --- the papers' claims, judged ---------------------------------------------------------------------
#
# Zhou, Lan, Liu & Yosinski 2019 (arXiv:1905.01067) and Frankle, Dziugaite, Roy & Carbin 2021 (arXiv:2009.08576).
# Each claim is judged on one value per trial: the mean, over the pruned rounds both series have, of the
# paired difference (variant minus reference, same θ₀ and data order), in percentage points. The claims and
# their tolerances were written down on 2026-12-07, after the committed study had been seen: its verdicts
# are not a blind test.

#: How far a "does not hurt" / "about as well" claim may fall below its reference, in points (about
#: twice the study's noise floor as measured in results/ticket-anatomy/).
NO_HARM_POINTS = 0.5

_ZHOU, _FRANKLE = "Zhou et al. 2019", "Frankle et al. 2021"


def _trial_means(rows, experiment: str, variant: str, reference: str, reference_experiment: str | None = None):
    """``{trial: 100 × mean over shared pruned rounds of (variant − reference)}`` (the reference may sit in
    another experiment: a check's series against the same series before it)."""
    table = _series_table(rows, experiment).get(variant, {})
    other = _series_table(rows, reference_experiment or experiment).get(reference, {})
    values = {}
    for trial in sorted(set(table) & set(other)):
        rounds = [index for index in table[trial] if index >= 1 and index in other[trial]]
        if rounds:
            values[trial] = 100 * sum(table[trial][r] - other[trial][r] for r in rounds) / len(rounds)
    return values


def _difference(experiment: str, variant: str, reference: str, reference_experiment: str | None = None):
    return lambda data: _trial_means(data["rows"], experiment, variant, reference, reference_experiment)


def _best_supermask(weights: str, criterion: str):
    """Per trial: the best test accuracy (%) over the pruned rounds of an untrained supermask."""
    def measure(data) -> dict[int, float]:
        best: dict[int, float] = {}
        for row in data["supermask"]:
            if row["weights"] == weights and row["criterion"] == criterion and row["round"] >= 1:
                best[row["trial"]] = max(best.get(row["trial"], 0.0), 100 * row["test_acc"])
        return dict(sorted(best.items()))
    return measure


def anatomy_claim_records() -> tuple[Claim, ...]:
    """Every claim the ticket-anatomy study can judge, in the report's order."""
    ticket, no_harm = "θ₀ (the ticket)", Expectation("at_least", 0.0, NO_HARM_POINTS)
    claims = [
        Claim("large_final_beats_random", "masks that keep the largest final weights (IMP's criterion) beat random "
              "masks", "better", f"{_ZHOU}, §2 (mask criteria); read off a figure", Expectation("at_least", 0.0),
              "points", "large_final minus random, mean over the pruned rounds", _difference("criteria", "large_final",
                                                                                               "random"),
              floor="accuracy"),
        Claim("magnitude_increase_as_good", "masks that keep the weights that grew most are as good as large_final",
              "among the best", f"{_ZHOU}, §2; read off a figure", no_harm, "points",
              "magnitude_increase minus large_final, mean over the pruned rounds",
              _difference("criteria", "magnitude_increase", "large_final")),
        Claim("signs_constant_as_good", "survivors reset to the signs of θ₀ times a per-layer constant train about "
              "as well as θ₀", "about as well", f"{_ZHOU}, §3 (the signs of the initial weights); read off a figure",
              no_harm, "points", "signs × constant minus θ₀, mean over the pruned rounds",
              _difference("resets", "signs of θ₀ × layer constant", ticket)),
        Claim("shuffled_worse", "survivors reset to θ₀'s values shuffled within each layer do worse than θ₀", "worse",
              f"{_ZHOU}, §3; read off a figure", Expectation("at_most", 0.0), "points",
              "shuffled minus θ₀, mean over the pruned rounds", _difference("resets", "θ₀ shuffled in each layer", ticket),
              floor="accuracy"),
        Claim("reinit_worse", "survivors reset to a fresh random initialization do worse than θ₀", "worse",
              f"{_ZHOU}, §3; read off a figure", Expectation("at_most", 0.0), "points",
              "random re-init minus θ₀, mean over the pruned rounds", _difference("resets", "random re-init", ticket),
              floor="accuracy"),
        Claim("frozen_worse", "pruned weights frozen at their initial values instead of zero do worse", "worse",
              f"{_ZHOU}, §4 (pruned weights set to zero); read off a figure", Expectation("at_most", 0.0), "points",
              "frozen at θ₀ minus zero, mean over the pruned rounds",
              _difference("zeros", "pruned weights frozen at θ₀", "pruned weights zero"), floor="accuracy"),
        Claim("supermask_far_above_chance", "an untrained network, sign(θ₀)·σ under a large_final_same_sign mask "
              "(a supermask), is far above chance (10%) on MNIST", "86% at best",
              f"{_ZHOU}, abstract and §5 (supermasks)", Expectation("at_least", 10.0), "%",
              "best test accuracy over the pruned rounds, untrained, per trial",
              _best_supermask("sign_constant", "large_final_same_sign"), floor="accuracy"),
        Claim("supermask_near_86", "... reaching about 86%", "86%", f"{_ZHOU}, abstract",
              Expectation("near", 86.0, 5.0), "%", "as above", _best_supermask("sign_constant", "large_final_same_sign"),
              note="Zhou et al.'s 86% is for their own MNIST network and mask schedule; lthkit's is LeNet-300-100 "
                   "under this study's schedule."),
    ]
    imp, random_label = PAI_LABELS["imp"], PAI_LABELS["random"]
    for name in PAI_METHODS:
        if name == "random":
            continue
        label = PAI_LABELS[name]
        claims += [
            Claim(f"{name}_beats_random_at_init", f"{label} beats random pruning at initialization", "better",
                  f"{_FRANKLE}, §4 (the methods against random pruning); read off a figure",
                  Expectation("at_least", 0.0), "points", f"{label} minus random at init, mean over the pruned rounds",
                  _difference("pai", label, random_label), floor="accuracy"),
            Claim(f"{name}_below_imp", f"{label} stays below the IMP ticket (pruning after training)", "below",
                  f"{_FRANKLE}, §4 (the methods against magnitude pruning after training); read off a figure",
                  Expectation("at_most", 0.0), "points", f"{label} minus the IMP ticket, mean over the pruned rounds",
                  _difference("pai", label, imp), floor="accuracy"),
        ]
    for check, words in (("pai_shuffled", "shuffling each mask within its layers"),
                         ("pai_reinit", "re-initializing the survivors")):
        claims.append(Claim(f"{check}_hurts_imp", f"{words} hurts the IMP ticket", "hurts",
                            f"{_FRANKLE}, §5 (ablations); read off a figure", Expectation("at_most", 0.0), "points",
                            "IMP ticket after minus before, mean over the pruned rounds",
                            _difference(check, imp, imp, "pai"), floor="accuracy"))
        for name in PAI_METHODS:
            if name == "random":
                continue
            label = PAI_LABELS[name]
            claims.append(Claim(f"{check}_{name}_unhurt", f"{words} does not hurt {label}", "does not hurt",
                                f"{_FRANKLE}, §5 (ablations); read off a figure", no_harm, "points",
                                f"{label} after minus before, mean over the pruned rounds",
                                _difference(check, label, label, "pai")))
    claims.append(Claim("placebo_shuffled_random", "placebo: random pruning at initialization, its mask shuffled "
                        "within each layer (still random; expected: no difference)", "0 (no paper claim)",
                        "none: a control of lthkit's", Expectation("near", 0.0, NO_HARM_POINTS), "points",
                        "random at init shuffled minus random at init, mean over the pruned rounds",
                        _difference("pai_shuffled", random_label, random_label, "pai")))
    return tuple(claims)


def anatomy_floors(rows) -> dict[str, float]:
    """The study's noise floor, ``accuracy`` in points: the larger of the spread of dense networks over seeds (each
    trial's θ₀ and its fresh re-initialization, round 0) and the placebo's mean (random at init, shuffled or not)."""
    dense = [row["test_acc_early_stop"] for row in rows if row["experiment"] == "resets" and row["round"] == 0
             and row["series"] in ("θ₀ (the ticket)", "random re-init")]
    placebo = list(_trial_means(rows, "pai_shuffled", PAI_LABELS["random"], PAI_LABELS["random"], "pai").values())
    floor = 100 * spread(dense) if len(dense) > 1 else 0.0
    if placebo:
        floor = max(floor, abs(sum(placebo) / len(placebo)))
    return {"accuracy": floor}


def anatomy_claims(rows, supermask=()) -> list[JudgedClaim]:
    """Judge Zhou et al.'s and Frankle et al.'s claims on a ticket-anatomy study (95% intervals over trials).

    Example:
        >>> anatomy_claims([])
        []
    """
    if not rows:
        return []
    return judge_claims(anatomy_claim_records(), {"rows": list(rows), "supermask": list(supermask)},
                        anatomy_floors(rows))


def report_text(rows, supermask, info: dict) -> str:
    """``README.md`` of a ticket-anatomy folder: how it was made, each paper finding beside ours, the tables.

    Every number is computed from ``rows`` (``summary.csv``), ``supermask`` (``supermask.csv``) and
    ``info`` (``run_info.json``); the papers' findings are quoted in words (with the one number
    their abstract gives). ``python -m lthkit report DIR`` rewrites it from those files.
    """
    machine = info.get("hardware") or info.get("machine") or {}
    judged = anatomy_claims(rows, supermask)
    base = info.get("config") or {}
    train = base.get("train", {})
    lines = ["# What a ticket is made of, measured", "",
             "Generated from this folder's files by `python -m lthkit report` (also written by `python -m lthkit "
             "anatomy`). Zhou, Lan, Liu & Yosinski, \"Deconstructing Lottery Tickets: Zeros, Signs, and the "
             "Supermask\" (NeurIPS 2019, arXiv:1905.01067) and Frankle, Dziugaite, Roy & Carbin, \"Pruning Neural "
             "Networks at Initialization: Why Are We Missing the Mark?\" (ICLR 2021, arXiv:2009.08576), each "
             "finding beside this study's measurement. Notebook "
             "[`07_ticket_anatomy`](../../notebooks/07_ticket_anatomy.ipynb) draws the same files.", "",
             f"* command: `{' '.join(info['command']) if isinstance(info.get('command'), list) else info.get('command')}`",
             f"* the study: {info.get('trials')} trials (seeds {info.get('first_seed', 0)}–"
             f"{info.get('first_seed', 0) + (info.get('trials') or 1) - 1}), {info.get('runs')} IMP runs, "
             f"{info.get('trainings')} trainings; {base.get('model', '?')}, {base.get('rounds', '?')} rounds of "
             f"{base.get('prune_rate', '?')} (layer-wise), {train.get('iterations', '?')} iterations per training",
             "* machine: " + ", ".join(part for part in (
                 machine.get("cpu") or machine.get("platform"),
                 f"{machine['cpu_count']} cores" if machine.get("cpu_count") else None,
                 f"{machine['torch_threads']} torch thread(s) per process" if machine.get("torch_threads") else None,
                 f"torch {machine['torch']}" if machine.get("torch") else None) if part),
             f"* time: {info.get('training_seconds')} s of training in all; the command took "
             f"{info.get('wall_seconds')} s of wall time", "",
             "## The papers' claims, judged", "",
             "Each claim is judged on one value per trial: the mean, over the pruned rounds, of the paired "
             "difference (same θ₀, same data order), in percentage points, with its 95% interval (Student's t over "
             "the trials) and a verdict against the range in *agrees when*: **consistent** (the whole interval "
             "inside it), **inconsistent** (none of it), **inconclusive** (it straddles the edge). A claimed "
             "difference smaller than the noise floor (the larger of the spread of dense networks over seeds and "
             "the placebo's mean) is never called consistent. With three trials, intervals are wide.", "",
             f"**{verdict_headline(judged)}.**", "", claims_markdown(judged).rstrip()]
    lines += ["", "## Every experiment, round by round", "", tables_markdown(rows, supermask),
              "Files: `summary.csv` (one row per experiment, series, trial and round), `supermask.csv`, `tables.md` "
              "(the tables above), " + ", ".join(f"`{name}`" for name in STUDY_FIGURES.values()) + ", `run_info.json`.",
              ""]
    return "\n".join(lines)


def write_report(folder) -> Path:
    """Rewrite ``folder/README.md`` and ``folder/claims.csv`` from its ``summary.csv``, ``supermask.csv`` and
    ``run_info.json``.

    Raises:
        LthkitError: the folder holds no ticket-anatomy study, or a file is malformed.
    """
    folder = Path(folder)
    loaded = load_study(folder)
    if loaded is None:
        raise LthkitError(f"{folder} holds no summary.csv of a ticket-anatomy study")
    info = read_run_info(folder / "run_info.json", "anatomy")
    readme = folder / "README.md"
    atomic_write_files({readme: with_kept_notes(readme, report_text(*loaded, info)).encode(),
                        folder / "claims.csv": claims_csv_text(anatomy_claims(*loaded)).encode()})
    return readme


#: This study, as the registry (lthkit.studies.STUDIES) and the report command see it.
STUDY = Study("anatomy", "what a ticket is made of: mask criteria, resets, zeros, supermasks, pruning at init",
              "python -m lthkit anatomy", "summary.csv", "experiment", read_study_csv, write_report)
