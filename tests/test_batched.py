"""lthkit.core.batched and run_lotteries: K runs trained at once equal the K runs trained one by one."""

import copy
import dataclasses
from contextlib import contextmanager

import pytest
import torch
from helpers import strip_seconds
from torch import nn

import lthkit.imp.driver
from lthkit.core.batched import AUTO_BATCH_FROM, stacked_batches, train_batched, use_batched
from lthkit.core.data import batches
from lthkit.core.masks import full_masks, magnitude_masks, prunable_weights, random_masks_like
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig, train
from lthkit.errors import LthkitError
from lthkit.imp.branches import PAPER_CONTROLS as CONTROLS
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lotteries, run_lottery
from lthkit.imp.records import MemoryStore
from lthkit.runs.cache import load_cached
from lthkit.runs.experiments import run_experiment, run_experiments

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SGD = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-3, iterations=60, eval_every=20,
                  batch_size=32)
ADAM = TrainConfig(iterations=40, eval_every=20, batch_size=32)


@contextmanager
def float64(data):
    """Float64 throughout (networks built inside, and ``data``'s images): yields the float64 data.

    With Adam, float32 rounding is amplified by the division by the root of tiny second moments, and
    how much depends on the machine's kernels: after 40 steps, batched and one-by-one runs differed
    by 3e-3 (relative) in validation loss on an AVX-512 Xeon, while in float64 the same comparison
    agrees to 0.0 in the loss and 5e-14 in the weights. Float64 shows the two compute the same thing.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield dataclasses.replace(data, train_x=data.train_x.double(), val_x=data.val_x.double(),
                                  test_x=data.test_x.double())
    finally:
        torch.set_default_dtype(previous)


def mixed_masks(models):
    """Dense, layer-wise magnitude and random masks: each run of a batch has its own."""
    first = models[0]
    choices = [None, magnitude_masks(prunable_weights(first), full_masks(first), 0.5, scope="layer"),
               random_masks_like(magnitude_masks(prunable_weights(first), full_masks(first), 0.8, scope="global"),
                                 torch.Generator().manual_seed(5))]
    return [choices[k % 3] for k in range(len(models))]


def run_both(data, model_name, config, runs=3, **kwargs):
    """(sequential results, sequential models, batched results, batched models, masks)."""
    models = [build_model(model_name, seed=k) for k in range(runs)]
    masks = mixed_masks(models)
    alone = [copy.deepcopy(m) for m in models]
    seeds = [100 + k for k in range(runs)]
    sequential = [train(m, data, config, masks=mask, seed=seed, progress=False, **kwargs)
                  for m, mask, seed in zip(alone, masks, seeds)]
    batched = train_batched(models, data, config, masks=masks, seeds=seeds, progress=False, **kwargs)
    return sequential, alone, batched, models, masks


def assert_same_run(a, b, *, rtol, atol):
    assert a.early_stop_iteration == b.early_stop_iteration
    assert (a.start_iteration, a.iterations, a.stopped_by_patience) == (b.start_iteration, b.iterations,
                                                                       b.stopped_by_patience)
    assert a.curve["iteration"] == b.curve["iteration"]
    for key in ("val_loss", "val_acc"):
        assert a.curve[key] == pytest.approx(b.curve[key], rel=rtol, abs=atol), key
    assert a.curve["train_loss"][1:] == pytest.approx(b.curve["train_loss"][1:], rel=rtol, abs=atol)
    for key in ("val_acc_early_stop", "test_acc_early_stop", "test_acc_final", "train_acc_final"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=0.01), key


def assert_masks_hold(model, masks):
    parameters = dict(model.named_parameters())
    for name, mask in (masks or {}).items():
        assert torch.count_nonzero(parameters[name][~mask.to(parameters[name].device)]) == 0, name


def test_stacked_batches_are_each_runs_own_batches():
    seeds = (3, 4, 5)
    stacked = stacked_batches(70, 32, [torch.Generator().manual_seed(s) for s in seeds])
    alone = [batches(70, 32, torch.Generator().manual_seed(s)) for s in seeds]
    for _ in range(7):  # three epochs of 32, 32, 6: the short last batch included
        rows = next(stacked)
        for row, stream in zip(rows, alone):
            assert torch.equal(row, next(stream))


@pytest.mark.parametrize("device", DEVICES)
def test_batched_sgd_equals_sequential(tiny_data, device):
    """SGD is linear in the gradient: batched and sequential runs agree to float rounding."""
    data = tiny_data.to(device)
    sequential, alone, batched, models, masks = run_both(data, "lenet300_100", SGD)
    for a, b, m_a, m_b, mask in zip(sequential, batched, alone, models, masks):
        assert_same_run(a, b, rtol=1e-4, atol=1e-6)
        for name, value in m_a.state_dict().items():
            assert torch.allclose(value, m_b.state_dict()[name], rtol=1e-4, atol=1e-5), name
        assert_masks_hold(m_b, mask)


SHORT_ADAM = dataclasses.replace(ADAM, iterations=20, eval_every=10)


@pytest.mark.parametrize("model_name,config", [("lenet300_100", ADAM), ("conv2_small", SHORT_ADAM)])
def test_batched_adam_equals_sequential(tiny_data, model_name, config):
    with float64(tiny_data) as data:  # Adam magnifies float32 rounding by a machine-dependent amount
        sequential, alone, batched, models, masks = run_both(data, model_name, config)
    for a, b, m_a, m_b, mask in zip(sequential, batched, alone, models, masks):
        assert_same_run(a, b, rtol=1e-9, atol=1e-12)
        for name, value in m_a.state_dict().items():
            assert value.dtype == torch.float64
            assert torch.allclose(value, m_b.state_dict()[name], rtol=1e-9, atol=1e-11), name
        assert_masks_hold(m_b, mask)
        if mask is not None:  # survivors are alive: masking did not zero them too
            weight = dict(m_b.named_parameters())[next(iter(mask))]
            assert torch.count_nonzero(weight) == mask[next(iter(mask))].sum()


def test_batched_start_iteration_snapshots_and_test_curve(tiny_data):
    config = TrainConfig(optimizer="sgd", lr=0.05, iterations=60, eval_every=20, batch_size=32, test_every_eval=True)
    sequential, _, batched, _, _ = run_both(tiny_data, "lenet300_100", config, start_iteration=20,
                                            snapshot_at={20, 40})
    for a, b in zip(sequential, batched):
        assert_same_run(a, b, rtol=1e-4, atol=1e-6)
        assert a.curve["test_acc"] == pytest.approx(b.curve["test_acc"], abs=1e-9)
        assert set(b.snapshots) == {20, 40}
        for iteration in (20, 40):
            for name, value in a.snapshots[iteration].items():
                assert torch.allclose(value, b.snapshots[iteration][name], rtol=1e-4, atol=1e-5), name


def test_batched_runs_stop_by_patience_on_their_own(tiny_data):
    # Validation labels at random: the validation loss is lowest early and then rises, so each
    # run runs out of patience, at its own iteration.
    noise = torch.randint(0, 10, tiny_data.val_y.shape, generator=torch.Generator().manual_seed(0))
    data = dataclasses.replace(tiny_data, val_y=noise)
    config = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, iterations=300, eval_every=10, batch_size=32,
                         patience=40)
    sequential, alone, batched, models, _ = run_both(data, "lenet300_100", config, runs=3)
    assert all(r.stopped_by_patience for r in sequential)
    assert len({r.iterations for r in sequential}) > 1, "the runs should stop at different iterations"
    for a, b, m_a, m_b in zip(sequential, batched, alone, models):
        assert_same_run(a, b, rtol=1e-4, atol=1e-6)
        for name, value in m_a.state_dict().items():  # the weights of where it stopped, not of the batch's end
            assert torch.allclose(value, m_b.state_dict()[name], rtol=1e-4, atol=1e-5), name


class MixesExamples(nn.Module):
    """Subtracts the batch mean: its output for one example depends on the others."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        h = self.fc(x.flatten(1))
        return h - h.mean(0)


class WithNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        self.norm = nn.BatchNorm1d(10)

    def forward(self, x):
        return self.norm(self.fc(x.flatten(1)))


@pytest.mark.parametrize("make,message", [(MixesExamples, "mixes examples"), (WithNorm, "buffers")])
def test_models_that_cannot_be_batched_are_refused(tiny_data, make, message):
    with pytest.raises(LthkitError, match=message):
        train_batched([make(), make()], tiny_data, ADAM, seeds=[0, 1], progress=False)


def test_bad_batched_arguments(tiny_data):
    models = [build_model("lenet300_100", seed=k) for k in range(2)]
    with pytest.raises(LthkitError, match="one seed and one mask set per model"):
        train_batched(models, tiny_data, ADAM, seeds=[0], progress=False)
    with pytest.raises(LthkitError, match="one architecture"):
        train_batched([models[0], build_model("conv2_small")], tiny_data, ADAM, seeds=[0, 1], progress=False)
    with pytest.raises(LthkitError):
        train_batched(models, tiny_data, ADAM, seeds=[0, 1], masks=[None, full_masks(build_model("conv2_small"))],
                      progress=False)


def test_automatic_choice_depends_only_on_device_and_count():
    assert not use_batched("cpu", 1) and not use_batched("cuda", 1)
    assert use_batched("cuda", AUTO_BATCH_FROM["cuda"])
    cpu_from = AUTO_BATCH_FROM["cpu"]
    assert use_batched("cpu", 64) == (cpu_from is not None and cpu_from <= 64)


