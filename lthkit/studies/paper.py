"""Reproducing Frankle & Carbin's LeNet-300-100 results (ICLR 2019 version, §2 and Appendix G).

:func:`reproduce` runs the ``paper`` preset for several trials and all three controls through the
cache (so it resumes after an interrupt) with :func:`lthkit.runs.experiments.run_experiments` (on a
GPU, the runs of a round train together as one batched model), and rewrites, in its output folder,
after every finished trial (on a GPU: once all are done):

* ``summary.csv``: one row per (control, trial, round), the columns of
  :data:`lthkit.reporting.summaries.SUMMARY_COLUMNS` (accuracies as fractions);
* ``accuracy_vs_density.png`` and ``early_stop_vs_density.png``: the paper's Figure 3 and 4
  layouts (log P_m axis, min/max bands over trials, ticket vs re-init vs random pruning);
* ``claims.csv``: each of the paper's claims (:data:`CLAIMS`, with its section or figure) judged on
  the trials: a 95% interval and a verdict, *consistent*, *inconclusive* or *inconsistent*
  (:func:`paper_claims`, :mod:`lthkit.reporting.claims`);
* ``run_info.json``: what was run, on what hardware, with which code, and how long it took;
* ``README.md``: the report; :func:`update_report` rewrites its table of the paper's claims
  beside ours and leaves the prose around it alone.

The six files are written as one set (:func:`lthkit.core.files.atomic_write_files`): they always
describe the same trials, and a failed write leaves the previous set.

The committed full-protocol output lives in ``results/paper-lenet300/``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from ..core.files import atomic_write_files, check_writable_folder, csv_text, json_bytes
from ..core.train import RunLog, TrainConfig
from ..errors import LthkitError
from ..imp.branches import MAX_REINIT_DRAWS, reinit_draws
from ..imp.branches import PAPER_CONTROLS as CONTROLS
from ..reporting.claims import Claim, JudgedClaim, claims_csv_text, judge_claims, verdict_headline
from ..reporting.claims import claims_markdown as claims_table
from ..reporting.provenance import read_run_info, run_info
from ..reporting.stats import Expectation, paired_differences, spread
from ..reporting.summaries import read_summary_csv, summary_csv_text, summary_rows
from ..runs.experiments import run_experiments
from ..runs.presets import preset
from .base import Study

#: The paper's percent of weights remaining (P_m) after each round of LeNet-300-100 IMP.
PAPER_PM = (100, 80.0, 64.1, 51.3, 41.1, 32.9, 26.3, 21.1, 16.9, 13.5, 10.8, 8.7, 7.0, 5.6, 4.5, 3.6, 2.9, 2.3,
            1.9, 1.5, 1.2)


#: The figures of a reproduce folder, by file name.
FIGURES = ("accuracy_vs_density.png", "early_stop_vs_density.png")
#: Every file :func:`reproduce` writes into its output folder (as one set, after each trial).
REPRODUCE_OUTPUTS = ("summary.csv", "claims.csv", *FIGURES, "run_info.json", "README.md")


def figure_files(runs) -> dict[str, bytes]:
    """Figure 3 (test accuracy at early stop) and Figure 4 (early-stop iteration) against P_m, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.files import figure_png
    from ..reporting.plots import accuracy_vs_density, early_stop_vs_density

    pngs = {}
    for name, plot, title in zip(FIGURES, (accuracy_vs_density, early_stop_vs_density),
                                 ("LeNet-300-100 on MNIST: test accuracy at early stop",
                                  "LeNet-300-100 on MNIST: early-stop iteration")):
        figure = plot(runs, title=title)
        pngs[name] = figure_png(figure, dpi=130)
        plt.close(figure)
    return pngs


def write_figures(out: Path, runs) -> None:
    """Write :func:`figure_files` into ``out`` (both or neither)."""
    atomic_write_files({Path(out) / name: png for name, png in figure_files(runs).items()})


