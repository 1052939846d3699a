"""Instability analysis (linear mode connectivity) and the retraining comparison of notebook 6.

Frankle, Dziugaite, Roy & Carbin ("Linear Mode Connectivity and the Lottery Ticket Hypothesis",
ICML 2020) ask whether a network is *stable to SGD noise*: train two copies of it from the same
weights θ_k (iteration k of training; k = 0 is the initialization) with the same mask and the
same hyperparameters, and let only the order of the training batches differ. Then walk the
straight line between the two trained networks,

    θ(α) = (1 − α) θ_A + α θ_B,   α ∈ [0, 1],

keeping pruned weights at exactly zero, and measure the test error along it. The **error barrier**
(the *instability*) is the highest error on the path minus the mean of the two endpoints' errors;
the network is **stable** when it is below 2 percentage points: the two copies found one linearly
connected minimum.

In lthkit the two copies are two registered branches of the one IMP driver
(:mod:`lthkit.imp.branches`): a run (``ticket``, ``random_prune`` or ``reinit`` with its rewind point
k) is copy A of each of its rounds, and its *twin* (``ticket_twin``, ...) trains every round
exactly as it does, its first k batches included, and changes the batch order from iteration k
on (:func:`lthkit.core.train.batch_order`). Both go through :func:`lthkit.runs.experiments.run_experiments`,
so they are cached, resumable and swept like every other run; the path's errors are cached beside
them. On a CPU a run's θ_k and its twin's are bit for bit the same (``tests/test_stability.py``);
on a GPU, where the runs of a round may train batched while a twin trains alone, they agree up to
float rounding. :func:`interpolate` and :func:`error_barrier` are also notebook 6's katas (the
grader's reference solutions are these two functions).

Example:
    >>> from lthkit.core.paths import error_barrier, interpolate
    >>> a = {"w": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([0.0])}
    >>> b = {"w": torch.tensor([3.0, 4.0, 5.0]), "b": torch.tensor([1.0])}
    >>> interpolate(a, b, 0.5, {"w": torch.tensor([True, False, True])})
    {'w': tensor([2., 0., 4.]), 'b': tensor([0.5000])}
    >>> round(error_barrier([0.02, 0.10, 0.04]), 6)
    0.07
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..core.data import MNISTData
from ..core.files import atomic_write_json, read_typed_csv
from ..core.models import build_model
from ..core.paths import STABLE_THRESHOLD, alpha_grid, error_barrier, is_stable, path_errors
from ..errors import LthkitError
from ..imp.branches.retraining import RETRAINING
from ..imp.branches.twins import TWINS
from ..imp.config import LotteryConfig
from ..reporting.claims import Claim, JudgedClaim, claims_csv_text, claims_markdown, judge_claims, verdict_headline
from ..reporting.stats import Expectation, paired_differences, spread
from .base import Study

#: The kinds of network instability analysis compares: the dense network and three kinds of subnetwork.
KINDS = ("dense", "ticket", "random_prune", "reinit")


# --- the study ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    """One instability measurement: a run's round (copy A) and its twin's (copy B)."""

    k: int
    kind: str
    trial: int
    round: int
    source: LotteryConfig  # copy A's run
    twin: LotteryConfig  # copy B's run


def at_rewind(base: LotteryConfig, k: int) -> LotteryConfig:
    """``base`` rewinding to θ_k (θ₀ for k = 0)."""
    return base.replace(rewind="init", rewind_iteration=0) if k == 0 else \
        base.replace(rewind="iteration", rewind_iteration=int(k))


def stability_pairs(base: LotteryConfig, ks, trials: int = 1, controls=("ticket", "random_prune", "reinit"),
                    first_seed: int = 0) -> list[Pair]:
    """Every (k, kind, trial, round) the study measures, with the two runs that hold its copies.

    The dense network at k is round 0 of the ticket run (it passes through θ_k) and of its twin
    (which leaves it at k); the IMP subnetworks are the ticket's later rounds; the controls'
    rounds 1 ... are their subnetworks at the ticket's densities.

    Args:
        base: the IMP run (model, rounds, rates, training, data); its rewind fields are replaced.
        ks: the iterations k to split at.
        trials: seeds ``first_seed``, ``first_seed + 1``, ...
        controls: which of ``ticket``, ``random_prune``, ``reinit`` (``ticket`` also gives ``dense``).
        first_seed: the first trial's seed.

    Returns:
        One :class:`Pair` per measurement, by k, then trial, then control, then round.

    Example:
        >>> pairs = stability_pairs(LotteryConfig(rounds=2), ks=(0, 100), controls=("ticket", "random_prune"))
        >>> [(p.k, p.kind, p.round) for p in pairs][:4], len(pairs)
        ([(0, 'dense', 0), (0, 'ticket', 1), (0, 'ticket', 2), (0, 'random_prune', 1)], 10)
        >>> pairs[-1].source.control, pairs[-1].twin.control, pairs[-1].source.rewind_iteration
        ('random_prune', 'random_prune_twin', 100)
    """
    pairs = []
    for k in ks:
        for trial in range(first_seed, first_seed + trials):
            for control in controls:
                if control not in TWINS:
                    raise LthkitError(f"unknown control {control!r} for instability; choose from {', '.join(TWINS)}")
                source = at_rewind(base, k).replace(control=control, seed=trial)
                twin = source.replace(control=TWINS[control])
                rounds = range(0 if control == "ticket" else 1, base.rounds + 1)
                for round_index in rounds:
                    kind = "dense" if round_index == 0 else control
                    pairs.append(Pair(k=int(k), kind=kind, trial=trial, round=round_index, source=source, twin=twin))
    return pairs


def pair_for(base: LotteryConfig, k: int, round_index: int, control: str = "ticket", trial: int = 0) -> Pair:
    """The one pair of the explorer: ``control``'s subnetwork after ``round_index`` rounds (0: dense) at k.

    Its runs are ``base`` cut to ``max(1, round_index)`` rounds, so that the explorer trains no
    round it does not show (the rounds it shares with a longer run have the same masks and weights).

    Example:
        >>> pair = pair_for(LotteryConfig(rounds=5), k=100, round_index=2, control="random_prune")
        >>> pair.kind, pair.source.rounds, pair.twin.control, pair.source.rewind_iteration
        ('random_prune', 2, 'random_prune_twin', 100)
    """
    if round_index == 0:
        control = "ticket"
    if control not in TWINS:
        raise LthkitError(f"unknown control {control!r} for instability; choose from {', '.join(TWINS)}")
    source = at_rewind(base.replace(rounds=max(1, round_index)), k).replace(control=control, seed=trial)
    return Pair(k=int(k), kind="dense" if round_index == 0 else control, trial=trial, round=round_index,
                source=source, twin=source.replace(control=TWINS[control]))


def pair_rows(pair: Pair, found: dict, threshold: float = STABLE_THRESHOLD) -> list[dict]:
    """:func:`measure_pair`'s result as rows of ``stability.csv``."""
    return [{"k": pair.k, "round": pair.round, "density": found["density"], "control": pair.kind,
             "trial": pair.trial, "alpha": alpha, "test_error": error, "error_barrier": found["barrier"],
             "stable": is_stable(found["barrier"], threshold)} for alpha, error in zip(found["alphas"], found["errors"])]


