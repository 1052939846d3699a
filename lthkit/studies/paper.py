"""Reproducing Frankle & Carbin's LeNet-300-100 results (ICLR 2019 version, §2 and Appendix G).

:func:`reproduce` runs the ``paper`` preset for several trials and all three controls through the
cache (so it resumes after an interrupt) with :func:`lthkit.runs.experiments.run_experiments` (on a
GPU, the runs of a round train together as one batched model), and rewrites, in its output folder,
after every finished trial (on a GPU: once all are done):

* ``summary.csv``: one row per (control, trial, round), the columns of
  :data:`lthkit.reporting.summaries.SUMMARY_COLUMNS` (accuracies as fractions);
* ``accuracy_vs_density.png`` and ``early_stop_vs_density.png``: the paper's Figure 3 and 4
  layouts (log P_m axis, min/max bands over trials, ticket vs re-init vs random pruning);
* ``run_info.json``: what was run, on what hardware, with which code, and how long it took;
* ``README.md``: the report; :func:`update_report` rewrites its table of the paper's claims
  beside ours (:func:`paper_claims`) and leaves the prose around it alone.

The five files are written as one set (:func:`lthkit.core.files.atomic_write_files`): they always
describe the same trials, and a failed write leaves the previous set.

The committed full-protocol output lives in ``results/paper-lenet300/``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.files import atomic_write_files, check_writable_folder, csv_text, json_bytes
from ..core.train import RunLog, TrainConfig
from ..errors import LthkitError
from ..imp.branches import PAPER_CONTROLS as CONTROLS
from ..imp.branches import reinit_draws
from ..reporting.provenance import read_run_info, run_info
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
REPRODUCE_OUTPUTS = ("summary.csv", *FIGURES, "run_info.json", "README.md")


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
             out / "README.md": report_text(out / "README.md", rows).encode()}
    files.update({out / name: png for name, png in figure_files(rows).items()})
    atomic_write_files(files)
    return out


# --- the paper's claims, measured ------------------------------------------------------------------

@dataclass
class Claim:
    """One claim of the paper beside our measurement (a row of the report's claims table).

    ``verdict`` is ``"matches"`` (within the stated tolerance), ``"same direction"`` (the effect is
    there but smaller or larger than reported), ``"differs"``, or ``"not measured"``. ``id`` is the
    :class:`PaperClaim` it was measured by.
    """

    claim: str
    paper: str
    ours: str
    verdict: str
    how: str
    id: str = ""


@dataclass(frozen=True)
class Measurement:
    """What a claim's measurement found: the text the report shows and the numbers its verdict reads."""

    ours: str
    numbers: dict


@dataclass(frozen=True)
class PaperClaim:
    """One claim of Frankle & Carbin as data: what it says, the paper's value, how we measure and judge it.

    Attributes:
        id: a stable name (the report's rows and the tests refer to it).
        claim: the claim in words.
        paper: the paper's value, as the report shows it.
        paper_value: the paper's number(s), for code that compares with it.
        how: how we measure it, in words.
        measure: ``table -> Measurement | None`` (``None``: the rows cannot measure it); the table
            is ``{control: {trial: {round: row}}}`` of ``summary.csv`` rows.
        verdict: ``Measurement.numbers -> "matches" | "same direction" | "differs"``.
    """

    id: str
    claim: str
    paper: str
    paper_value: object
    how: str
    measure: Callable[[dict], Measurement | None]
    verdict: Callable[[dict], str]


def _by_control_trial(rows) -> dict[str, dict[int, dict[int, dict]]]:
    table: dict[str, dict[int, dict[int, dict]]] = {}
    for row in rows:
        table.setdefault(row["control"], {}).setdefault(row["trial"], {})[row["round"]] = row
    return table


def _nearest_round(per_round: dict[int, dict], percent: float) -> int | None:
    """The round whose density is closest to ``percent`` (on a log scale), if within 10% of it."""
    if not per_round:
        return None
    best = min(per_round, key=lambda r: abs(math.log(per_round[r]["density"] * 100 / percent)))
    return best if abs(per_round[best]["density"] * 100 / percent - 1) < 0.1 else None


def _spread(values, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    values = [v * scale for v in values]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}{unit} (1 trial)"
    return f"{mean:.{digits}f}{unit} [{min(values):.{digits}f}, {max(values):.{digits}f}] ({len(values)} trials)"


def _values(table, control: str, percent: float, column: str) -> list[float]:
    values = []
    for per_round in table.get(control, {}).values():
        chosen = 0 if percent == 100 else _nearest_round(per_round, percent)
        if chosen is not None and chosen in per_round:
            values.append(float(per_round[chosen][column]))
    return values


def _paired(table, control: str, percent: float, column: str, reference_control: str = "ticket",
            reference_percent: float = 100) -> list[tuple[float, float]]:
    """(value, reference) per trial that has both."""
    pairs = []
    for trial, per_round in table.get(control, {}).items():
        reference_rounds = table.get(reference_control, {}).get(trial, {})
        chosen = 0 if percent == 100 else _nearest_round(per_round, percent)
        reference = 0 if reference_percent == 100 else _nearest_round(reference_rounds, reference_percent)
        if chosen in per_round and reference in reference_rounds:
            pairs.append((float(per_round[chosen][column]), float(reference_rounds[reference][column])))
    return pairs


def _stays_below_dense_from(table) -> float | None:
    """The highest P_m (percent) from which the mean re-init accuracy stays below the mean dense one."""
    dense = _values(table, "ticket", 100, "test_acc_early_stop")
    by_round: dict[int, list[dict]] = {}
    for per_round in table.get("reinit", {}).values():
        for round_index, row in per_round.items():
            by_round.setdefault(round_index, []).append(row)
    if not dense or not by_round:
        return None
    dense_mean = sum(dense) / len(dense)
    below_from = None
    for round_index in sorted(by_round, reverse=True):  # from the sparsest round upwards
        rows = by_round[round_index]
        if sum(row["test_acc_early_stop"] for row in rows) / len(rows) >= dense_mean:
            break
        below_from = 100 * sum(row["density"] for row in rows) / len(rows)
    return below_from


def _mean(values) -> float:
    return sum(values) / len(values)


def _dense_accuracy(table) -> Measurement | None:
    dense = _values(table, "ticket", 100, "test_acc_early_stop")
    if not dense:
        return None
    return Measurement(_spread(dense, 100, unit="%"), {"mean": 100 * _mean(dense)})


def _paired_change(percent: float, column: str, change: Callable[[float, float], float], *, digits: int = 2,
                   unit: str, relative: bool = False) -> Callable[[dict], Measurement | None]:
    """A measurement of ``change(ticket at P_m percent, the trial's dense network)``, paired per trial.

    With ``relative``, trials whose dense value is 0 are left out: a dense early stop at iteration 0
    is a real result, but no relative change exists against it.
    """
    def measure(table) -> Measurement | None:
        pairs = [(value, reference) for value, reference in _paired(table, "ticket", percent, column)
                 if not relative or reference > 0]
        if not pairs:
            return None
        changes = [change(value, reference) for value, reference in pairs]
        return Measurement(_spread(changes, 100, digits=digits, unit=unit), {"mean": 100 * _mean(changes)})
    return measure


def _reinit_below_dense(table) -> Measurement | None:
    below, slower, rounds_checked = [], [], 0
    for trial, per_round in table.get("reinit", {}).items():
        ticket_rounds = table.get("ticket", {}).get(trial, {})
        if 0 not in ticket_rounds:
            continue
        for round_index, row in per_round.items():
            if row["density"] * 100 <= 21.1 * 1.05 and round_index in ticket_rounds:
                rounds_checked += 1
                below.append(row["test_acc_early_stop"] < ticket_rounds[0]["test_acc_early_stop"])
                slower.append(row["early_stop_iter"] > ticket_rounds[round_index]["early_stop_iter"])
    if not rounds_checked:
        return None
    falls_below = _stays_below_dense_from(table)
    where = (f"mean below dense from P_m {falls_below:.1f}% down" if falls_below is not None
             else "mean not below dense at the lowest P_m")
    return Measurement(f"{where}; below the trial's dense network in {sum(below)}/{rounds_checked} (trial, round) "
                       f"pairs at P_m ≤ 21%; later early stop than the ticket in {sum(slower)}/{rounds_checked}",
                       {"share_below": sum(below) / rounds_checked, "share_slower": sum(slower) / rounds_checked})


def _ticket_vs_random_prune(table) -> Measurement | None:
    ticket = _values(table, "ticket", 10.7, "test_acc_early_stop")
    random_prune = _values(table, "random_prune", 10.7, "test_acc_early_stop")
    if not (ticket and random_prune):
        return None
    return Measurement(f"ticket {_spread(ticket, 100, unit='%')}; random pruning {_spread(random_prune, 100, unit='%')}",
                       {"ticket": 100 * _mean(ticket), "random_prune": 100 * _mean(random_prune)})


def _graded(matches: Callable[[dict], bool], same_direction: Callable[[dict], bool] = lambda numbers: False):
    """A verdict rule: "matches" where ``matches``, else "same direction" where that holds, else "differs"."""
    def verdict(numbers: dict) -> str:
        return "matches" if matches(numbers) else "same direction" if same_direction(numbers) else "differs"
    return verdict


#: Frankle & Carbin's LeNet-300-100 claims, in the report's order; the thresholds of each verdict
#: are the paper's value with the tolerance stated in the report.
CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim("dense_accuracy", "dense network: test accuracy at early stop", "≈ 98.0% (± 0.2)", 98.0,
               "ticket control, round 0 (P_m = 100%)", _dense_accuracy,
               _graded(lambda n: 97.8 <= n["mean"] <= 98.2)),
    PaperClaim("faster_early_stop", "tickets learn faster: early stop at P_m ≈ 21% vs dense", "≈ 38% earlier", 38,
               "1 − (early-stop iteration at P_m 21.1%) / (dense early-stop iteration), per trial",
               _paired_change(21.1, "early_stop_iter", lambda value, dense: 1 - value / dense, digits=0,
                              unit="% earlier", relative=True),
               _graded(lambda n: 20 <= n["mean"] <= 56, lambda n: n["mean"] > 0)),
    PaperClaim("above_dense", "ticket accuracy rises above dense near P_m 13.5%", "> +0.3 points", 0.3,
               "test accuracy at early stop, P_m 13.5% minus dense, per trial",
               _paired_change(13.5, "test_acc_early_stop", lambda value, dense: value - dense, unit=" points"),
               _graded(lambda n: n["mean"] > 0.3, lambda n: n["mean"] > 0)),
    PaperClaim("back_to_dense", "ticket accuracy returns to dense around P_m 3.6%", "≈ dense (difference ≈ 0)", 0.0,
               "test accuracy at early stop, P_m 3.6% minus dense, per trial",
               _paired_change(3.6, "test_acc_early_stop", lambda value, dense: value - dense, unit=" points"),
               _graded(lambda n: abs(n["mean"]) <= 0.2)),
    PaperClaim("reinit_below_dense", "random re-init falls below dense from P_m ≈ 21%, and learns more slowly",
               "below dense from ≈ 21%; later early stop", 21.1,
               "re-init rounds with P_m ≤ 21%: accuracy vs the trial's dense network; "
               "early-stop iteration vs the ticket at the same round", _reinit_below_dense,
               _graded(lambda n: n["share_below"] >= 0.8 and n["share_slower"] >= 0.8,
                       lambda n: n["share_below"] > 0.5)),
    PaperClaim("ticket_vs_random_prune", "at P_m ≈ 10.7%: ticket vs random pruning",
               "ticket ≈ 98.3%, random pruning ≈ 97.5%", {"ticket": 98.3, "random_prune": 97.5},
               "test accuracy at early stop at the round nearest P_m 10.7% (10.8%)", _ticket_vs_random_prune,
               _graded(lambda n: abs(n["ticket"] - 98.3) <= 0.2 and abs(n["random_prune"] - 97.5) <= 0.3,
                       lambda n: n["ticket"] > n["random_prune"])),
)


