"""lthkit.imp.driver: IMP rounds, every rewind strategy, the two controls, determinism, bad configs."""

import json
import math

import pytest
import torch

from lthkit.core.masks import full_masks, magnitude_masks, surviving_counts
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig
from lthkit.errors import LthkitError
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lottery
from lthkit.imp.records import LotteryResult, MemoryStore

TRAIN = TrainConfig(iterations=60, eval_every=20, batch_size=32)


def config(**changes):
    return LotteryConfig(**{"rounds": 2, "train": TRAIN, **changes})


@pytest.fixture
def start_weights(monkeypatch):
    """Record, for every training call, the weights it starts from and its start iteration."""
    import lthkit.imp.driver as lottery

    calls = []
    real = lottery.train

    def spy(model, data, train_config, **kwargs):
        calls.append({"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                      "start": kwargs.get("start_iteration", 0), "masks": kwargs.get("masks")})
        return real(model, data, train_config, **kwargs)

    monkeypatch.setattr(lottery, "train", spy)
    return calls


def theta0():
    return build_model("lenet300_100", seed=0).state_dict()


def test_masks_come_from_trained_weights_not_theta0(tiny_data):
    store = MemoryStore()
    result = run_lottery(config(rounds=1), tiny_data, store=store, progress=False)
    trained = store.records[0].trained_state
    trained_weights = {k: trained[k] for k in full_masks(build_model())}
    expected = magnitude_masks(trained_weights, full_masks(build_model()), 0.2, scope="layer",
                               layer_rates={"output": 0.1})
    from_theta0 = magnitude_masks({k: theta0()[k] for k in expected}, full_masks(build_model()), 0.2,
                                  scope="layer", layer_rates={"output": 0.1})
    for key in expected:
        assert torch.equal(result.masks[1][key], expected[key]), key
    assert not torch.equal(result.masks[1]["fc1.weight"], from_theta0["fc1.weight"])


def test_rewind_to_init_restores_theta0(tiny_data, start_weights):
    run_lottery(config(), tiny_data, progress=False)
    assert len(start_weights) == 3
    for call in start_weights:
        assert call["start"] == 0
        for key, value in theta0().items():
            assert torch.equal(call["state"][key], value), key


def test_rewind_to_iteration_k_restores_theta_k(tiny_data, start_weights):
    store = MemoryStore()
    run_lottery(config(rewind="iteration", rewind_iteration=20), tiny_data, store=store, progress=False)
    theta_k = store.records[0].rewind_state
    # θ_k is exactly the dense network after k iterations (trained on its own to k).
    from lthkit.core.train import train
    reference = build_model("lenet300_100", seed=0)
    train(reference, tiny_data, TrainConfig(iterations=20, eval_every=20, batch_size=32), progress=False)
    for key, value in reference.state_dict().items():
        assert torch.equal(theta_k[key], value), key
    for call in start_weights[1:]:
        assert call["start"] == 20
        for key in theta_k:
            assert torch.equal(call["state"][key], theta_k[key]), key


def test_late_rewinding_uses_a_fraction_of_the_budget(tiny_data, start_weights):
    run_lottery(config(rewind="fraction", rewind_fraction=0.5), tiny_data, progress=False)
    assert [call["start"] for call in start_weights] == [0, 30, 30]


def test_no_rewind_keeps_trained_weights(tiny_data, start_weights):
    store = MemoryStore()
    run_lottery(config(rewind="none"), tiny_data, store=store, progress=False)
    for round_index in (1, 2):
        previous = store.records[round_index - 1].trained_state
        assert start_weights[round_index]["start"] == 0
        for key in previous:
            assert torch.equal(start_weights[round_index]["state"][key], previous[key]), key


def test_reinit_control_keeps_the_mask_not_theta0(tiny_data, start_weights):
    ticket = run_lottery(config(), tiny_data, progress=False)
    start_weights.clear()
    reinit = run_lottery(config(control="reinit"), tiny_data, ticket=ticket, progress=False)
    for round_index in range(3):
        for key in ticket.masks[round_index]:
            assert torch.equal(reinit.masks[round_index][key], ticket.masks[round_index][key])
        assert not torch.equal(start_weights[round_index]["state"]["fc1.weight"], theta0()["fc1.weight"])
    assert not torch.equal(start_weights[1]["state"]["fc1.weight"], start_weights[2]["state"]["fc1.weight"])


def test_random_prune_control_keeps_per_layer_counts(tiny_data, start_weights):
    ticket = run_lottery(config(), tiny_data, progress=False)
    start_weights.clear()
    random = run_lottery(config(control="random_prune"), tiny_data, ticket=ticket, progress=False)
    for round_index in (1, 2):
        assert surviving_counts(random.masks[round_index]) == surviving_counts(ticket.masks[round_index])
        assert not torch.equal(random.masks[round_index]["fc1.weight"], ticket.masks[round_index]["fc1.weight"])
        assert torch.equal(start_weights[round_index]["state"]["fc1.weight"], theta0()["fc1.weight"])


def test_control_runs_its_ticket_when_none_is_given(tiny_data):
    result = run_lottery(config(rounds=1, control="reinit"), tiny_data, progress=False)
    assert len(result.rounds) == 2


def test_same_seed_same_masks_and_metrics(tiny_data):
    def strip(result):
        rounds = [r.to_dict() for r in result.rounds]
        for r in rounds:
            r["train"].pop("seconds")
        return rounds

    first, again = (run_lottery(config(), tiny_data, progress=False) for _ in range(2))
    other = run_lottery(config(seed=1), tiny_data, progress=False)
    assert strip(first) == strip(again)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first.masks, again.masks) for k in a)
    assert strip(first) != strip(other)