def trial_groups(seeds: list[int], controls: int, *, device: str = "cpu", workers: int = 1,
                 scheduler: str | None = None) -> list[list[int]]:
    """How :func:`reproduce` splits its trials: each group trains at once, then the outputs are rewritten.

    On a GPU every trial and control of a round trains at once, batched (:mod:`lthkit.core.batched`), and
    on a cluster (``scheduler``) of unknown size the whole graph goes at once. Otherwise the groups
    are just large enough to keep the local workers busy (a trial has ``controls`` chains of rounds),
    so the outputs grow trial by trial and an interrupted run keeps its finished trials on disk.

    Example:
        >>> trial_groups([0, 1, 2, 3, 4], 3, workers=2)
        [[0], [1], [2], [3], [4]]
        >>> trial_groups([0, 1, 2, 3, 4], 3, workers=8)
        [[0, 1, 2], [3, 4]]
        >>> trial_groups([0, 1, 2], 3, scheduler="tcp://10.0.0.1:8786")
        [[0, 1, 2]]
    """
    if device == "cuda" or scheduler:
        return [list(seeds)]
    size = max(1, math.ceil(workers / max(1, controls)))
    return [list(seeds[index:index + size]) for index in range(0, len(seeds), size)]


def reproduce(out, *, base=None, trials: int = 5, rounds: int = 20, controls=CONTROLS, reinits: int = 1,
              first_seed: int = 0,
              device: str = "cpu", cache_dir=None, data_root=None, progress: bool = True, argv=None,
              workers: int = 1, scheduler: str | None = None) -> list:
    """Run the paper's protocol and keep ``out`` up to date as trials finish.

    Args:
        out: the output folder.
        base: the config to run (default: ``preset("paper", rounds=rounds)``).
        trials: independent trials (seeds ``first_seed`` ... ``first_seed + trials - 1``).
        rounds: pruning rounds when ``base`` is not given (20 reaches P_m = 1.2%).
        controls: which of ticket, reinit and random_prune to run, in that order.
        reinits: how many fresh initializations of each ticket the reinit control trains (the paper: 3, §2;
            ``reinit``, ``reinit_draw2``, ...).
        first_seed: the seed of the first trial.
        device: ``"cpu"`` or ``"cuda"``.
        cache_dir, data_root: see :func:`lthkit.runs.experiments.run_experiment`.
        progress: show progress bars.
        argv: the command line, recorded in ``run_info.json``.
        workers, scheduler: a sweep on Dask workers (see :func:`lthkit.runs.experiments.run_experiments`);
            the trials run in groups (:func:`trial_groups`) and the outputs are rewritten after each.

    Returns:
        The :class:`~lthkit.imp.records.LotteryResult` of every run.
    """
    out = check_writable_folder(out, f"output folder {out}", REPRODUCE_OUTPUTS)  # before any training
    base = base or preset("paper", rounds=rounds)
    if reinits > 1 and "reinit" in controls:
        draws = reinit_draws(reinits)
        controls = [name for control in controls for name in (draws if control == "reinit" else (control,))]
    began = time.time()
    info = run_info("paper", argv=argv, device=device, config=base.to_dict(), trials=trials, trainings=0,
                    training_seconds=0.0, controls=list(controls), reinits=reinits, workers=None if scheduler else workers,
                    scheduler=scheduler, runs=[])
    seeds = list(range(first_seed, first_seed + trials))
    groups = trial_groups(seeds, len(controls), device=device, workers=workers, scheduler=scheduler)
    results = []
    for group in groups:
        group_began = time.time()
        configs = [base.replace(control=control, seed=seed) for seed in group for control in controls]
        group_results = run_experiments(configs, cache_dir=cache_dir, device=device, data_root=data_root,
                                        progress=progress, workers=workers, scheduler=scheduler)
        results.extend(group_results)
        for config, result in zip(configs, group_results):
            info["runs"].append({"control": config.control, "trial": config.seed, "rounds": len(result.rounds),
                                 "training_seconds": round(sum(r.train.seconds for r in result.rounds), 1),
                                 "iterations_trained": sum(r.train.iterations - r.train.start_iteration
                                                           for r in result.rounds),
                                 "runs_stopped_by_patience": sum(r.train.stopped_by_patience for r in result.rounds)})
        info["trainings"] = sum(run["rounds"] for run in info["runs"])
        info["training_seconds"] = round(sum(run["training_seconds"] for run in info["runs"]), 1)
        info["wall_seconds"] = round(time.time() - began, 1)
        info["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        # One set: summary, figures, run record and report always describe the same trials.
        files = {out / "summary.csv": summary_csv_text(results).encode()}
        files.update({out / name: png for name, png in figure_files(results).items()})
        files[out / "run_info.json"] = json_bytes(info)
        files[out / "claims.csv"] = claims_csv_text(paper_claims(summary_rows(results))).encode()
        files[out / "README.md"] = report_text(out / "README.md", summary_rows(results)).encode()
        atomic_write_files(files)
        print(f"[{time.strftime('%H:%M:%S')}] trial(s) {', '.join(map(str, group))} done in "
              f"{time.time() - group_began:.0f} s; outputs updated in {out}", file=sys.stderr, flush=True)
    return results


def merge_runs(folders, out, *, argv=None) -> Path:
    """Merge ``reproduce`` folders that ran the same protocol on different trials into one folder.

    The way to split the paper's protocol over machines or working sessions: run ``--seed 0
    --trials 3`` in one place and ``--seed 3 --trials 2`` in another, from the same lthkit commit,
    then merge. The parts must agree on everything but the trials: the config (seed aside), the
    controls and lthkit's code version (so the merged numbers come from one code); their trials
    must not overlap. ``out`` gets the merged ``summary.csv``, both figures, a ``run_info.json`` that
    keeps each part's record (command, commit, machine, times) and the report's tables
    (:func:`report_text`; prose already in ``out/README.md`` is kept).

    Args:
        folders: two or more folders written by :func:`reproduce`.
        out: the merged folder (may be one of ``folders``: its files are read before any is written).
        argv: the command line, recorded in ``run_info.json``.

    Returns:
        The merged folder.

    Raises:
        LthkitError: fewer than two folders, a file missing or malformed, parts that disagree, or
            overlapping trials. Nothing is written then.

    Example:
        >>> merge_runs(["runs/paper-0-2", "runs/paper-3-4"], "results/paper-lenet300")  # doctest: +SKIP
        PosixPath('results/paper-lenet300')
    """

    from ..reporting.summaries import SUMMARY_COLUMNS

    folders = [Path(folder) for folder in folders]
    if len(folders) < 2:
        raise LthkitError("merging needs at least two reproduce folders")
    parts = []
    for folder in folders:
        rows = read_summary_csv(folder / "summary.csv")
        info = read_run_info(folder / "run_info.json", "paper", required=True)
        if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
            raise LthkitError(f"{folder / 'run_info.json'} is not the run record of `reproduce` (no config)")
        parts.append((folder, rows, info))
    first_folder, _, first = parts[0]

    def protocol(info):
        return {key: value for key, value in info["config"].items() if key != "seed"}

    for folder, _, info in parts[1:]:
        for what, mine, theirs in (("config", protocol(info), protocol(first)),
                                   ("controls", info.get("controls"), first.get("controls")),
                                   ("code version", info.get("code_version"), first.get("code_version"))):
            if mine != theirs:
                hint = (" (run the missing trials from the same commit: git worktree add DIR "
                        f"{first.get('git_commit') or 'COMMIT'})" if what == "code version" else "")
                raise LthkitError(f"{folder} and {first_folder} differ in their {what}; only runs of one protocol "
                                  f"merge{hint}")
    seen: dict[int, Path] = {}
    for folder, rows, _ in parts:
        for trial in sorted({row["trial"] for row in rows}):
            if trial in seen:
                raise LthkitError(f"trial {trial} is in both {seen[trial]} and {folder}; merged parts must hold "
                                  "different trials")
            seen[trial] = folder
    out = check_writable_folder(out, f"output folder {out}", REPRODUCE_OUTPUTS)
    rows = sorted((row for _, part_rows, _ in parts for row in part_rows),
                  key=lambda row: (row["trial"], CONTROLS.index(row["control"]) if row["control"] in CONTROLS else 9,
                                   row["round"]))  # reproduce's order: trial by trial
    runs = [run for _, _, part in parts for run in part.get("runs", [])]
    # The parts' code, not this process's: a merge runs nothing itself.
    info = run_info("paper", argv=argv, device=None, lthkit_version=first.get("lthkit_version"),
                    code_version=first.get("code_version"), git_commit=first.get("git_commit"),
                    config=first["config"], trials=len(seen), trainings=sum(run.get("rounds", 0) for run in runs),
                    training_seconds=round(sum(run.get("training_seconds", 0) for run in runs), 1),
                    wall_seconds=None, controls=first.get("controls"),
                    merged_from=[{"folder": str(folder), **{key: value for key, value in part.items() if key != "config"}}
                                 for folder, _, part in parts], runs=runs)
    files = {out / "summary.csv": csv_text(rows, SUMMARY_COLUMNS).encode(), out / "run_info.json": json_bytes(info),
             out / "claims.csv": claims_csv_text(paper_claims(rows)).encode(),
             out / "README.md": report_text(out / "README.md", rows).encode()}
    files.update({out / name: png for name, png in figure_files(rows).items()})
    atomic_write_files(files)
    return out


# --- the paper's claims, measured ------------------------------------------------------------------
#
# Frankle & Carbin, "The Lottery Ticket Hypothesis" (ICLR 2019; arXiv:1803.03635v5). Every claim below
# is one the paper states for LeNet-300-100 under iterative pruning at 20% per round, with where it
# says it. The tolerances were written down on 2026-12-07: after the [0, 1]-pixel run in
# results/paper-lenet300/ had been seen (so that run's verdicts are not a blind test), and before the
# L2-normalized run (results/paper-lenet300/l2-inputs/) had finished a trial.

def _by_control_trial(rows) -> dict[str, dict[int, dict[int, dict]]]:
    table: dict[str, dict[int, dict[int, dict]]] = {}
    for row in rows:
        table.setdefault(row["control"], {}).setdefault(row["trial"], {})[row["round"]] = row
    return table


def _nearest_round(per_round: dict[int, dict], percent: float) -> int | None:
    """The round whose density is closest to ``percent`` (on a log scale), if within 10% of it."""
    if not per_round:
        return None
    if percent == 100:
        return 0 if 0 in per_round else None
    best = min(per_round, key=lambda r: abs(math.log(per_round[r]["density"] * 100 / percent)))
    return best if abs(per_round[best]["density"] * 100 / percent - 1) < 0.1 else None


def reinit_controls(table) -> list[str]:
    """The re-init control's draws present in a table (``reinit``, ``reinit_draw2``, ...), in draw order."""
    return [name for name in reinit_draws(MAX_REINIT_DRAWS) if name in table]


def _per_trial(table, control: str, percent: float, column: str) -> dict[int, float]:
    """``{trial: row[column]}`` at the round nearest ``percent`` of ``control`` (the re-init: mean over its draws)."""
    controls = reinit_controls(table) if control == "reinit" else [control]
    found: dict[int, list[float]] = {}
    for name in controls:
        for trial, per_round in table.get(name, {}).items():
            chosen = _nearest_round(per_round, percent)
            if chosen is not None:
                found.setdefault(trial, []).append(float(per_round[chosen][column]))
    return {trial: sum(values) / len(values) for trial, values in sorted(found.items())}


def _difference(control: str, percent: float, reference: str = "ticket", reference_percent: float = 100,
                column: str = "test_acc_early_stop", scale: float = 100.0):
    """A measure: ``scale × (control at percent − reference at reference_percent)``, paired per trial."""
    def measure(table) -> dict[int, float]:
        return {trial: scale * difference for trial, difference in paired_differences(
            _per_trial(table, control, percent, column), _per_trial(table, reference, reference_percent, column)).items()}
    return measure


def _earlier(percent: float, control: str = "ticket"):
    """A measure: ``100 × (1 − early-stop iteration at percent / the trial's dense early-stop iteration)``."""
    def measure(table) -> dict[int, float]:
        sparse = _per_trial(table, control, percent, "early_stop_iter")
        dense = _per_trial(table, "ticket", 100, "early_stop_iter")
        return {trial: 100 * (1 - sparse[trial] / dense[trial]) for trial in sparse if dense.get(trial, 0) > 0}
    return measure


def _slower_than_ticket(percent: float):
    """A measure: the re-init's early-stop iteration over the ticket's, at percent, per trial."""
    def measure(table) -> dict[int, float]:
        reinit = _per_trial(table, "reinit", percent, "early_stop_iter")
        ticket = _per_trial(table, "ticket", percent, "early_stop_iter")
        return {trial: reinit[trial] / ticket[trial] for trial in reinit if ticket.get(trial, 0) > 0}
    return measure


def _reinit_onset(table) -> dict[int, float]:
    """Per trial: the first round from which the re-init (mean over draws) stays below the trial's dense network.

    A trial whose re-init is still at or above dense at its last round has no onset and is left out.
    """
    dense = _per_trial(table, "ticket", 100, "test_acc_early_stop")
    draws = reinit_controls(table)
    onsets = {}
    for trial, dense_accuracy in dense.items():
        rounds = sorted({r for name in draws for r in table[name].get(trial, {}) if r > 0})
        means = {r: sum(table[name][trial][r]["test_acc_early_stop"] for name in draws if r in table[name].get(trial, {}))
                 / sum(r in table[name].get(trial, {}) for name in draws) for r in rounds}
        onset = None
        for r in reversed(rounds):  # from the sparsest round upwards, while it stays below
            if means[r] >= dense_accuracy:
                break
            onset = r
        if onset is not None:
            onsets[trial] = float(onset)
    return onsets


def _dense_accuracy(table) -> dict[int, float]:
    return {trial: 100 * value for trial, value in _per_trial(table, "ticket", 100, "test_acc_early_stop").items()}


def _reinit_note(table_or_none=None) -> str:
    return ("The paper re-initializes each ticket three times (Figure 4's caption: 15 runs per point over five "
            "trials); the re-init value of a trial is the mean over the draws this run has (`run_info.json`'s "
            "`reinits`).")


#: Frankle & Carbin's LeNet-300-100 claims, in the report's order (see the comment above for when the
#: tolerances were fixed). Accuracies in percentage points; "§2" is the paper's Section 2, whose
#: paragraphs "Results" and "Random reinitialization" state the numbers quoted.
CLAIMS: tuple[Claim, ...] = (
    Claim("dense_accuracy", "the dense network's test accuracy at early stop", "≈ 98%",
          "Figures 1 and 3, the unpruned network; read off a figure", Expectation("near", 98.0, 0.2), "%",
          "ticket control, round 0 (P_m = 100%)", _dense_accuracy),
    Claim("earlier_at_21", "tickets stop earlier than the dense network at P_m 21.1%", "earlier",
          "§2, Results", Expectation("at_least", 0.0), "% earlier",
          "1 − early-stop iteration at P_m 21.1% / the trial's dense early-stop iteration", _earlier(21.1),
          floor="early_stop", digits=0),
    Claim("earlier_by_38", "... by 38%: \"early-stopping occurs 38% earlier than for the original network\"",
          "38% earlier", "§2, Results", Expectation("near", 38.0, 15.0), "% earlier",
          "as above", _earlier(21.1), digits=0),
    Claim("above_dense_13_5", "ticket accuracy above dense at P_m 13.5%: \"improving by more than 0.3 percentage "
          "points\"", "> +0.3 points", "§2, Results", Expectation("at_least", 0.3, 0.1), "points",
          "test accuracy at early stop, P_m 13.5% minus the trial's dense network", _difference("ticket", 13.5),
          floor="accuracy"),
    Claim("back_to_dense_3_6", "ticket accuracy back at the dense network's at P_m 3.6%: \"returning to the level "
          "of the original network\"", "≈ dense", "§2, Results", Expectation("near", 0.0, 0.2), "points",
          "test accuracy at early stop, P_m 3.6% minus the trial's dense network", _difference("ticket", 3.6)),
    Claim("early_stop_back_3_6", "ticket early stop back at the dense network's at P_m 3.6%: \"returning to the "
          "early-stopping performance of the original network\"", "≈ dense", "§2, Results",
          Expectation("near", 0.0, 25.0), "% earlier",
          "1 − early-stop iteration at P_m 3.6% / the trial's dense early-stop iteration", _earlier(3.6), digits=0),
    Claim("ticket_below_dense_2_9", "the ticket has dropped below the dense network at P_m 2.9%: its accuracy "
          "\"drops off from the original accuracy when P_m = ... 2.9%\"", "below dense", "§2, Random reinitialization",
          Expectation("at_most", 0.0), "points", "test accuracy at early stop, P_m 2.9% minus the trial's dense network",
          _difference("ticket", 2.9), floor="accuracy"),
    Claim("reinit_below_dense_21", "re-initialized tickets are below the dense network at P_m 21.1%: they "
          "\"drop off from the original accuracy when P_m = 21.1%\"", "below dense", "§2, Random reinitialization",
          Expectation("at_most", 0.0), "points",
          "re-init test accuracy at early stop (mean over draws), P_m 21.1% minus the trial's dense network",
          _difference("reinit", 21.1), floor="accuracy", note=_reinit_note()),
    Claim("reinit_onset", "the round from which re-initialized tickets stay below the dense network "
          "(round 7 is P_m 21.1%; ± 1 round is 26.3% to 16.9%)", "round 7 (P_m 21.1%)",
          "§2, Random reinitialization", Expectation("near", 7.0, 1.0), "rounds",
          "per trial, the first round from which the re-init (mean over draws) stays below the trial's dense network "
          "to the last round", _reinit_onset, digits=1, note=_reinit_note()),
    Claim("reinit_slower_21", "at P_m 21%, the ticket reaches its minimum validation loss 2.51× faster than "
          "re-initialized", "2.51×", "§2, Random reinitialization", Expectation("near", 2.51, 0.5), "×",
          "re-init early-stop iteration (mean over draws) / the ticket's, at P_m 21.1%", _slower_than_ticket(21.1),
          note=_reinit_note()),
    Claim("ticket_vs_reinit_21", "... and \"is half a percentage point more accurate\"", "+0.5 points",
          "§2, Random reinitialization", Expectation("near", 0.5, 0.2), "points",
          "ticket minus re-init (mean over draws) test accuracy at early stop, P_m 21.1%",
          _difference("ticket", 21.1, reference="reinit", reference_percent=21.1), note=_reinit_note()),
    Claim("ticket_above_random_prune_10_7", "tickets are more accurate than randomly pruned networks of the same "
          "size (P_m 10.7%)", "above", "Figure 1, solid against dashed lines; read off a figure",
          Expectation("at_least", 0.0), "points", "ticket minus random pruning, test accuracy at early stop, P_m 10.8%",
          _difference("ticket", 10.7, reference="random_prune", reference_percent=10.7), floor="accuracy",
          note="The paper's random networks are sampled sparse networks averaged over ten trials; lthkit's random "
               "pruning draws a mask with the ticket's per-layer counts and trains it from θ₀."),
    Claim("ticket_vs_random_prune_10_7", "... by about 0.8 points (≈ 98.3% against ≈ 97.5%)", "+0.8 points",
          "Figure 1; read off a figure", Expectation("near", 0.8, 0.3), "points", "as above",
          _difference("ticket", 10.7, reference="random_prune", reference_percent=10.7)),
    Claim("placebo_dense_vs_dense", "placebo: two dense networks of different seeds (expected: no difference)",
          "0 (no paper claim)", "none: a control of lthkit's", Expectation("near", 0.0, 0.2), "points",
          "round 0 of the re-init control (another seed's dense network; mean over draws) minus the trial's "
          "dense network", _difference("reinit", 100)),
)


def noise_floors(rows) -> dict[str, float]:
    """The paper study's noise floors: what changing only the seed does to a dense network.

    * ``accuracy``: the standard deviation (percentage points) of the test accuracy at early stop over
      every dense network of the run (each trial's θ₀, and each re-init draw's round 0: another seed);
    * ``early_stop``: the same networks' early-stop iterations, their standard deviation as a
      percentage of their mean.

    Example:
        >>> rows = [dict(control=c, trial=t, round=0, density=1.0, early_stop_iter=4000 + 100 * t,
        ...              test_acc_early_stop=0.98 + 0.001 * t) for t in range(3) for c in ("ticket", "reinit")]
        >>> {name: round(value, 3) for name, value in noise_floors(rows).items()}
        {'accuracy': 0.089, 'early_stop': 2.173}
    """
    table = _by_control_trial(rows)
    dense = [per_round[0] for name in ("ticket", *reinit_controls(table)) for per_round in table.get(name, {}).values()
             if 0 in per_round]
    if not dense:
        return {}
    iterations = [float(row["early_stop_iter"]) for row in dense]
    mean_iteration = sum(iterations) / len(iterations)
    return {"accuracy": 100 * spread(float(row["test_acc_early_stop"]) for row in dense),
            "early_stop": 100 * spread(iterations) / mean_iteration if mean_iteration > 0 else 0.0}


def paper_claims(rows, claims=CLAIMS) -> list[JudgedClaim]:
    """Judge each of Frankle & Carbin's LeNet-300-100 claims on ``rows``: a 95% interval over trials and a verdict.

    Args:
        rows: ``summary.csv`` rows (see :func:`lthkit.reporting.summaries.read_summary_csv`) of the paper
            protocol: controls ``ticket``, ``reinit`` (and its draws ``reinit_draw2``, ...), ``random_prune``;
            round 0 is the dense network.
        claims: the :class:`~lthkit.reporting.claims.Claim` records to judge (default: :data:`CLAIMS`).

    Returns:
        One :class:`~lthkit.reporting.claims.JudgedClaim` per claim the rows can measure, in the order of
        ``claims``; differences are paired within a trial (same θ₀ and data order), held to
        :func:`noise_floors`.

    Example:
        >>> [judged.claim.id for judged in paper_claims([])]
        []
    """
    return judge_claims(claims, _by_control_trial(rows), noise_floors(rows))


def claims_markdown(judged) -> str:
    """The judged claims as the report's Markdown table, after a line counting each verdict."""
    return f"**{verdict_headline(judged)}.**\n\n" + claims_table(judged)


def rounds_markdown(rows) -> str:
    """Every round as a Markdown table: P_m, then per control test accuracy and early-stop iteration.

    Each cell is the mean over trials with the lowest and highest trial in brackets, so the report
    shows the numbers behind the figures, not only the claims.
    """
    table = _by_control_trial(rows)
    controls = [control for control in CONTROLS if control in table]
    rounds = sorted({row["round"] for row in rows})
    header = ["round", "P_m (%)"]
    for control in controls:
        header += [f"{control}: test acc. at early stop (%)", f"{control}: early-stop iteration"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for round_index in rounds:
        densities = [per_round[round_index]["density"] for per_trial in table.values()
                     for per_round in per_trial.values() if round_index in per_round]
        cells = [str(round_index), f"{100 * sum(densities) / len(densities):.1f}"]
        for control in controls:
            found = [per_round[round_index] for per_round in table[control].values() if round_index in per_round]
            if not found:
                cells += ["", ""]
                continue
            accuracies = [100 * float(row["test_acc_early_stop"]) for row in found]
            stops = [float(row["early_stop_iter"]) for row in found]
            cells.append(f"{sum(accuracies) / len(accuracies):.2f} [{min(accuracies):.2f}, {max(accuracies):.2f}]")
            cells.append(f"{sum(stops) / len(stops):,.0f} [{min(stops):,.0f}, {max(stops):,.0f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


REPORT_BEGIN, REPORT_END = "<!-- claims:begin -->", "<!-- claims:end -->"
ROUNDS_BEGIN, ROUNDS_END = "<!-- rounds:begin -->", "<!-- rounds:end -->"


def _replace_block(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with what stands between ``begin`` and ``end`` replaced by ``body`` (appended if absent)."""
    block = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        return text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    return text + ("\n" if text else "") + block + "\n"


def _read_report(readme: Path) -> str:
    """The current text of a report (``""`` when there is none yet)."""
    if readme.is_dir():
        raise LthkitError(f"{readme} is a folder, not the report file")
    if readme.exists() and not readme.is_file():  # a FIFO or a device would block or never end
        raise LthkitError(f"{readme} is not a regular file")
    try:
        return readme.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise LthkitError(f"{readme} is not UTF-8 text, so its tables cannot be updated") from None
    except OSError as error:
        raise LthkitError(f"cannot read {readme} ({error.strerror or error})") from None


def report_text(readme, rows) -> str:
    """The text of ``readme`` with its claims and per-round tables recomputed from ``rows`` (not written).

    See :func:`update_report`.
    """
    text = _read_report(Path(readme))
    text = _replace_block(text, REPORT_BEGIN, REPORT_END, claims_markdown(paper_claims(rows)))
    return _replace_block(text, ROUNDS_BEGIN, ROUNDS_END, rounds_markdown(rows))


def update_report(directory) -> Path:
    """Recompute the tables of ``directory/README.md`` and ``directory/claims.csv`` from ``directory/summary.csv``.

    The claims table goes between the ``<!-- claims:begin -->`` and ``<!-- claims:end -->``
    markers, the per-round table (:func:`rounds_markdown`) between ``<!-- rounds:begin -->`` and
    ``<!-- rounds:end -->``; the prose around them is left alone (a README without markers gets
    the tables appended). The README keeps its file mode.

    Args:
        directory: a folder written by :func:`reproduce` (it holds ``summary.csv``).

    Returns:
        The path of the README.

    Raises:
        LthkitError: ``directory`` is not a folder, ``summary.csv`` is missing or malformed (see
            :func:`lthkit.reporting.summaries.read_summary_csv`), or the README is a folder, not UTF-8
            text, or cannot be written. Nothing is changed then.

    Example:
        >>> update_report("results/paper-lenet300")  # doctest: +SKIP
        PosixPath('results/paper-lenet300/README.md')
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "is a file" if directory.exists() else "does not exist"
        raise LthkitError(f"{directory} {what}; expected a folder written by `reproduce` (holding summary.csv)")
    rows = read_summary_csv(directory / "summary.csv")
    readme = directory / "README.md"
    text = report_text(readme, rows)
    try:
        atomic_write_files({readme: text.encode(),
                            directory / "claims.csv": claims_csv_text(paper_claims(rows)).encode()})
    except OSError as error:
        raise LthkitError(f"cannot write {readme} ({error.strerror or error})") from None
    return readme


# --- the patience rule, checked on full-length runs ---------------------------------------------------

def patience_effect(curve: dict, patience: int) -> dict:
    """What a patience rule would have done to one full-length training run.

    Training with patience is the same run cut short, so replaying the rule on the validation
    curve of a run trained to the end of its budget shows exactly where it would have stopped and
    whether the early-stopping iteration (the minimum of the validation loss) would have moved.

    Args:
        curve: a :class:`~lthkit.core.train.TrainResult` curve (``iteration`` and ``val_loss`` lists).
        patience: iterations without a new minimum after which the rule stops.

    Returns:
        ``{"stop_iteration", "early_stop_with_patience", "early_stop_full", "moved"}``.

    Example:
        >>> patience_effect({"iteration": [0, 100, 200, 300], "val_loss": [2.0, 1.0, 1.5, 0.5]}, 100)
        {'stop_iteration': 200, 'early_stop_with_patience': 100, 'early_stop_full': 300, 'moved': True}
    """
    # The replay goes through the training loop's own record (its notion of a new minimum and its
    # patience test), so it cannot disagree with what training with patience does.
    iterations, losses = curve["iteration"], curve["val_loss"]
    with_patience = RunLog(TrainConfig(patience=patience), iterations[0])
    full = RunLog(TrainConfig(), iterations[0])
    stop = None
    for iteration, loss in zip(iterations, losses):
        point = dict(val_loss=loss, val_acc=None, train_loss=None, test_acc=None, state=dict)
        full.add_point(iteration, **point)
        if stop is None:  # the run with patience sees no point after its stop
            with_patience.add_point(iteration, **point)
            if with_patience.patience_exhausted(iteration, iterations[-1]):
                stop = iteration
    early_with, early_full = with_patience.best["iteration"], full.best["iteration"]
    return {"stop_iteration": iterations[-1] if stop is None else stop, "early_stop_with_patience": early_with,
            "early_stop_full": early_full, "moved": early_with != early_full}


#: This study, as the registry (lthkit.studies.STUDIES) and the report command see it.
STUDY = Study("paper", "Frankle & Carbin's LeNet-300-100 protocol: IMP against its two controls, round by round",
              "python -m lthkit reproduce", "summary.csv", "control", read_summary_csv, update_report, figure_files)
