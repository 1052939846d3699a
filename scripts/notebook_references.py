#!/usr/bin/env python
"""Record the notebooks' full-mode reference runs, the source of every number their prose states.

Executes each notebook in full mode with ``$LTHKIT_RECORD_REFERENCE`` set, so that the notebook's own
calls to :func:`lthkit.course.references.compare_with_reference` write its runs to
``results/notebooks/<notebook>/<group>.csv`` (one row per run and round) and, for LeNet runs,
``<group>.connectivity.csv``. Then it writes, per notebook:

* ``run_info.json``: the command, lthkit's code version and git commit, the machine, the wall time of
  the execution and the training time of its runs;
* ``facts.json``: every number the notebook's "What we measured" prose states, each computed here
  from those files (:data:`FACTS`). ``tests/test_notebook_references.py`` checks that the prose
  states exactly these values and that they follow from the committed files.

Usage:
    python scripts/notebook_references.py                      # every notebook, into results/notebooks
    python scripts/notebook_references.py --facts-only         # recompute facts.json from the CSVs
    python scripts/notebook_references.py --notebook 02_iterative_magnitude_pruning --cache /tmp/refs-cache

An interrupted run resumes: the runs are cached in ``--cache`` (default ``cache/notebook-references``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from lthkit.course.references import RECORD_ENV, REFERENCE_ROOT, read_reference_csv  # noqa: E402
from lthkit.errors import LthkitError  # noqa: E402

# --- the facts: each number the prose states, computed from the reference files -------------------

def _percent(value: float) -> str:
    return f"{value:.2%}"


def _weights(value: float) -> str:
    """A density as the prose writes it: 7.0%, 41%, 100%."""
    return f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


def _points(value: float) -> str:
    return f"{100 * value:.2f}"


def _iterations(value: int) -> str:
    return f"{value:,}"


def _by_run(rows) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for row in rows:
        runs.setdefault(row["run"], []).append(row)
    return runs


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def wall_time(folder: Path) -> dict[str, str]:
    """The notebook's full-mode wall time, from the ``run_info.json`` of its reference execution: in minutes
    (``wall_minutes``), and in whole seconds (``wall_seconds``) for the notebooks that take less than one."""
    seconds = json.loads((folder / "run_info.json").read_text())["wall_seconds"]
    return {"wall_minutes": _minutes(seconds), "wall_seconds": f"{seconds:.0f}"}


def facts_02(folder: Path) -> dict[str, str]:
    runs = _by_run(read_reference_csv(folder / "runs.csv"))
    ticket, reinit, random_prune = runs["ticket"], runs["reinit"], runs["random_prune"]
    accuracy = [row["test_acc_early_stop"] for row in ticket]
    last = len(ticket) - 1
    pruned = range(1, last + 1)

    def first_behind(control):  # the first round from which the control stays > 0.5 points behind
        return next(index for index in list(pruned) + [None]
                    if index is None or all(control[j]["test_acc_early_stop"] < accuracy[j] - 0.005
                                            for j in range(index, last + 1)))

    stops = [row["early_stop_iter"] for row in ticket]
    fastest = min(pruned, key=lambda index: (stops[index], index))
    mode = max(sorted(set(stops[1:])), key=stops[1:].count)
    budget = max(row["early_stop_iter"] for row in reinit + random_prune)
    at_budget = next(index for index in list(pruned) + [None]
                     if index is None or all(control[j]["early_stop_iter"] == budget
                                             for control in (reinit, random_prune) for j in range(index, last + 1)))
    connectivity = _by_run(read_reference_csv(folder / "runs.connectivity.csv"))["ticket"]
    reinit_behind, random_behind = first_behind(reinit), first_behind(random_prune)
    return {
        **wall_time(folder),
        "ticket_dense": _percent(accuracy[0]),
        "ticket_pruned_low": _percent(min(accuracy[1:])), "ticket_pruned_high": _percent(max(accuracy[1:])),
        "density_last": _weights(ticket[last]["density"]), "ticket_last": _percent(accuracy[last]),
        "ticket_wiggle_points": _points(max(abs(a - b) for a, b in zip(accuracy[1:], accuracy[2:]))),
        "ticket_dense_max_gap_points": _points(max(abs(a - accuracy[0]) for a in accuracy[1:])),
        "ticket_earlier_rounds": str(sum(stops[index] < stops[0] for index in pruned)),
        "reinit_behind_from": _weights(ticket[reinit_behind]["density"]) if reinit_behind else "never",
        "random_prune_behind_from": _weights(ticket[random_behind]["density"]) if random_behind else "never",
        "reinit_last": _percent(reinit[last]["test_acc_early_stop"]),
        "random_prune_last": _percent(random_prune[last]["test_acc_early_stop"]),
        "reinit_gap_last_points": _points(accuracy[last] - reinit[last]["test_acc_early_stop"]),
        "random_prune_gap_last_points": _points(accuracy[last] - random_prune[last]["test_acc_early_stop"]),
        "stop_dense": _iterations(stops[0]), "stop_mode": _iterations(mode),
        "stop_mode_rounds": str(stops[1:].count(mode)), "pruned_rounds": str(last),
        "stop_fastest": _iterations(stops[fastest]), "stop_fastest_at": _weights(ticket[fastest]["density"]),
        "stop_last": _iterations(stops[last]),
        "controls_later_rounds": str(sum(reinit[i]["early_stop_iter"] > stops[i]
                                         and random_prune[i]["early_stop_iter"] > stops[i] for i in pruned)),
        "controls_at_budget_from": _weights(ticket[at_budget]["density"]) if at_budget else "never",
        "budget": _iterations(budget),
        "pixel_mean_last": f"{connectivity[last]['pixel_mean']:.0f}",
        "pixel_centre_last": f"{connectivity[last]['pixel_centre']:.0f}",
        "pixel_border_last": f"{connectivity[last]['pixel_border']:.0f}",
        "pixel_blank_last": f"{connectivity[last]['pixel_blank']:.0f}",
        "blank_pixels": str(connectivity[last]["blank_pixels"]),
        "pixel_max_last": f"{connectivity[last]['pixel_max']}",
        "pixel_max_ratio": f"{connectivity[last]['pixel_max'] / connectivity[last]['pixel_mean']:.1f}",
        "pixel_mean_first": f"{connectivity[1]['pixel_mean']:.0f}",
        "pixel_centre_first": f"{connectivity[1]['pixel_centre']:.0f}",
        "pixel_border_first": f"{connectivity[1]['pixel_border']:.0f}",
    }


#: Notebook 4's run labels, as fact names.
STRATEGY_KEYS = {"θ₀": "init", "late rewinding (θ_100)": "late", "fine-tuning (no rewinding)": "finetune",
                 "θ₀, seed 1": "init_seed1"}


def _signed_points(value: float) -> str:
    """A difference in points as the prose writes it: a negative one with its minus sign (−0.88), a positive one
    bare (the prose's "+" stands outside the tag)."""
    return f"−{abs(value):.2f}" if round(value, 2) < 0 else f"{abs(value):.2f}"


def facts_04(folder: Path) -> dict[str, str]:
    from lthkit.course.rewinding import (FOLDER, REFERENCE_RUNS, comparisons, noise_floor, read_reference_runs,
                                        verdicts)
    from lthkit.studies.stability import MATCHING_POINTS

    facts = wall_time(folder)
    runs = {STRATEGY_KEYS[label]: rows for label, rows in _by_run(read_reference_csv(folder / "lenet.csv")).items()}
    accuracy = {key: [row["test_acc_early_stop"] for row in rows] for key, rows in runs.items()}
    densities = [row["density"] for row in runs["init"]]
    last = len(densities) - 1
    facts["lenet_density_last"] = _weights(densities[last])
    for key, values in accuracy.items():
        facts[f"lenet_{key}_last"] = _percent(values[last])
    strategies = [key for key in accuracy if key != "init_seed1"]
    spread = [max(accuracy[key][index] for key in strategies) - min(accuracy[key][index] for key in strategies)
              for index in range(1, last + 1)]
    widest = 1 + spread.index(max(spread))
    facts["lenet_spread_max_points"] = _points(max(spread))
    facts["lenet_spread_max_at"] = _weights(densities[widest])
    facts["lenet_seed_gap_points"] = _points(max(abs(a - b) for a, b in zip(accuracy["init"], accuracy["init_seed1"])))
    seconds = [sum(row["train_seconds"] for row in rows) for rows in runs.values()]
    facts["lenet_run_seconds_low"] = f"{min(seconds):.0f}"
    facts["lenet_run_seconds_high"] = f"{max(seconds):.0f}"

    # The committed large-learning-rate runs (lthkit.course.rewinding, made by `reproduce`, never by executing the
    # notebook: always read from results/, also when --out is a scratch folder): paired comparisons, 95% intervals.
    reference = read_reference_runs(FOLDER)
    compared = comparisons(reference)
    floor = noise_floor(reference)
    judged = verdicts(compared, floor)
    facts["demo_noise_floor_points"] = f"{floor:.2f}"
    facts["matching_points"] = f"{MATCHING_POINTS:g}"
    sparsest = compared["theta0_vs_reinit"][-1]
    facts["demo_trials"] = str(sparsest.interval.n)
    facts["demo_pruned_rounds"] = str(len(compared["theta0_vs_reinit"]))
    facts["demo_density_last"] = _weights(sparsest.density)
    for name, rows in reference.items():
        dense = [row["test_acc_early_stop"] for row in rows if row["control"] == "ticket" and row["round"] == 0]
        facts[f"{name}_dense"] = _percent(sum(dense) / len(dense))
    for key, rounds in compared.items():
        end = rounds[-1].interval
        facts[f"{key}_last"] = _signed_points(end.estimate)
        facts[f"{key}_last_low"] = _signed_points(end.low)
        facts[f"{key}_last_high"] = _signed_points(end.high)
        for verdict in ("consistent", "inconclusive", "inconsistent"):
            facts[f"{key}_{verdict}"] = str(judged[key].count(verdict))
        facts[f"{key}_positive"] = str(sum(c.interval.estimate > 0 for c in rounds))
        # The weights remaining from which every sparser round is consistent ("never" when the last is not).
        start = next((index for index in range(len(rounds)) if all(v == "consistent" for v in judged[key][index:])),
                     None)
        facts[f"{key}_consistent_from"] = _weights(rounds[start].density) if start is not None else "never"
    seconds = sum(json.loads((FOLDER / sub / "run_info.json").read_text())["training_seconds"]
                  for sub in REFERENCE_RUNS.values())
    facts["demo_training_minutes"] = f"{seconds / 60:.0f}"
    return facts


def _paper_table(path: Path) -> dict[str, dict[int, dict[int, dict]]]:
    """``{control: {trial: {round: row}}}`` of a reproduce folder's ``summary.csv``."""
    from lthkit.reporting.summaries import read_summary_csv

    table: dict[str, dict[int, dict[int, dict]]] = {}
    for row in read_summary_csv(path / "summary.csv"):
        table.setdefault(row["control"], {}).setdefault(row["trial"], {})[row["round"]] = row
    return table


def _round_means(table, control: str, column: str) -> dict[int, float]:
    rounds: dict[int, list[float]] = {}
    for per_round in table[control].values():
        for index, row in per_round.items():
            rounds.setdefault(index, []).append(row[column])
    return {index: sum(values) / len(values) for index, values in sorted(rounds.items())}


def _paper_facts(table, prefix: str = "") -> dict[str, str]:
    from lthkit.studies.paper import PAPER_PM

    def pm(index: int) -> str:
        return f"{PAPER_PM[index]:g}%"

    ticket = _round_means(table, "ticket", "test_acc_early_stop")
    reinit = _round_means(table, "reinit", "test_acc_early_stop")
    dense = ticket[0]
    last = max(ticket)
    trials = sorted(table["ticket"])

    def paired(round_index: int, column: str = "test_acc_early_stop") -> list[float]:
        return [table["ticket"][t][round_index][column] - table["ticket"][t][0][column] for t in trials]

    above = [index for index in ticket if index and ticket[index] > dense]
    below_from = None  # the highest P_m from which the ticket's mean stays below the dense mean to the last round
    for index in sorted(ticket, reverse=True):
        if not index or ticket[index] >= dense:
            break
        below_from = index
    reinit_below_dense = None  # the highest P_m from which the re-init mean stays below the dense mean
    for index in sorted(reinit, reverse=True):
        if reinit[index] >= dense:
            break
        reinit_below_dense = index
    reinit_below_ticket = None  # ... and below the ticket in every trial, from that P_m down
    for index in sorted(reinit, reverse=True):
        if not index or not all(table["reinit"][t][index]["test_acc_early_stop"]
                                < table["ticket"][t][index]["test_acc_early_stop"] for t in trials):
            break
        reinit_below_ticket = index
    faster = [1 - table["ticket"][t][7]["early_stop_iter"] / table["ticket"][t][0]["early_stop_iter"] for t in trials]
    pairs = [(t, index) for t in trials for index in range(7, last + 1)]
    slower = sum(table["reinit"][t][i]["early_stop_iter"] > table["ticket"][t][i]["early_stop_iter"] for t, i in pairs)
    below_own_dense = sum(table["reinit"][t][i]["test_acc_early_stop"] < table["ticket"][t][0]["test_acc_early_stop"]
                          for t, i in pairs)
    facts = {
        "trials": str(len(trials)), "rounds": str(last), "last_pm": pm(last),
        "dense_mean": f"{100 * dense:.2f}%",
        "faster_percent": f"{100 * sum(faster) / len(faster):.0f}%",
        "above_from": pm(min(above)) if above else "never", "above_to": pm(max(above)) if above else "never",
        "below_from": pm(below_from) if below_from is not None else "never",
        # Differences to dense, paired within a trial: the size here, the side in words.
        **{f"{name}_points": f"{abs(100 * sum(paired(index)) / len(trials)):.2f}" for name, index in
           (("above_13_5", 9), ("back_3_6", 15), ("last_minus_dense", last))},
        **{f"{name}_side": "above" if sum(paired(index)) >= 0 else "below" for name, index in
           (("above_13_5", 9), ("back_3_6", 15), ("last_minus_dense", last))},
        "ticket_10_8": f"{100 * ticket[10]:.1f}%",
        "random_10_8": f"{100 * _round_means(table, 'random_prune', 'test_acc_early_stop')[10]:.1f}%",
        "reinit_below_dense_from": pm(reinit_below_dense) if reinit_below_dense is not None else "never",
        "reinit_below_ticket_from": pm(reinit_below_ticket) if reinit_below_ticket is not None else "never",
        "reinit_slower_pairs": str(slower), "reinit_below_own_dense_pairs": str(below_own_dense),
        "reinit_pairs": str(len(pairs)),
    }
    return {prefix + name: value for name, value in facts.items()}


def claim_facts(judged, prefix: str = "") -> dict[str, str]:
    """Each judged claim's estimate and 95% interval (``<id>_est``, ``_low``, ``_high``, as its table shows them)
    and the count of each verdict (``n_consistent``, ...)."""
    from lthkit.reporting.stats import count_verdicts

    facts = {f"n_{verdict}": str(count) for verdict, count in count_verdicts(j.verdict for j in judged).items()}
    for item in judged:
        digits = item.claim.digits
        for name, value in (("est", item.interval.estimate), ("low", item.interval.low), ("high", item.interval.high)):
            if math.isfinite(value):
                facts[f"{item.claim.id}_{name}"] = f"{value:.{digits}f}"
    return {prefix + name: value for name, value in facts.items()}


def facts_05(folder: Path) -> dict[str, str]:
    """Notebook 5 states the paper protocol's results: ``results/paper-lenet300/`` and its comparison run."""
    results = ROOT / "results" / "paper-lenet300"
    comparison = next(results / name for name in ("standardized", "unit-inputs") if (results / name).is_dir())
    from lthkit.reporting.summaries import read_summary_csv
    from lthkit.studies.paper import paper_claims

    facts = {**wall_time(folder), **_paper_facts(_paper_table(results)),
             **_paper_facts(_paper_table(comparison), "cmp_")}
    facts.update(claim_facts(paper_claims(read_summary_csv(results / "summary.csv"))))
    facts.update(claim_facts(paper_claims(read_summary_csv(comparison / "summary.csv")), "cmp_"))
    dense = [_round_means(_paper_table(folder), "ticket", "test_acc_early_stop")[0] for folder in (results, comparison)]
    facts["dense_gap_points"] = _points(abs(dense[0] - dense[1]))
    return facts


def facts_06(folder: Path) -> dict[str, str]:
    """Notebook 6's closing cell states the committed stability study (``results/stability/``): each claim of its
    ``claims.csv`` (estimate, 95% interval, noise floor), the verdict counts, and from ``stability.csv`` the
    densities and ks it measured and the dense network's barrier at the first and the last k."""
    from lthkit.reporting.claims import read_claims_csv
    from lthkit.reporting.stats import count_verdicts
    from lthkit.studies.stability import barrier_table, read_rows, stability_claim_records

    results = ROOT / "results" / "stability"
    claims = read_claims_csv(results / "claims.csv")
    digits = {claim.id: claim.digits for claim in stability_claim_records()}
    facts = wall_time(folder)
    facts.update({f"n_{verdict}": str(count) for verdict, count in count_verdicts(row["verdict"] for row in claims).items()})
    for row in claims:
        shown = digits.get(row["claim_id"], 2)
        for name, column in (("est", "estimate"), ("low", "interval_low"), ("high", "interval_high"),
                             ("floor", "noise_floor")):
            if row[column] and math.isfinite(float(row[column])):
                facts[f"{row['claim_id']}_{name}"] = f"{float(row[column]):.{shown}f}"
    facts["trials"] = str(max(int(row["n"]) for row in claims))
    table = barrier_table(read_rows(results / "stability.csv"))
    dense = sorted((entry for entry in table if entry["control"] == "dense"), key=lambda entry: entry["k"])
    facts["k_last"] = _iterations(dense[-1]["k"])
    facts["dense_barrier_k_last"] = _points(dense[-1]["barrier_mean"])
    facts["density_sparsest"] = _weights(min(entry["density"] for entry in table))
    return facts


def facts_07(folder: Path) -> dict[str, str]:
    """Notebook 7's closing cell states the committed ticket-anatomy study's claims (``results/ticket-anatomy/``)."""
    from lthkit.studies.anatomy import anatomy_claims, anatomy_floors, load_study

    rows, supermask = load_study(ROOT / "results" / "ticket-anatomy")
    facts = {**wall_time(folder), **claim_facts(anatomy_claims(rows, supermask))}
    facts["trials"] = str(len({row["trial"] for row in rows}))
    facts["floor_points"] = f"{anatomy_floors(rows)['accuracy']:.2f}"
    return facts


def facts_08(folder: Path) -> dict[str, str]:
    """Notebook 8: a find_ticket search on Fashion-MNIST, the ticket and its re-initialized masks (``ticket.csv``)."""
    from lthkit.course.references import _read_ticket_csv

    runs = _by_run(_read_ticket_csv(folder / "ticket.csv"))
    ticket, reinit = runs["ticket"], runs["reinit"]
    accuracy = [row["metric"] for row in ticket]
    control = [row["metric"] for row in reinit]
    dense, last = accuracy[0], len(ticket) - 1
    matches_to = None  # the lowest density down to which every pruned round stays within half a point of dense
    for index in range(1, last + 1):
        if accuracy[index] < dense - 0.005:
            break
        matches_to = index
    best = max(range(1, last + 1), key=lambda index: (accuracy[index], -index))
    gaps = [accuracy[index] - control[index] for index in range(1, last + 1)]
    return {
        **wall_time(folder),
        "search_minutes": _minutes(sum(row["train_seconds"] for row in ticket + reinit)),
        "ticket_dense": _percent(dense), "reinit_dense": _percent(control[0]),
        "ticket_matches_to": _weights(ticket[matches_to]["density"]) if matches_to else "never",
        "ticket_best": _percent(accuracy[best]), "ticket_best_at": _weights(ticket[best]["density"]),
        "density_last": _weights(ticket[last]["density"]), "ticket_last": _percent(accuracy[last]),
        "reinit_last": _percent(control[last]),
        "reinit_gap_last_points": _points(abs(gaps[-1])),
        "reinit_gap_max_points": _points(max(gaps)),
        "reinit_gap_max_at": _weights(ticket[1 + gaps.index(max(gaps))]["density"]),
        "reinit_behind_rounds": str(sum(gap > 0 for gap in gaps)), "pruned_rounds": str(last),
        "steps_per_round": _iterations(ticket[0]["steps"]),
    }


#: ``{notebook: facts(folder) -> {name: the number as the prose writes it}}``: every notebook, each executed in
#: full mode for the wall time its opening cell states; 02, 04 and 08 also record the runs their prose states,
#: and 1, 3 and 9 state only their wall time.
FACTS = {"01_one_pruning_step": wall_time, "02_iterative_magnitude_pruning": facts_02, "03_explore": wall_time,
         "04_rewinding": facts_04, "05_paper_results": facts_05, "06_stability": facts_06,
         "07_ticket_anatomy": facts_07, "08_your_own_network": facts_08, "09_sparsity_is_not_speed": wall_time}


def write_facts(notebook: str, out: Path) -> dict[str, str]:
    facts = FACTS[notebook](out / notebook)
    (out / notebook).mkdir(parents=True, exist_ok=True)
    (out / notebook / "facts.json").write_text(json.dumps(facts, indent=1, ensure_ascii=False) + "\n")
    return facts


# --- running the notebooks ----------------------------------------------------------------------

def run_notebook(notebook: str, out: Path, cache: Path, timeout: int) -> dict:
    import nbclient
    import nbformat
    import torch

    from lthkit.reporting.provenance import run_info

    path = ROOT / "notebooks" / f"{notebook}.ipynb"
    environment = {RECORD_ENV: str(out.resolve()), "LTHKIT_CACHE": str(cache.resolve()), "LTHKIT_FAST": "0",
                   "OMP_NUM_THREADS": "1"}
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the kernel inherits them
    began = time.perf_counter()
    try:
        document = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(document, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    wall = time.perf_counter() - began
    torch.set_num_threads(1)
    info = run_info("notebook", argv="python scripts/notebook_references.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                    device="cpu", wall_seconds=round(wall, 1), notebook=f"notebooks/{notebook}.ipynb", mode="full")
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", action="append", choices=list(FACTS),
                        help="a notebook (repeatable; default: all of them)")
    parser.add_argument("--out", type=Path, default=REFERENCE_ROOT)
    parser.add_argument("--cache", type=Path, default=ROOT / "cache" / "notebook-references",
                        help="run caches, one folder per notebook (kept: a second run resumes from them)")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds one cell may run")
    parser.add_argument("--facts-only", action="store_true", help="only recompute facts.json from the files")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except LthkitError as error:
        print(f"notebook_references: {error}", file=sys.stderr)
        return 2


def _run(args) -> int:
    for notebook in args.notebook or FACTS:
        folder = args.out / notebook
        if not args.facts_only:
            cache = args.cache / notebook
            cache.mkdir(parents=True, exist_ok=True)
            fresh = not any(cache.iterdir())
            info = run_notebook(notebook, args.out, cache, args.timeout)
            info["cache"] = "fresh" if fresh else "reused (some runs may have come from it)"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "run_info.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
            print(f"{notebook}: {info['wall_seconds']:.0f} s", flush=True)
        print(json.dumps(write_facts(notebook, args.out), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
