"""lthkit.core.train: masks hold through every optimizer step, early stopping, determinism."""

import math

import pytest
import torch
import torch.nn.functional as F

from lthkit.core.masks import full_masks, magnitude_masks, prunable_weights
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig, evaluate, train
from lthkit.errors import LthkitError

FAST = dict(iterations=120, eval_every=20, batch_size=32)


def half_masks(model):
    return magnitude_masks(prunable_weights(model), full_masks(model), 0.5, scope="layer")


@pytest.mark.parametrize("optimizer,extra", [("adam", {}), ("adam", {"weight_decay": 0.01}),
                                             ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01})])
def test_pruned_weights_stay_exactly_zero(tiny_data, optimizer, extra):
    model = build_model("lenet300_100", seed=0)
    masks = half_masks(model)
    config = TrainConfig(optimizer=optimizer, **{**FAST, **extra})
    train(model, tiny_data, config, masks=masks, progress=False)
    parameters = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.count_nonzero(parameters[name][~mask]) == 0, name
        assert torch.count_nonzero(parameters[name][mask]) == mask.sum(), "a survivor is exactly zero"


def test_optimizer_state_never_sees_pruned_weights(tiny_data, monkeypatch):
    """Adam's moments of pruned weights stay zero, so no stale state can push them later."""
    import lthkit.core.train as train_module

    captured = {}
    real = train_module.make_optimizer

    def spy(model, config):
        captured["optimizer"] = real(model, config)
        return captured["optimizer"]

    monkeypatch.setattr(train_module, "make_optimizer", spy)
    model = build_model("lenet300_100", seed=0)
    masks = half_masks(model)
    train(model, tiny_data, TrainConfig(**FAST), masks=masks, progress=False)
    state = captured["optimizer"].state[model.fc1.weight]
    assert torch.count_nonzero(state["exp_avg"][~masks["fc1.weight"]]) == 0
    assert torch.count_nonzero(state["exp_avg_sq"][~masks["fc1.weight"]]) == 0


def test_negative_survivors_still_learn(tiny_data):
    """No sign bug: zeroing gradients where w < eps would freeze every negative weight."""
    model = build_model("lenet300_100", seed=0)
    masks = half_masks(model)
    before = model.fc1.weight.detach().clone()
    # Only a weight whose hidden unit fires on some training image, on a pixel that is lit in some
    # image, gets a gradient at all (with [0, 1] pixels more units start dead), whatever its sign.
    pixels = tiny_data.train_x.flatten(1)
    fires = (pixels @ (before * masks["fc1.weight"]).T + model.fc1.bias.detach() > 0).any(0)
    reachable = fires[:, None] & pixels.ne(0).any(0)[None, :]
    train(model, tiny_data, TrainConfig(**FAST), masks=masks, progress=False)
    negative = (before < 0) & masks["fc1.weight"] & reachable
    moved = (model.fc1.weight.detach() != before) & negative
    assert moved.sum() > 0.9 * negative.sum()


def test_training_learns_and_records_early_stopping(tiny_data):
    model = build_model("lenet300_100", seed=0)
    result = train(model, tiny_data, TrainConfig(**FAST), progress=False)
    curve = result.curve
    assert curve["iteration"] == [0, 20, 40, 60, 80, 100, 120]
    best = min(range(len(curve["val_loss"])), key=lambda i: curve["val_loss"][i])
    assert result.early_stop_iteration == curve["iteration"][best]
    assert result.val_acc_early_stop == curve["val_acc"][best]
    assert result.val_acc_final == curve["val_acc"][-1]
    assert result.test_acc_final > 0.5 and result.train_acc_final > 0.5  # chance is 0.1
    assert result.iterations == 120 and not result.stopped_by_patience