def paper_claims(rows, claims=CLAIMS) -> list[Claim]:
    """Set each of Frankle & Carbin's LeNet-300-100 claims beside the measurement in ``rows``.

    Args:
        rows: ``summary.csv`` rows (see :func:`lthkit.reporting.summaries.read_summary_csv`) of the paper
            protocol: controls ``ticket``, ``reinit``, ``random_prune``; round 0 is the dense network.
        claims: the :class:`PaperClaim` records to measure (default: :data:`CLAIMS`).

    Returns:
        One :class:`Claim` per claim the rows can measure, in the order of ``claims``. Spreads are
        over trials: mean [min, max]. Differences are paired within a trial (same θ₀ and data order).

    Example:
        >>> [claim.id for claim in paper_claims([])]
        []
    """
    table = _by_control_trial(rows)
    measured = []
    for spec in claims:
        measurement = spec.measure(table)
        if measurement is not None:
            measured.append(Claim(spec.claim, spec.paper, measurement.ours, spec.verdict(measurement.numbers), spec.how,
                                  id=spec.id))
    return measured


def claims_markdown(claims) -> str:
    """The claims as a Markdown table."""
    lines = ["| claim | paper | ours: mean [min, max] over trials | verdict | how we measured it |",
             "| --- | --- | --- | --- | --- |"]
    for claim in claims:
        lines.append(f"| {claim.claim} | {claim.paper} | {claim.ours} | {claim.verdict} | {claim.how} |")
    return "\n".join(lines) + "\n"


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
    """Recompute the tables of ``directory/README.md`` from ``directory/summary.csv``.

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
        atomic_write_files({readme: text.encode()})
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
