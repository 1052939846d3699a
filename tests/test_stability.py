"""lthkit.studies.stability: the linear path, the error barrier, the twin runs, and the three retraining branches."""

import pytest
import torch

import lthkit.imp.driver as lottery
from lthkit.core.masks import full_masks, magnitude_masks, prunable_weights
from lthkit.core.models import build_model
from lthkit.core.paths import alpha_grid, error_barrier, interpolate, is_stable, path_errors
from lthkit.core.train import TrainConfig
from lthkit.errors import LthkitError
from lthkit.imp.branches import BRANCHES
from lthkit.imp.branches.retraining import RETRAINING, final_rate_config
from lthkit.imp.branches.twins import TWINS, twin_seed
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lotteries
from lthkit.runs.cache import DiskStore, cache_entry
from lthkit.studies.stability import STABILITY_COLUMNS, read_rows, run_retraining, run_stability, stability_pairs

T, K = 40, 20
BASE = LotteryConfig(rounds=2, prune_rate=0.5, rewind="iteration", rewind_iteration=K,
                     train=TrainConfig(iterations=T, eval_every=20, batch_size=32, lr_milestones=(30,)))


def two_states(seed=0):
    a, b = build_model("lenet300_100", seed=seed), build_model("lenet300_100", seed=seed + 1)
    masks = magnitude_masks(prunable_weights(a), full_masks(a), 0.5)
    return a.state_dict(), b.state_dict(), masks


def copies(state):
    return {name: tensor.clone() for name, tensor in state.items()}


# --- the path ------------------------------------------------------------------------------------

def test_alpha_grid_has_21_evenly_spaced_points_with_both_endpoints():
    grid = alpha_grid()
    assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 1.0
    assert all(abs((b - a) - 0.05) < 1e-12 for a, b in zip(grid, grid[1:]))
    with pytest.raises(LthkitError, match="at least 2"):
        alpha_grid(1)


def test_interpolation_matches_torch_lerp_and_returns_the_endpoints_exactly():
    a, b, masks = two_states()
    for alpha in alpha_grid():
        point = interpolate(a, b, alpha, masks)
        for name in a:  # the oracle: plain torch.lerp over the state dicts, masked
            expected = torch.lerp(a[name], b[name], alpha)
            if name in masks:
                expected = expected * masks[name]
            assert torch.allclose(point[name], expected, atol=1e-7), (alpha, name)
    start, end = interpolate(a, b, 0.0, masks), interpolate(a, b, 1.0, masks)
    for name in a:
        m = masks.get(name, torch.ones_like(a[name], dtype=torch.bool))
        assert torch.equal(start[name], a[name] * m) and torch.equal(end[name], b[name] * m)
    dense_start = interpolate(a, b, 0, None)
    assert all(torch.equal(dense_start[name], a[name]) for name in a)
    assert torch.equal(interpolate(a, b, 0.5)["fc1.bias"], (a["fc1.bias"] + b["fc1.bias"]) / 2)  # biases too


def test_pruned_weights_stay_zero_at_every_alpha_and_the_inputs_are_unchanged():
    a, b, masks = two_states()  # neither state is zero at the pruned positions
    kept_a, kept_b, kept_masks = copies(a), copies(b), copies(masks)
    for alpha in alpha_grid():
        point = interpolate(a, b, alpha, masks)
        for name, mask in masks.items():
            assert torch.all(point[name][~mask] == 0), (alpha, name)
    assert all(torch.equal(a[n], kept_a[n]) and torch.equal(b[n], kept_b[n]) for n in a)
    assert all(torch.equal(masks[n], kept_masks[n]) for n in masks)


def test_interpolate_refuses_mismatched_states_and_bad_alphas():
    a, b, _ = two_states()
    with pytest.raises(LthkitError, match="alpha must be a number in"):
        interpolate(a, b, 1.5)
    with pytest.raises(LthkitError, match="name different tensors"):
        interpolate(a, {k: v for k, v in b.items() if k != "fc1.bias"}, 0.5)