def test_test_accuracy_at_early_stop_is_the_early_stop_models(tiny_data):
    """Snapshot-at-best (the default) gives exactly the numbers of evaluating test every time."""
    lazy = train(build_model("lenet300_100", seed=0), tiny_data, TrainConfig(**FAST), progress=False)
    eager = train(build_model("lenet300_100", seed=0), tiny_data, TrainConfig(**FAST, test_every_eval=True),
                  progress=False)
    assert lazy.early_stop_iteration == eager.early_stop_iteration
    assert lazy.test_acc_early_stop == eager.test_acc_early_stop
    best = eager.curve["iteration"].index(eager.early_stop_iteration)
    assert eager.test_acc_early_stop == eager.curve["test_acc"][best]
    assert all(t is None for t in lazy.curve["test_acc"])


def test_deterministic_for_a_seed(tiny_data):
    runs = [train(build_model("lenet300_100", seed=0), tiny_data, TrainConfig(**FAST), masks=None, seed=s,
                  progress=False) for s in (3, 3, 4)]
    assert runs[0].curve == runs[1].curve
    assert runs[0].curve != runs[2].curve


def test_snapshot_equals_training_to_that_iteration(tiny_data):
    model = build_model("lenet300_100", seed=0)
    result = train(model, tiny_data, TrainConfig(**FAST), snapshot_at={0, 40}, progress=False)
    short = build_model("lenet300_100", seed=0)
    train(short, tiny_data, TrainConfig(**{**FAST, "iterations": 40}), progress=False)
    assert set(result.snapshots) == {0, 40}
    for key, value in short.state_dict().items():
        assert torch.equal(result.snapshots[40][key], value), key
    assert torch.equal(result.snapshots[0]["fc1.weight"], build_model("lenet300_100", seed=0).fc1.weight)


def test_start_iteration_counts_on_the_same_scale(tiny_data):
    result = train(build_model("lenet300_100", seed=0), tiny_data, TrainConfig(**FAST), start_iteration=40,
                   progress=False)
    assert result.curve["iteration"][0] == 40 and result.iterations == 120
    with pytest.raises(LthkitError, match="outside the training budget"):
        train(build_model("lenet300_100"), tiny_data, TrainConfig(**FAST), start_iteration=120, progress=False)


def test_patience_stops_a_run(tiny_data):
    config = TrainConfig(iterations=2000, eval_every=10, batch_size=32, lr=0.05, patience=30)
    result = train(build_model("lenet300_100", seed=0), tiny_data, config, progress=False)
    assert result.stopped_by_patience and result.iterations < 2000
    assert result.iterations - result.early_stop_iteration >= 30


def test_evaluate_counts_every_example(tiny_data):
    model = build_model("lenet300_100", seed=0)
    x, y = tiny_data.test_x, tiny_data.test_y  # 250 examples: not a multiple of the chunk
    loss, accuracy = evaluate(model, x, y, chunk=100)
    with torch.no_grad():
        logits = model(x)
    assert accuracy.item() == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)


def test_epoch_budget(tiny_data):
    config = TrainConfig(iterations=None, epochs=1.5, batch_size=100, eval_every=5)
    assert config.total_iterations(len(tiny_data.train_y)) == 9
    assert train(build_model("lenet300_100"), tiny_data, config, progress=False).iterations == 9


@pytest.mark.parametrize("bad", [dict(optimizer="rmsprop"), dict(lr=0), dict(lr=math.nan), dict(iterations=0),
                                 dict(iterations=None), dict(epochs=2.0), dict(batch_size=0), dict(eval_every=0),
                                 dict(patience=0), dict(momentum=-1.0)])
def test_bad_train_configs(bad):
    with pytest.raises(LthkitError):
        TrainConfig(**bad)


def test_masks_must_fit_the_model(tiny_data):
    model = build_model("lenet300_100")
    masks = full_masks(build_model("conv2_small"))
    with pytest.raises(LthkitError):
        train(model, tiny_data, TrainConfig(**FAST), masks=masks, progress=False)