def test_per_layer_density_follows_the_closed_form(tiny_data):
    result = run_lottery(config(rounds=4, train=TrainConfig(iterations=20, eval_every=10, batch_size=32)),
                         tiny_data, progress=False)
    rates = {"fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1}
    for round_result in result.rounds:
        r = round_result.round
        for key, rate in rates.items():
            size = result.masks[0][key].numel()
            assert abs(round_result.layer_density[key] * size - size * (1 - rate) ** r) <= r, (r, key)


def test_target_sparsity_sets_the_per_round_rate(tiny_data):
    cfg = config(rounds=3, target_sparsity=0.875, layer_rates=(), scope="global")
    assert cfg.per_round_rate == pytest.approx(0.5)
    result = run_lottery(cfg, tiny_data, progress=False)
    assert result.densities[-1] == pytest.approx(0.125, abs=1e-4)


@pytest.mark.parametrize("bad,message", [
    (dict(rounds=0), "rounds must be"),
    (dict(prune_rate=1.0), "prune_rate must be in"),
    (dict(prune_rate=math.nan), "prune_rate must be in"),
    (dict(target_sparsity=-0.1), "target_sparsity must be in"),
    (dict(target_sparsity=math.nan), "target_sparsity must be in"),
    (dict(prune_rate=0.2, target_sparsity=0.5), "not both"),
    (dict(rewind="late"), "unknown rewind strategy 'late'"),
    (dict(rewind="iteration", rewind_iteration=60), "past the training budget"),
    (dict(rewind="fraction", rewind_fraction=1.0), "rewind_fraction must be in"),
    (dict(control="lucky"), "unknown control 'lucky'"),
    (dict(scope="block"), "unknown scope"),
    (dict(model="vgg"), "unknown model"),
    (dict(control="random_prune", rewind="none"), "needs a rewind point"),
    (dict(layer_rates=(("output", 1.2),)), "layer rate of output"),
])
def test_bad_configs(bad, message):
    with pytest.raises(LthkitError, match=message):
        config(**bad)


def test_unknown_layer_rate_fails_before_training(tiny_data, start_weights):
    with pytest.raises(LthkitError, match="unknown layer 'fc7'"):
        run_lottery(config(layer_rates=(("fc7", 0.1),)), tiny_data, progress=False)
    assert start_weights == []


def test_rewind_past_an_epoch_budget_is_caught_with_the_data(tiny_data):
    cfg = LotteryConfig(rounds=1, rewind="iteration", rewind_iteration=50,
                        train=TrainConfig(iterations=None, epochs=1, batch_size=32))
    with pytest.raises(LthkitError, match="past the training budget of 19"):
        run_lottery(cfg, tiny_data, progress=False)


def test_control_with_a_mismatched_ticket(tiny_data):
    ticket = run_lottery(config(rounds=1), tiny_data, progress=False)
    with pytest.raises(LthkitError, match="same config"):
        run_lottery(config(rounds=1, control="reinit", seed=5), tiny_data, ticket=ticket, progress=False)


def test_result_save_and_load(tiny_data, tmp_path):
    result = run_lottery(config(rounds=1), tiny_data, progress=False)
    result.save(tmp_path / "run")
    loaded = LotteryResult.load(tmp_path / "run")
    assert loaded.config == result.config
    assert loaded.densities == result.densities and loaded.test_acc_early_stop == result.test_acc_early_stop
    assert all(torch.equal(loaded.final_masks[k], result.final_masks[k]) for k in result.final_masks)
    json.loads((tmp_path / "run" / "result.json").read_text())
    (tmp_path / "run" / "masks.pt").write_bytes(b"not a tensor file")
    with pytest.raises(LthkitError, match="broken result"):
        LotteryResult.load(tmp_path / "run")
    with pytest.raises(LthkitError, match="missing"):
        LotteryResult.load(tmp_path / "nowhere")


def test_config_round_trips_through_json():
    cfg = config(layer_rates={"output": 0.1, "fc1": 0.3}, rewind="fraction", rewind_fraction=0.1)
    assert LotteryConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(LthkitError, match="bad lottery config"):
        LotteryConfig.from_dict({"rounds": 2, "colour": "red"})


def test_patience_never_stops_round_0_before_the_rewind_point(tiny_data, start_weights):
    """Issue 11: patience ending round 0 before iteration k lost θ_k (KeyError on every rerun)."""
    from lthkit.core.train import train

    diverging = TrainConfig(lr=0.1, iterations=80, eval_every=10, batch_size=32, patience=10)
    alone = train(build_model(), tiny_data, diverging, progress=False)
    assert alone.stopped_by_patience and alone.iterations == 10  # the loss rises at once: patience ends it
    held = train(build_model(), tiny_data, diverging, snapshot_at={45}, progress=False)
    assert 45 in held.snapshots and held.iterations >= 50  # on, at least to the first point after k
    assert held.curve["val_loss"][:2] == alone.curve["val_loss"]  # the same run up to where patience ended it

    start_weights.clear()
    result = run_lottery(config(rounds=1, rewind="iteration", rewind_iteration=45, train=diverging), tiny_data,
                         progress=False)
    assert result.rounds[0].train.iterations == held.iterations
    assert [call["start"] for call in start_weights] == [0, 45]
    from lthkit.imp.driver import run_lotteries

    # Patience may end the round at the first evaluation (every 10) at or after k: k = 45 → 50;
    # k = 0.5 × 80 = 40 → 40.
    for rewind, first_after_k in (({"rewind": "iteration", "rewind_iteration": 45}, 50),
                                  ({"rewind": "fraction", "rewind_fraction": 0.5}, 40)):
        configs = [config(rounds=1, train=diverging, control=control, **rewind) for control in ("ticket", "random_prune")]
        batched = run_lotteries(configs, tiny_data, batch=True, progress=False)  # the batched loop: the same rule
        assert all(r.rounds[0].train.iterations >= first_after_k for r in batched), rewind