def _own_source_hash() -> str:
    """A hash of this module's source (how the path is measured: ``interpolate`` lives here)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def _path_key(pair: Pair, alphas, code: str) -> str:
    from ..runs.cache import cache_key

    # The core's code version covers the trained runs; this module's own source covers how the path is measured.
    payload = json.dumps({"a": cache_key(pair.source, code), "b": cache_key(pair.twin, code), "round": pair.round,
                          "alphas": list(alphas), "measured_by": _own_source_hash()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def measure_pair(pair: Pair, data: MNISTData | None, *, cache_dir=None, alphas=None) -> dict:
    """The path errors of one pair, from the two runs' cached trained weights (cached themselves).

    Returns:
        ``{"alphas", "errors", "barrier", "density", "endpoint_errors"}``.
    """
    from ..runs.cache import DiskStore, cache_entry, cache_root, code_version

    alphas = alpha_grid() if alphas is None else list(alphas)
    code = code_version()
    path = cache_root(cache_dir) / "stability" / f"{_path_key(pair, alphas, code)}.json"
    if path.is_file():
        try:
            found = json.loads(path.read_text())
            if found.get("alphas") == alphas and len(found.get("errors", [])) == len(alphas):
                return found
        except (OSError, ValueError):
            pass  # recomputed below
    if data is None:
        raise LthkitError("the path of this pair is not cached: give the data to measure it")
    records = []
    for config in (pair.source, pair.twin):
        record = DiskStore(cache_entry(config, cache_dir), config).load(pair.round)
        if record is None:
            raise LthkitError(f"round {pair.round} of {config.control} (trial {config.seed}) is not in the cache")
        records.append(record)
    (a, b) = records
    if any(not torch.equal(a.mask[name], b.mask[name]) for name in a.mask):
        raise LthkitError(f"{pair.kind} k={pair.k} trial {pair.trial}: the two copies have different masks")
    model = build_model(pair.source.model, seed=0).to(data.device)
    state_a = {name: t.to(data.device) for name, t in a.trained_state.items()}
    state_b = {name: t.to(data.device) for name, t in b.trained_state.items()}
    masks = {name: m.to(data.device) for name, m in a.mask.items()}
    errors = path_errors(model, state_a, state_b, data.test_x, data.test_y, masks, alphas)
    found = {"alphas": alphas, "errors": errors, "barrier": error_barrier(errors), "density": a.result.density,
             "test_acc_final": [a.result.test_acc_final, b.result.test_acc_final]}
    atomic_write_json(path, found)
    return found


#: The study's protocols: the preset each trains and its defaults by mode (``lthkit stability --protocol``,
#: notebook 6): the ks, the trials, the subnetworks measured, and the k of the retraining comparison (each
#: method then retrains T − k iterations a round; ``None``: not run).
#:
#: * ``adam``: notebook 6's protocol (the paper preset's Adam, 2,000 iterations with the rate cut tenfold at
#:   1,000 and 1,500, 3 rounds of 65%): a classroom-sized setting, not a paper's;
#: * ``sgd``: Frankle et al. 2020's LeNet protocol (their Table 1; preset ``stability_sgd``).
PROTOCOLS = {
    "adam": {"preset": "stability",
             "full": {"ks": (0, 25, 100, 500, 1000), "trials": 3, "controls": ("ticket", "random_prune", "reinit"),
                      "retrain_k": 500},
             "fast": {"ks": (0, 50), "trials": 1, "controls": ("ticket", "random_prune"), "retrain_k": 50}},
    "sgd": {"preset": "stability_sgd",
            "full": {"ks": (0, 100, 500, 2000), "trials": 3, "controls": ("ticket", "random_prune"), "retrain_k": None},
            "fast": {"ks": (0, 50), "trials": 1, "controls": ("ticket", "random_prune"), "retrain_k": None}},
}
#: Each protocol in a few words, as the report states it.
PROTOCOL_WORDS = {"adam": "notebook 6's classroom setting: Adam, 2,000 iterations, the rate cut tenfold at 1,000 and "
                          "1,500; not a paper's protocol",
                  "sgd": "Frankle et al. 2020's LeNet protocol, their Table 1: SGD at a constant 0.1, batch 60, "
                         "24,000 iterations; IMP to their 3.5% of the weights in 4 rounds of 57% (their IMP prunes "
                         "20% a round)"}
#: The ``adam`` protocol's defaults by mode (notebook 6 and its explorer).
DEFAULTS = {mode: PROTOCOLS["adam"][mode] for mode in ("full", "fast")}

#: Columns of ``stability.csv``: one row per (k, density, kind, trial, α); errors as fractions.
STABILITY_COLUMNS = ("k", "round", "density", "control", "trial", "alpha", "test_error", "error_barrier", "stable")
#: Columns of ``retraining.csv``: one row per (method, trial, round).
RETRAINING_COLUMNS = ("method", "k", "trial", "round", "density", "test_acc_final", "test_acc_early_stop")


def run_stability(base: LotteryConfig, ks, *, trials: int = 1, controls=("ticket", "random_prune", "reinit"),
                  first_seed: int = 0, alphas=None, threshold: float = STABLE_THRESHOLD, cache_dir=None,
                  data: MNISTData | None = None, device: str | None = None, data_root=None, progress: bool = True,
                  workers: int = 1, scheduler: str | None = None) -> list[dict]:
    """Instability against k: train (or read from the cache) every pair's runs, walk every path.

    Args:
        base: the IMP run (see :func:`stability_pairs`).
        ks: the iterations k.
        trials, controls, first_seed: as for :func:`stability_pairs`.
        alphas: the path's points (default: :func:`alpha_grid`).
        threshold: the stability threshold (a fraction: 0.02 is 2 points).
        cache_dir, data, device, data_root, progress, workers, scheduler: as for
            :func:`lthkit.runs.experiments.run_experiments`.

    Returns:
        The rows of ``stability.csv`` (:data:`STABILITY_COLUMNS`).

    Example:
        >>> rows = run_stability(preset_config("stability", fast=True), ks=(0, 50))  # doctest: +SKIP
    """
    from ..core.data import get_data
    from ..runs.experiments import run_experiments

    alphas = alpha_grid() if alphas is None else list(alphas)
    pairs = stability_pairs(base, ks, trials, controls, first_seed)
    configs = list(dict.fromkeys(config for pair in pairs for config in (pair.source, pair.twin)))
    run_experiments(configs, cache_dir=cache_dir, data=data, device=device, data_root=data_root, progress=progress,
                    workers=workers, scheduler=scheduler)
    if data is None:
        data = get_data(base.data, device, data_root)
    rows = []
    for pair in tqdm(pairs, desc="linear paths", disable=not progress, unit="path"):
        rows.extend(pair_rows(pair, measure_pair(pair, data, cache_dir=cache_dir, alphas=alphas), threshold))
    return rows


def retraining_configs(base: LotteryConfig, k: int, *, trials: int = 1, first_seed: int = 0,
                       methods=RETRAINING) -> list[LotteryConfig]:
    """The runs of the retraining comparison: each method's IMP chain rewinding to k, per trial.

    Example:
        >>> [(c.control, c.seed, c.rewind_iteration) for c in retraining_configs(LotteryConfig(), 100)]
        [('finetune', 0, 100), ('weight_rewind', 0, 100), ('lr_rewind', 0, 100)]
    """
    return [at_rewind(base, k).replace(control=method, seed=seed)
            for seed in range(first_seed, first_seed + trials) for method in methods]


def run_retraining(base: LotteryConfig, k: int, *, trials: int = 1, first_seed: int = 0, methods=RETRAINING,
                   cache_dir=None, data: MNISTData | None = None, device: str | None = None, data_root=None,
                   progress: bool = True, workers: int = 1, scheduler: str | None = None) -> list[dict]:
    """Fine-tuning, weight rewinding and learning-rate rewinding, each retraining T − k iterations a round.

    Returns:
        The rows of ``retraining.csv`` (:data:`RETRAINING_COLUMNS`).
    """
    from ..runs.experiments import run_experiments

    configs = retraining_configs(base, k, trials=trials, first_seed=first_seed, methods=methods)
    results = run_experiments(configs, cache_dir=cache_dir, data=data, device=device, data_root=data_root,
                              progress=progress, workers=workers, scheduler=scheduler)
    return [{"method": result.config.control, "k": k, "trial": result.config.seed, "round": r.round,
             "density": r.density, "test_acc_final": r.test_acc_final, "test_acc_early_stop": r.test_acc_early_stop}
            for result in results for r in result.rounds]




#: The typed columns of ``stability.csv`` and ``retraining.csv``.
_COLUMN_TYPES = {"k": int, "round": int, "trial": int, "density": float, "alpha": float, "test_error": float,
                 "error_barrier": float, "test_acc_final": float, "test_acc_early_stop": float, "stable": bool}


def read_rows(path) -> list[dict]:
    """A ``stability.csv`` or ``retraining.csv`` back, numbers as numbers.

    Raises:
        LthkitError: the file is missing or not such a CSV.
    """
    return read_typed_csv(path, _COLUMN_TYPES, "a results CSV of lthkit.studies.stability")


def barrier_table(rows) -> list[dict]:
    """One entry per (control, k, round): density, and the error barrier's mean, min and max over trials.

    Args:
        rows: rows of ``stability.csv`` (every α of a pair repeats its barrier; each pair counts once).

    Returns:
        Dicts with ``control``, ``k``, ``round``, ``density``, ``trials``, ``barrier_mean``,
        ``barrier_min`` and ``barrier_max``, dense first.

    Example:
        >>> rows = [{"control": "ticket", "k": 0, "round": 1, "trial": t, "density": 0.5, "error_barrier": b,
        ...          "alpha": a} for t, b in ((0, 0.01), (1, 0.03)) for a in (0.0, 1.0)]
        >>> entry = barrier_table(rows)[0]
        >>> entry["trials"], round(entry["barrier_mean"], 6), entry["barrier_max"]
        (2, 0.02, 0.03)
    """
    seen = {}
    for row in rows:
        key = (row["control"], row["k"], row["round"])
        seen.setdefault(key, {}).setdefault(row["trial"], (row["density"], row["error_barrier"]))
    table = []
    for (control, k, round_index), trials in seen.items():
        barriers = [barrier for _, barrier in trials.values()]
        densities = [density for density, _ in trials.values()]
        table.append({"control": control, "k": k, "round": round_index, "density": sum(densities) / len(densities),
                      "trials": len(barriers), "barrier_mean": sum(barriers) / len(barriers),
                      "barrier_min": min(barriers), "barrier_max": max(barriers)})
    return sorted(table, key=lambda entry: (KINDS.index(entry["control"]), entry["round"], entry["k"]))


# --- the report ---------------------------------------------------------------------------------

def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def endpoint_table(rows) -> dict:
    """``{(control, k, round): mean test error of the trained copies}`` (the path's endpoints, over trials)."""
    ends = {}
    for row in rows:
        if row["alpha"] in (0.0, 1.0):
            ends.setdefault((row["control"], row["k"], row["round"]), []).append(row["test_error"])
    return {key: _mean(values) for key, values in ends.items()}


def retraining_table(rows, metric: str = "test_acc_final") -> list[dict]:
    """One entry per (method, round): density and ``metric``'s mean, min and max over trials."""
    groups = {}
    for row in rows:
        groups.setdefault((row["method"], row["round"]), []).append(row)
    order = {method: index for index, method in enumerate(RETRAINING)}
    return [{"method": method, "round": round_index, "density": _mean(r["density"] for r in members),
             "trials": len(members), "mean": _mean(r[metric] for r in members),
             "min": min(r[metric] for r in members), "max": max(r[metric] for r in members)}
            for (method, round_index), members in sorted(groups.items(), key=lambda item: (order.get(item[0][0], 9),
                                                                                          item[0][1]))]


# --- the papers' claims, judged ------------------------------------------------------------------
#
# Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis" (ICML 2020,
# arXiv:1912.05671) for LeNet on MNIST, and Renda, Frankle & Carbin, "Comparing Rewinding and Fine-tuning in
# Neural Network Pruning" (ICLR 2020, arXiv:2003.02389) for retraining. The claims and their tolerances were
# written down on 2026-12-07, after the Adam runs in results/stability/ had been seen and before the run at
# the SGD protocol (results/stability/sgd/) had finished.

#: A subnetwork is **matching** when its test accuracy is no more than this many percentage points below the
#: dense network's (paired within a trial, at the same k), judged by the 95% interval of the difference.
MATCHING_POINTS = 0.2

_LMC = "Frankle et al. 2020"


def _pairs_by_key(rows) -> dict[tuple, dict]:
    """``{(control, k, round, trial): {"barrier", "error_a", "error_b", "density"}}`` from ``stability.csv`` rows."""
    pairs: dict[tuple, dict] = {}
    for row in rows:
        entry = pairs.setdefault((row["control"], row["k"], row["round"], row["trial"]),
                                 {"barrier": row["error_barrier"], "density": row["density"]})
        if row["alpha"] == 0.0:
            entry["error_a"] = row["test_error"]
        elif row["alpha"] == 1.0:
            entry["error_b"] = row["test_error"]
    return pairs


def _sparsest(pairs, control: str) -> int | None:
    rounds = [key[2] for key in pairs if key[0] == control]
    return max(rounds) if rounds else None


def _accuracy(entry: dict) -> float:
    """The mean test accuracy (percent) of a pair's two trained copies."""
    return 100 * (1 - (entry["error_a"] + entry["error_b"]) / 2)


def _barrier_at(control: str, k_first: bool = True):
    """A measure: the error barrier (points) of ``control``'s sparsest subnetwork (dense: round 0) at the first k."""
    def measure(data) -> dict[int, float]:
        pairs, k = data["pairs"], data["k0"]
        round_index = 0 if control == "dense" else _sparsest(pairs, control)
        return {trial: 100 * entry["barrier"] for (kind, kk, r, trial), entry in sorted(pairs.items())
                if kind == control and kk == k and r == round_index}
    return measure


def _accuracy_against_dense(control: str):
    """A measure: ``control``'s sparsest subnetwork minus the dense network, test accuracy of the copies, at the first k."""
    def measure(data) -> dict[int, float]:
        pairs, k = data["pairs"], data["k0"]
        round_index = _sparsest(pairs, control)
        dense = {trial: _accuracy(entry) for (kind, kk, r, trial), entry in pairs.items()
                 if kind == "dense" and kk == k and "error_b" in entry}
        sparse = {trial: _accuracy(entry) for (kind, kk, r, trial), entry in pairs.items()
                  if kind == control and kk == k and r == round_index and "error_b" in entry}
        return paired_differences(sparse, dense)
    return measure


def _copies_placebo(data) -> dict[int, float]:
    """Copy B minus copy A of the dense network at the first k (same θ_k, another batch order): expected 0."""
    pairs, k = data["pairs"], data["k0"]
    return {trial: 100 * (entry["error_a"] - entry["error_b"]) for (kind, kk, r, trial), entry in sorted(pairs.items())
            if kind == "dense" and kk == k and "error_b" in entry}


def _retraining_difference(method: str, reference: str):
    """A measure: ``method`` minus ``reference``, final test accuracy (points) at the sparsest retrained round."""
    def measure(data) -> dict[int, float]:
        rows = data["retraining"]
        if not rows:
            return {}
        last = max(row["round"] for row in rows)
        accuracy = {(row["method"], row["trial"]): 100 * row["test_acc_final"] for row in rows if row["round"] == last}
        return paired_differences({t: v for (m, t), v in accuracy.items() if m == method},
                                  {t: v for (m, t), v in accuracy.items() if m == reference})
    return measure


def _protocol_note(protocol: str) -> str:
    return ("" if protocol == "sgd" else "Measured under the adam protocol (notebook 6's: Adam, 2,000 iterations, "
            "the rate cut tenfold twice), not the paper's (SGD at 0.1, 24,000 iterations: `--protocol sgd`).")


def stability_claim_records(protocol: str = "adam") -> tuple[Claim, ...]:
    """The claims a stability folder is judged by (the protocol's note goes beside the papers' claims)."""
    note = _protocol_note(protocol)
    matching = Expectation("at_least", 0.0, MATCHING_POINTS)
    return (
        Claim("dense_stable_k0", "the dense LeNet-300-100 is stable at initialization: error barrier under 2 points "
              "at k = 0", "stable", f"{_LMC}, §3 (unpruned networks); read off a figure", Expectation("at_most", 2.0),
              "points", "error barrier of the dense network's two copies from θ₀", _barrier_at("dense"),
              floor="barrier", note=note),
        Claim("ticket_stable_k0", "IMP subnetworks of LeNet are stable at initialization (at the study's sparsest)",
              "stable", f"{_LMC}, §4 (IMP subnetworks; density of Table 1); read off a figure",
              Expectation("at_most", 2.0), "points", "error barrier of the sparsest IMP subnetwork's copies from θ₀",
              _barrier_at("ticket"), floor="barrier", note=note),
        Claim("ticket_matching_k0", f"... and matching: accuracy at most {MATCHING_POINTS} points below dense",
              "matching", f"{_LMC}, §4; read off a figure", matching, "points",
              "sparsest IMP subnetwork minus the dense network, test accuracy of the trained copies from θ₀",
              _accuracy_against_dense("ticket"), note=note),
        Claim("random_unstable_k0", "randomly pruned subnetworks of LeNet are unstable at initialization",
              "unstable", f"{_LMC}, §4 (random pruning); read off a figure", Expectation("at_least", 2.0), "points",
              "error barrier of the sparsest random-pruning subnetwork's copies from θ₀",
              _barrier_at("random_prune"), floor="barrier", note=note),
        Claim("random_not_matching_k0", f"... and not matching: accuracy more than {MATCHING_POINTS} points below "
              "dense", "not matching", f"{_LMC}, §4; read off a figure", Expectation("at_most", -MATCHING_POINTS),
              "points", "sparsest random-pruning subnetwork minus the dense network, test accuracy of the copies",
              _accuracy_against_dense("random_prune"), floor="accuracy", note=note),
        Claim("lr_rewind_vs_weight_rewind", "learning-rate rewinding matches or beats weight rewinding (sparsest "
              "round)", "matches or beats", "Renda et al. 2020, §5 (LeNet is not among its networks); read off "
              "its figures", Expectation("at_least", 0.0, MATCHING_POINTS), "points",
              "lr_rewind minus weight_rewind, final test accuracy at the sparsest retrained round",
              _retraining_difference("lr_rewind", "weight_rewind")),
        Claim("weight_rewind_vs_finetune", "weight rewinding beats fine-tuning (sparsest round)", "beats",
              "Renda et al. 2020, §5; read off its figures", Expectation("at_least", 0.0), "points",
              "weight_rewind minus finetune, final test accuracy at the sparsest retrained round",
              _retraining_difference("weight_rewind", "finetune"), floor="accuracy"),
        Claim("placebo_copies", "placebo: the dense network's two copies (same θ₀, another batch order) "
              "(expected: no difference)", "0 (no paper claim)", "none: a control of lthkit's",
              Expectation("near", 0.0, MATCHING_POINTS), "points", "copy B minus copy A, test accuracy, k = first",
              _copies_placebo),
    )


def stability_floors(rows) -> dict[str, float]:
    """The study's noise floors: over trials (different seeds), the spread of the dense network's barrier and accuracy.

    ``barrier``: the standard deviation (points) of the dense network's error barrier at the first k;
    ``accuracy``: of the dense networks' test accuracy (copy A of each trial at the first k).
    """
    pairs = _pairs_by_key(rows)
    if not pairs:
        return {}
    k = min(key[1] for key in pairs)
    dense = [entry for (kind, kk, r, t), entry in pairs.items() if kind == "dense" and kk == k]
    return {"barrier": 100 * spread(entry["barrier"] for entry in dense) if dense else 0.0,
            "accuracy": 100 * spread(1 - entry["error_a"] for entry in dense if "error_a" in entry) if dense else 0.0}


def stability_claims(rows, retraining=(), protocol: str = "adam") -> list[JudgedClaim]:
    """Judge the papers' stability and retraining claims on a stability folder's rows (95% intervals over trials).

    Args:
        rows: ``stability.csv`` rows; retraining: ``retraining.csv`` rows (may be empty);
        protocol: ``"adam"`` or ``"sgd"`` (:data:`PROTOCOLS`): the adam protocol's claims carry a note.

    Returns:
        One :class:`~lthkit.reporting.claims.JudgedClaim` per claim the rows can measure.
    """
    pairs = _pairs_by_key(rows)
    if not pairs:
        return []
    data = {"pairs": pairs, "k0": min(key[1] for key in pairs), "retraining": list(retraining)}
    return judge_claims(stability_claim_records(protocol), data, stability_floors(rows))


def report_text(rows, retraining, info: dict) -> str:
    """``README.md`` of a stability folder: how it was made, the measured tables, the papers' findings beside them.

    Every number in it is computed from ``rows`` (``stability.csv``), ``retraining`` (``retraining.csv``)
    and ``info`` (``run_info.json``); the papers' claims are judged by :func:`stability_claims`.
    """
    threshold = info.get("threshold", STABLE_THRESHOLD)
    protocol = info.get("protocol") or "adam"
    judged = stability_claims(rows, retraining, protocol)
    table, ends = barrier_table(rows), endpoint_table(rows)
    lines = ["# Instability analysis and retraining after pruning, measured", "",
             "Generated by `python -m lthkit stability` (rerun it to regenerate this file). The command, the machine "
             "and the time:", "",
             f"* command: `{info.get('command')}`",
             f"* machine: {info.get('machine')}, {(info.get('hardware') or {}).get('cpu', '')} "
             f"({(info.get('hardware') or {}).get('cpu_count')} cores, {(info.get('hardware') or {}).get('torch_threads')} "
             f"torch thread(s)), torch {(info.get('hardware') or {}).get('torch')}",
             f"* finished: {info.get('finished')}; {info.get('trainings')} trainings, "
             f"{info.get('training_seconds')} s of training in all ({info.get('seconds_per_training')} s each); "
             f"this invocation took {info.get('wall_seconds')} s of wall time",
             f"* git commit: {info.get('git_commit')}",
             f"* protocol: **{protocol}** ({PROTOCOL_WORDS[protocol]})", "",
             "## The papers' claims, judged", "",
             "Each claim is judged on the trials: the mean with its 95% interval (Student's t over trials; "
             "differences paired within a trial), and a verdict against the range written in *agrees when*: "
             "**consistent** (the whole interval inside it), **inconsistent** (none of it), **inconclusive** "
             f"(the interval straddles its edge, or one trial gave no interval). A network is **stable** when its "
             f"error barrier is under {100 * threshold:g} points; a subnetwork is **matching** when its test accuracy "
             f"is at most {MATCHING_POINTS:g} points below the dense network's (same trial, same k). A claimed "
             "difference smaller than the noise floor (the spread over trials, i.e. seeds, of the dense network's "
             "barrier or accuracy) is never called consistent.", "",
             f"**{verdict_headline(judged)}.**", "", claims_markdown(judged).rstrip()]
    lines += ["", f"## Instability (error barrier, percentage points; stable below {100 * threshold:g})", "",
              "| kind | k | weights remaining | trials | barrier mean [min, max] | error of the copies (%) |",
              "| --- | ---: | ---: | ---: | --- | ---: |"]
    for entry in table:
        error = ends.get((entry["control"], entry["k"], entry["round"]))
        lines.append(f"| {entry['control']} | {entry['k']:,} | {entry['density']:.1%} | {entry['trials']} | "
                     f"{100 * entry['barrier_mean']:.2f} [{100 * entry['barrier_min']:.2f}, "
                     f"{100 * entry['barrier_max']:.2f}] | {100 * error:.2f} |")
    if retraining:
        lines += ["", f"## Retraining (k = {retraining[0]['k']:,}; final test accuracy, %)", "",
                  "| method | round | weights remaining | trials | mean [min, max] |", "| --- | ---: | ---: | ---: | --- |"]
        for entry in retraining_table(retraining):
            lines.append(f"| {entry['method']} | {entry['round']} | {entry['density']:.1%} | {entry['trials']} | "
                         f"{100 * entry['mean']:.2f} [{100 * entry['min']:.2f}, {100 * entry['max']:.2f}] |")
    retraining_files = "`retraining.csv`, `retraining_vs_density.png`, " if retraining else \
        "`retraining.csv` (empty: no retraining in this run), "
    lines += ["", "Files: `stability.csv` (one row per k, sparsity, control, trial and α), `claims.csv` (the claims "
              f"above, one row each), {retraining_files}`instability_vs_k.png`, `error_along_path.png`, "
              "`run_info.json`.", ""]
    return "\n".join(lines)


def write_report(folder) -> Path:
    """Rewrite ``folder/README.md`` and ``folder/claims.csv`` from its ``stability.csv``, ``retraining.csv`` and
    ``run_info.json``.

    Raises:
        LthkitError: the folder holds no ``stability.csv``, or a file is malformed.
    """
    from ..core.files import atomic_write_files, with_kept_notes
    from ..reporting.provenance import read_run_info

    folder = Path(folder)
    rows = read_rows(folder / "stability.csv")
    retraining = read_rows(folder / "retraining.csv") if (folder / "retraining.csv").is_file() else []
    info = read_run_info(folder / "run_info.json", "stability")
    readme = folder / "README.md"
    atomic_write_files({readme: with_kept_notes(readme, report_text(rows, retraining, info)).encode(),
                        folder / "claims.csv": claims_csv_text(
                            stability_claims(rows, retraining, info.get("protocol") or "adam")).encode()})
    return readme


#: This study, as the registry (lthkit.studies.STUDIES) and the report command see it.
STUDY = Study("stability", "instability analysis against k, and three ways to retrain after pruning",
              "python -m lthkit stability", "stability.csv", "k", read_rows, write_report)