def plain_training_loop(model, data, config, masks, seed):
    """The textbook masked loop: zero_grad, backward, mask gradients, optimizer.step(), mask weights."""
    from lthkit.core.data import batches
    from lthkit.core.train import make_optimizer

    parameters = dict(model.named_parameters())
    masked = [parameters[name] for name in masks]
    values = [mask.float() for mask in masks.values()]
    with torch.no_grad():
        torch._foreach_mul_(masked, values)
    optimizer = make_optimizer(model, config)
    order = batches(len(data.train_y), config.batch_size, torch.Generator().manual_seed(seed))
    for _ in range(config.iterations):
        index = next(order)
        loss = F.cross_entropy(model(data.train_x[index]), data.train_y[index])
        optimizer.zero_grad()
        loss.backward()
        torch._foreach_mul_([p.grad for p in masked], values)
        optimizer.step()
        with torch.no_grad():
            torch._foreach_mul_(masked, values)


@pytest.mark.parametrize("optimizer,extra", [("adam", {}), ("adam", {"weight_decay": 0.01}),
                                             ("sgd", {"lr": 0.05, "momentum": 0.9})])
def test_fast_step_is_bit_for_bit_the_plain_loop(tiny_data, optimizer, extra):
    """MaskedStep's direct fused-Adam call and released gradients change no bit of the result."""
    config = TrainConfig(optimizer=optimizer, **{**FAST, "eval_every": 1000, **extra})
    fast, plain = build_model("lenet300_100", seed=0), build_model("lenet300_100", seed=0)
    masks = half_masks(fast)
    train(fast, tiny_data, config, masks=masks, seed=7, progress=False)
    plain_training_loop(plain, tiny_data, config, masks, seed=7)
    for name, value in plain.state_dict().items():
        assert torch.equal(fast.state_dict()[name], value), name


def test_no_host_synchronization_per_step(tiny_data, monkeypatch):
    """Numbers reach the host once per evaluation point, never per training step."""
    syncs = []
    for method in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        real = getattr(torch.Tensor, method)

        def counting(self, *args, _real=real, _name=method, **kwargs):
            syncs.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counting)

    def count(iterations):
        syncs.clear()
        config = TrainConfig(iterations=iterations, eval_every=iterations // 2, batch_size=32)
        model = build_model("lenet300_100", seed=0)
        masks = half_masks(model)
        syncs.clear()
        train(model, tiny_data, config, masks=masks, progress=False)
        return len(syncs)

    short, long = count(20), count(200)
    assert short == long, f"host synchronizations grow with the number of steps: {short} vs {long}"
    assert long <= 3 + 3  # one per evaluation point (0, middle, end) and the three final numbers


def test_no_model_or_optimizer_of_an_earlier_round_stays_alive(tiny_data):
    """Memory stays flat across IMP rounds: each round's network and optimizer are freed."""
    import gc

    from lthkit.core.models import LeNet300100
    from lthkit.imp.config import LotteryConfig
    from lthkit.imp.driver import run_lottery

    def alive():
        gc.collect()
        objects = gc.get_objects()
        return (sum(type(o) is LeNet300100 for o in objects),
                sum(issubclass(type(o), torch.optim.Optimizer) for o in objects))

    before = alive()
    counts = []
    config = LotteryConfig(rounds=2, train=TrainConfig(iterations=20, eval_every=10, batch_size=32))
    run_lottery(config, tiny_data, progress=False, on_round=lambda result: counts.append(alive()))
    assert counts == [before] * 3, f"live (networks, optimizers) after each round: {counts}, before: {before}"


def test_handwritten_pass_only_for_a_plain_lenet(tiny_data):
    """LeNetPass replaces autograd only where nothing could notice: hooks and other models keep autograd."""
    from lthkit.core.fastpath import LeNetPass
    from lthkit.core.masks import to_torch_prune

    model = build_model("lenet300_100", seed=0)
    assert LeNetPass.supports(model)
    assert not LeNetPass.supports(build_model("conv2_small"))
    assert not LeNetPass.supports(to_torch_prune(build_model("lenet300_100"), full_masks(model)))
    seen = []
    model.fc2.register_forward_hook(lambda module, inputs, output: seen.append(output.shape[0]))
    assert not LeNetPass.supports(model)
    train(model, tiny_data, TrainConfig(**FAST), progress=False)
    assert len(seen) > FAST["iterations"], "a hooked model must train through its own forward"