def test_error_barrier_is_max_minus_the_mean_of_the_endpoints():
    assert error_barrier([0.1] * 21) == 0.0
    assert error_barrier([0.02, 0.2, 0.04]) == pytest.approx(0.2 - 0.03)
    assert error_barrier([0.02, 0.03, 0.06]) == pytest.approx(0.06 - 0.04)  # not against the min endpoint
    assert is_stable(0.019) and not is_stable(0.02) and is_stable(0.03, threshold=0.05)
    with pytest.raises(LthkitError):
        error_barrier([0.1])


def test_the_path_of_a_network_with_itself_is_flat(tiny_data):
    model = build_model("lenet300_100", seed=3)
    state = model.state_dict()
    errors = path_errors(model, state, state, tiny_data.test_x, tiny_data.test_y, alphas=alpha_grid(5))
    assert len(set(errors)) == 1 and error_barrier(errors) == 0.0


# --- the twins ----------------------------------------------------------------------------------

def test_twins_are_registered_for_each_control():
    for control, twin in TWINS.items():
        assert BRANCHES[twin].needs == (control,) and BRANCHES[twin].requires_rewind_point
    assert set(RETRAINING) <= set(BRANCHES)


def test_a_twin_shares_theta_k_and_the_mask_and_differs_only_in_the_data_order(tiny_data, monkeypatch):
    calls = []
    real = lottery.train

    def spy(model, data, train_config, **kwargs):
        calls.append({"start": {k: v.detach().clone() for k, v in model.state_dict().items()},
                      "config": train_config, "seed": kwargs["seed"], "reorder": kwargs.get("reorder"),
                      "start_iteration": kwargs["start_iteration"]})
        return real(model, data, train_config, **kwargs)

    monkeypatch.setattr(lottery, "train", spy)
    stores = [lottery.MemoryStore(), lottery.MemoryStore()]
    ticket, twin = run_lotteries([BASE, BASE.replace(control="ticket_twin")], tiny_data, stores=stores,
                                 progress=False, batch=False)
    # Every round: the same starting weights, mask, config, start and first seed; only the order after k differs.
    assert len(calls) == 2 * (BASE.rounds + 1)
    for round_index in range(BASE.rounds + 1):
        a, b = calls[2 * round_index], calls[2 * round_index + 1]
        assert all(torch.equal(a["start"][n], b["start"][n]) for n in a["start"])
        assert a["config"] == b["config"] and a["seed"] == b["seed"] == BASE.seed
        assert a["start_iteration"] == b["start_iteration"] == (0 if round_index == 0 else K)
        assert a["reorder"] is None and b["reorder"] == (K, twin_seed(BASE.seed)) and twin_seed(0) != 0
        assert all(torch.equal(ticket.masks[round_index][n], twin.masks[round_index][n]) for n in ticket.masks[0])
    theta_k_a, theta_k_b = stores[0].records[0].rewind_state, stores[1].records[0].rewind_state
    assert all(torch.equal(theta_k_a[n], theta_k_b[n]) for n in theta_k_a)  # the same θ_k
    trained_a, trained_b = stores[0].records[1].trained_state, stores[1].records[1].trained_state
    assert not torch.equal(trained_a["fc1.weight"], trained_b["fc1.weight"])  # SGD noise made them differ


