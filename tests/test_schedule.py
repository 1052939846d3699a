"""The learning-rate schedule of TrainConfig (step decay, linear warm-up), against torch.optim.lr_scheduler."""

import pytest
import torch

from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig, train
from lthkit.errors import LthkitError
from lthkit.imp.config import LotteryConfig
from lthkit.runs.cache import cache_key
from lthkit.runs.presets import preset


def torch_rates(lr, iterations, *, milestones=(), gamma=0.1, warmup=0):
    """The learning rate of each of ``iterations`` steps, by torch's own schedulers (the oracle)."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    schedulers = []
    if warmup > 1:
        schedulers.append(torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0,
                                                            total_iters=warmup - 1))
    if milestones:
        schedulers.append(torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma))
    chained = torch.optim.lr_scheduler.ChainedScheduler(schedulers) if schedulers else None
    rates = []
    for _ in range(iterations):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if chained is not None:
            chained.step()
    return rates


@pytest.mark.parametrize("milestones,gamma,warmup", [((), 0.1, 0), ((30, 70), 0.1, 0), ((50,), 0.5, 0),
                                                     ((), 0.1, 20), ((40, 80), 0.2, 25), ((10,), 0.1, 30)])
def test_rates_match_torch_schedulers(milestones, gamma, warmup):
    config = TrainConfig(lr=0.05, lr_milestones=milestones, lr_gamma=gamma, warmup_iterations=warmup)
    ours = [config.lr_at(i) for i in range(120)]
    assert ours == pytest.approx(torch_rates(0.05, 120, milestones=milestones, gamma=gamma, warmup=warmup), rel=1e-9)


def test_default_is_constant_and_leaves_every_key_unchanged():
    config = TrainConfig()
    assert not config.scheduled and all(config.lr_at(i) == config.lr for i in (0, 10, 10 ** 6))
    lottery = LotteryConfig()
    assert "lr_milestones" not in lottery.to_dict()["train"]
    assert LotteryConfig.from_dict(lottery.to_dict()) == lottery
    # The preset keys of tests/test_fields.py are unchanged (no new key in the dict) ...
    fast = preset("fast").replace(data={"inputs": "standardized"})
    assert cache_key(fast, code="0.1.0+d1d491984521") == "7e9f4fa85d9f56da41489a9a"
    # ... and a schedule is another config, with another key, that survives the round trip.
    scheduled = lottery.replace(train={"lr_milestones": [200, 100], "warmup_iterations": 5})
    assert scheduled.train.lr_milestones == (100, 200)
    assert scheduled.key() != lottery.key() and LotteryConfig.from_dict(scheduled.to_dict()) == scheduled


@pytest.mark.parametrize("changes,message", [
    ({"lr_milestones": "100"}, "lr_milestones must be a list of positive iterations, got '100'"),
    ({"lr_milestones": (0,)}, "each of lr_milestones must be a positive integer, got 0"),
    ({"lr_milestones": (5, 5)}, "lr_milestones repeats an iteration: [5, 5]"),
    ({"lr_gamma": 0}, "lr_gamma must be a positive number, got 0"),
    ({"warmup_iterations": -1}, "warmup_iterations must be a non-negative integer, got -1"),
])
def test_bad_schedules_are_one_line_errors(changes, message):
    with pytest.raises(LthkitError, match=f"^{message.replace('[', '.').replace(']', '.')}$"):
        TrainConfig(**changes)


def test_training_uses_the_schedule_and_a_rewound_run_replays_it_from_k(tiny_data, monkeypatch):
    """Every optimizer step runs at lr_at(iteration); a run started at k starts at lr_at(k)."""
    import lthkit.core.train as train_module

    config = TrainConfig(optimizer="sgd", lr=0.1, iterations=40, eval_every=20, batch_size=32,
                         lr_milestones=(10, 30), warmup_iterations=4)
    seen = []
    real_set = train_module.MaskedStep.set_lr
    real_call = train_module.MaskedStep.__call__

    def record(self):
        seen.append(self.optimizer.param_groups[0]["lr"])
        return real_call(self)

    monkeypatch.setattr(train_module.MaskedStep, "__call__", record)
    monkeypatch.setattr(train_module.MaskedStep, "set_lr", real_set)
    train(build_model("lenet300_100", seed=0), tiny_data, config, progress=False)
    assert seen == pytest.approx([config.lr_at(i) for i in range(40)])
    seen.clear()
    train(build_model("lenet300_100", seed=0), tiny_data, config, start_iteration=25, progress=False)
    assert seen == pytest.approx([config.lr_at(i) for i in range(25, 40)])
    assert seen[0] == pytest.approx(0.1 * 0.1) and seen[-1] == pytest.approx(0.1 * 0.01)


def test_a_constant_schedule_trains_exactly_as_before(tiny_data):
    """A schedule that never changes the rate (gamma 1) is bit for bit the unscheduled training."""
    plain = TrainConfig(iterations=30, eval_every=10, batch_size=32)
    flat = TrainConfig(iterations=30, eval_every=10, batch_size=32, lr_milestones=(10,), lr_gamma=1.0)
    a, b = build_model("lenet300_100", seed=1), build_model("lenet300_100", seed=1)
    train(a, tiny_data, plain, progress=False)
    train(b, tiny_data, flat, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_fast_path_follows_the_schedule_bit_for_bit(tiny_data, monkeypatch):
    """The direct fused-Adam step caches the rate: set_lr must reach it (else fast and public paths differ)."""
    from lthkit.core import fastpath

    if not fastpath.ENABLED:
        import pytest as _pytest
        _pytest.skip("the fast path is off for this torch version")
    config = TrainConfig(iterations=40, eval_every=20, batch_size=32, lr=0.01, lr_milestones=(10, 25),
                         warmup_iterations=5)
    states = []
    for enabled in (True, False):
        monkeypatch.setattr(fastpath, "ENABLED", enabled)
        model = build_model("lenet300_100", seed=2)
        train(model, tiny_data, config, progress=False)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][n], states[1][n]) for n in states[0])
    unscheduled = build_model("lenet300_100", seed=2)
    train(unscheduled, tiny_data, TrainConfig(iterations=40, eval_every=20, batch_size=32, lr=0.01), progress=False)
    assert not torch.equal(unscheduled.state_dict()["fc1.weight"], states[0]["fc1.weight"])


def test_schedule_flags_reach_the_config_and_are_absent_by_default():
    from lthkit.cli import build_parser
    from lthkit.cli.common import config_from_args

    args = build_parser().parse_args(["run", "--lr-milestone", "200", "--lr-milestone", "100",
                                      "--warmup-iterations", "50", "--lr-gamma", "0.5", "--out", "/tmp/never"])
    train_config = config_from_args(args).train
    assert (train_config.lr_milestones, train_config.lr_gamma, train_config.warmup_iterations) == ((100, 200), 0.5, 50)
    plain = config_from_args(build_parser().parse_args(["run", "--out", "/tmp/never"]))
    assert not plain.train.scheduled and "lr_milestones" not in plain.to_dict()["train"]