LOTTERY = LotteryConfig(rounds=2, train=TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, iterations=40,
                                                    eval_every=20, batch_size=32))


def test_run_lotteries_unbatched_is_exactly_run_lottery(tiny_data):
    configs = [LOTTERY.replace(seed=seed, control=control) for seed in (0, 1) for control in CONTROLS]
    together = run_lotteries(configs, tiny_data, batch=False, progress=False)
    tickets = {}
    for config, result in zip(configs, together):  # tickets come first in each trial
        alone = run_lottery(config, tiny_data, ticket=tickets.get(config.seed), progress=False)
        tickets.setdefault(config.seed, alone)
        assert strip_seconds(result) == strip_seconds(alone), config.control
        for mask_a, mask_b in zip(result.masks, alone.masks):
            assert all(torch.equal(mask_a[k], mask_b[k]) for k in mask_a)


def test_run_lotteries_batched_matches_and_trains_each_round_once(tiny_data, monkeypatch):
    import lthkit.core.batched as batched_module

    calls = []
    real = batched_module.train_batched

    def spy(models, *args, **kwargs):
        calls.append(len(models))
        return real(models, *args, **kwargs)

    monkeypatch.setattr(batched_module, "train_batched", spy)
    configs = [LOTTERY.replace(seed=seed, control=control) for seed in (0, 1) for control in CONTROLS]
    with float64(tiny_data) as data:  # Adam magnifies float32 rounding by a machine-dependent amount
        batched = run_lotteries(configs, data, batch=True, progress=False)
        sequential = run_lotteries(configs, data, batch=False, progress=False)
    assert calls == [6, 6, 6]  # one batch of all six runs per round
    for a, b in zip(sequential, batched):
        assert a.densities == b.densities
        for round_a, round_b in zip(a.rounds, b.rounds):
            assert_same_run(round_a.train, round_b.train, rtol=1e-9, atol=1e-12)
        # Masks come from trained weights that agree to float64 rounding: identical.
        for mask_a, mask_b in zip(a.masks, b.masks):
            for key in mask_a:
                assert torch.equal(mask_a[key], mask_b[key]), key


def test_run_lotteries_stores_resume_and_controls_find_their_ticket(tiny_data):
    control = LOTTERY.replace(control="reinit", seed=3)
    ticket = run_lottery(LOTTERY.replace(seed=3), tiny_data, progress=False)
    stores = [MemoryStore()]
    (result,) = run_lotteries([control], tiny_data, stores=stores, tickets=[ticket], progress=False)
    assert [m["fc1.weight"].sum() for m in result.masks] == [m["fc1.weight"].sum() for m in ticket.masks]
    (again,) = run_lotteries([control], tiny_data, stores=stores, tickets=[ticket], progress=False)
    assert strip_seconds(again) == strip_seconds(result)
    (alone,) = run_lotteries([control], tiny_data, progress=False)  # the ticket runs alongside
    assert strip_seconds(alone) == strip_seconds(result)
    with pytest.raises(LthkitError, match="same config twice"):
        run_lotteries([control, control], tiny_data, progress=False)


def test_run_experiments_caches_every_run(tiny_data, tmp_path, monkeypatch):
    configs = [LOTTERY.replace(seed=1, control="random_prune"), LOTTERY.replace(seed=2)]
    seen = []
    results = run_experiments(configs, cache_dir=tmp_path, data=tiny_data, progress=False,
                              on_round=lambda config, result: seen.append((config.seed, result.round)))
    assert sorted(seen) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    ticket = load_cached(LOTTERY.replace(seed=1), tmp_path)
    assert ticket is not None, "the control's ticket was not cached"
    assert strip_seconds(run_experiment(configs[0], cache_dir=tmp_path, progress=False)) == strip_seconds(results[0])

    def fail(*args, **kwargs):
        raise AssertionError("a cached run trained again")

    monkeypatch.setattr(lthkit.imp.driver, "train", fail)
    again = run_experiments(configs, cache_dir=tmp_path, progress=False)
    assert [strip_seconds(r) for r in again] == [strip_seconds(r) for r in results]