def test_run_stability_writes_one_row_per_point_and_its_endpoints_are_the_trained_networks(tiny_data, tmp_path):
    controls = ("ticket", "random_prune", "reinit")
    rows = run_stability(BASE, ks=(0, K), controls=controls, alphas=alpha_grid(5),
                         cache_dir=tmp_path, data=tiny_data, progress=False)
    pairs = stability_pairs(BASE, (0, K), 1, controls)
    assert len(pairs) == 2 * ((BASE.rounds + 1) + 2 * BASE.rounds) and len(rows) == 5 * len(pairs)
    assert set(rows[0]) == set(STABILITY_COLUMNS)
    assert {row["control"] for row in rows} == {"dense", "ticket", "random_prune", "reinit"}
    for pair in pairs:
        path = [row for row in rows if (row["k"], row["control"], row["round"]) == (pair.k, pair.kind, pair.round)]
        accuracies = [DiskStore(cache_entry(c, tmp_path), c).load(pair.round).result.test_acc_final
                      for c in (pair.source, pair.twin)]
        assert path[0]["test_error"] == pytest.approx(1 - accuracies[0], abs=1e-9)
        assert path[-1]["test_error"] == pytest.approx(1 - accuracies[1], abs=1e-9)
        assert path[0]["error_barrier"] == pytest.approx(error_barrier([r["test_error"] for r in path]))
    # What notebook 6 checks through lthkit.course.copies: the copies share θ_k and the mask, and end apart.
    from lthkit.course.copies import same_tensors, the_two_copies

    pair = next(p for p in pairs if (p.k, p.kind, p.round) == (K, "ticket", BASE.rounds))
    two = the_two_copies(pair, cache_dir=tmp_path)
    assert same_tensors(two.a.start, two.b.start) and same_tensors(two.a.mask, two.b.mask)
    assert not same_tensors(two.a.trained, two.b.trained)
    with pytest.raises(LthkitError, match="not in the cache"):
        the_two_copies(pair, cache_dir=tmp_path / "empty")
    # Everything cached: again, without the data, the same rows at once.
    assert run_stability(BASE, ks=(0, K), controls=controls, alphas=alpha_grid(5),
                         cache_dir=tmp_path, data=tiny_data, progress=False) == rows


def test_rows_survive_the_csv(tmp_path):
    from lthkit.core.files import csv_text
    rows = [{"k": 0, "round": 1, "density": 0.5, "control": "ticket", "trial": 0, "alpha": 0.5, "test_error": 0.1,
             "error_barrier": 0.01, "stable": True}]
    (tmp_path / "s.csv").write_text(csv_text(rows, STABILITY_COLUMNS))
    assert read_rows(tmp_path / "s.csv") == rows


# --- the retraining branches ----------------------------------------------------------------------

def test_each_retraining_branch_starts_from_the_state_it_claims(tiny_data, monkeypatch):
    calls = {}
    real = lottery.train

    def spy(model, data, train_config, **kwargs):
        calls.setdefault(kwargs["description"].split()[1], []).append(
            {"start": {k: v.detach().clone() for k, v in model.state_dict().items()}, "config": train_config,
             "start_iteration": kwargs["start_iteration"]})
        return real(model, data, train_config, **kwargs)

    monkeypatch.setattr(lottery, "train", spy)
    results, stores = {}, {}
    for method in RETRAINING:
        calls.clear()
        stores[method] = lottery.MemoryStore()
        config = BASE.replace(control=method)
        (results[method],) = run_lotteries([config], tiny_data, stores=[stores[method]], progress=False, batch=False)
        record0, record1 = stores[method].records[0], stores[method].records[1]
        round1 = calls["1"][0]
        mask = record1.mask
        theta0 = build_model("lenet300_100", seed=0).state_dict()
        if method == "weight_rewind":
            source, expected_config = record0.rewind_state, BASE.train  # θ_k, the schedule replayed from k
            assert not torch.equal(record0.rewind_state["fc1.weight"], theta0["fc1.weight"])
        elif method == "lr_rewind":
            source, expected_config = record0.trained_state, BASE.train  # trained weights, schedule from k
        else:
            source, expected_config = record0.trained_state, final_rate_config(BASE.train, T)
            assert expected_config.lr == pytest.approx(BASE.train.lr * 0.1) and not expected_config.scheduled
        for name, value in source.items():
            expected = value * mask[name] if name in mask else value
            assert torch.equal(round1["start"][name] * (mask[name] if name in mask else 1), expected), (method, name)
        assert round1["config"] == expected_config and round1["start_iteration"] == K  # equal budgets: T − k
        assert all(torch.equal(calls["0"][0]["start"][n], theta0[n]) for n in theta0)  # round 0: dense from θ₀
    # The three share round 0 (the dense network) and its mask of round 1 (the same trained weights ranked).
    for name in results["finetune"].masks[1]:
        assert torch.equal(results["finetune"].masks[1][name], results["lr_rewind"].masks[1][name])
        assert torch.equal(results["finetune"].masks[1][name], results["weight_rewind"].masks[1][name])


def test_retraining_refuses_no_rewind_point_and_run_retraining_gives_rows(tiny_data, tmp_path):
    with pytest.raises(LthkitError, match="needs a rewind point"):
        BASE.replace(control="lr_rewind", rewind="none")
    rows = run_retraining(BASE.replace(rounds=1), K, cache_dir=tmp_path, data=tiny_data, progress=False)
    assert sorted({row["method"] for row in rows}) == sorted(RETRAINING) and len(rows) == 3 * 2


def synthetic_rows(barriers: dict, errors: dict, trials=3, k=0):
    """stability.csv rows: ``barriers[(control, round)]`` and ``errors[(control, round)]`` per pair, with a small
    per-trial wobble; α = 0 and 1 carry the two copies' errors."""
    rows = []
    for (control, round_index), barrier in barriers.items():
        for trial in range(trials):
            wobble = 0.001 * (trial - 1)
            error = errors[(control, round_index)] + wobble
            for alpha, value in ((0.0, error), (0.5, error + barrier + wobble), (1.0, error)):
                rows.append({"k": k, "round": round_index, "density": 0.04 if round_index else 1.0, "control": control,
                             "trial": trial, "alpha": alpha, "test_error": value,
                             "error_barrier": barrier + wobble, "stable": barrier < 0.02})
    return rows


def test_stability_claims_follow_the_paper_when_the_rows_do():
    from lthkit.studies.stability import stability_claims

    rows = synthetic_rows({("dense", 0): 0.003, ("ticket", 3): 0.002, ("random_prune", 3): 0.08},
                          {("dense", 0): 0.020, ("ticket", 3): 0.021, ("random_prune", 3): 0.05})
    verdicts = {item.claim.id: item.verdict for item in stability_claims(rows, protocol="sgd")}
    assert verdicts == {"dense_stable_k0": "consistent", "ticket_stable_k0": "consistent",
                        "ticket_matching_k0": "consistent", "random_unstable_k0": "consistent",
                        "random_not_matching_k0": "consistent", "placebo_copies": "consistent"}


def test_stability_claims_say_inconsistent_when_random_pruning_is_stable_and_the_ticket_not_matching():
    from lthkit.studies.stability import stability_claims

    rows = synthetic_rows({("dense", 0): 0.003, ("ticket", 3): 0.002, ("random_prune", 3): 0.002},
                          {("dense", 0): 0.020, ("ticket", 3): 0.030, ("random_prune", 3): 0.05})
    judged = {item.claim.id: item for item in stability_claims(rows, protocol="adam")}
    assert judged["random_unstable_k0"].verdict == "inconsistent"
    assert judged["ticket_matching_k0"].verdict == "inconsistent"  # 1 point below dense in every trial
    assert "adam protocol" in judged["ticket_stable_k0"].claim.note


def test_write_report_writes_claims_csv_with_three_word_verdicts(tmp_path):
    from lthkit.core.files import csv_text, json_bytes
    from lthkit.reporting.claims import read_claims_csv
    from lthkit.studies.stability import write_report

    rows = synthetic_rows({("dense", 0): 0.003, ("ticket", 3): 0.002, ("random_prune", 3): 0.08},
                          {("dense", 0): 0.020, ("ticket", 3): 0.021, ("random_prune", 3): 0.05})
    (tmp_path / "stability.csv").write_text(csv_text(rows, STABILITY_COLUMNS))
    (tmp_path / "run_info.json").write_bytes(json_bytes({"study": "stability", "protocol": "sgd", "threshold": 0.02}))
    write_report(tmp_path)
    claims = read_claims_csv(tmp_path / "claims.csv")
    assert {row["verdict"] for row in claims} <= {"consistent", "inconclusive", "inconsistent"}
    assert all(row["paper_source"] for row in claims)
    text = (tmp_path / "README.md").read_text()
    assert "protocol: **sgd**" in text and "**matching**" in text and "(of 6 claims)" in text
