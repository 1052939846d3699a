"""lthkit.core.fastpath: the switch, the torch-version fallback, and bit-for-bit equality with the public APIs."""

import pytest
import torch
import torch.nn.functional as F

import lthkit.core.fastpath as fastpath
from lthkit.core.masks import full_masks
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig, make_optimizer, train


def half_masks(model):
    masks = full_masks(model)
    generator = torch.Generator().manual_seed(3)
    return {name: torch.rand(mask.shape, generator=generator) < 0.5 for name, mask in masks.items()}


def test_only_tested_torch_versions_take_the_fast_path():
    assert fastpath.is_tested_torch("2.13.0+cu130") and fastpath.is_tested_torch("2.13.1")
    assert not fastpath.is_tested_torch("2.14.0") and not fastpath.is_tested_torch("2.2.0")
    assert fastpath.ENABLED == fastpath.is_tested_torch(torch.__version__)  # LTHKIT_FASTPATH is unset in the tests


@pytest.mark.parametrize("extra", [{}, {"weight_decay": 0.01}, {"test_every_eval": True, "patience": 40}])
def test_training_is_bit_for_bit_the_same_with_the_switch_off(tiny_data, monkeypatch, extra):
    config = TrainConfig(iterations=60, eval_every=20, batch_size=32, **extra)
    results, states = [], []
    for enabled in (True, False):
        monkeypatch.setattr(fastpath, "ENABLED", enabled)
        model = build_model("lenet300_100", seed=0)
        results.append(train(model, tiny_data, config, masks=half_masks(model), seed=5, progress=False).to_dict())
        states.append(model.state_dict())
        results[-1].pop("seconds")
    assert results[0] == results[1]
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])


def test_off_means_public_apis_only(monkeypatch):
    model = build_model("lenet300_100", seed=0)
    optimizer = make_optimizer(model, TrainConfig())
    F.cross_entropy(model(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    optimizer.step()
    assert fastpath.lenet_pass(model) is not None and fastpath.fused_adam_step(optimizer) is not None
    monkeypatch.setattr(fastpath, "ENABLED", False)
    assert fastpath.lenet_pass(model) is None and fastpath.fused_adam_step(optimizer) is None


def test_lenet_pass_gives_autograds_gradients_bit_for_bit():
    images, labels = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 10
    by_hand, by_autograd = build_model("lenet300_100", seed=1), build_model("lenet300_100", seed=1)
    loss = fastpath.LeNetPass(by_hand)(images, labels)
    reference = F.cross_entropy(by_autograd(images), labels)
    reference.backward()
    assert torch.equal(loss, reference.detach())
    for (name, a), b in zip(by_hand.named_parameters(), by_autograd.parameters()):
        assert torch.equal(a.grad, b.grad), name


def test_fused_adam_step_is_adam_step_bit_for_bit():
    direct_model, plain_model = build_model("lenet300_100", seed=2), build_model("lenet300_100", seed=2)
    config = TrainConfig(weight_decay=0.001)
    direct_opt, plain_opt = make_optimizer(direct_model, config), make_optimizer(plain_model, config)
    assert fastpath.FusedAdamStep.of(direct_opt) is None  # no optimizer state before the first step
    direct = None
    for step in range(4):
        images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(step))
        labels = torch.arange(8)
        for model in (direct_model, plain_model):
            model.zero_grad()
            F.cross_entropy(model(images), labels).backward()
        plain_opt.step()
        if direct is None:
            direct_opt.step()
            direct = fastpath.FusedAdamStep.of(direct_opt)
        else:
            params = list(direct_model.parameters())
            direct(params, [p.grad for p in params])
    for a, b in zip(direct_model.parameters(), plain_model.parameters()):
        assert torch.equal(a, b)


def test_created_state_is_adams_first_step_state_and_steps_bit_for_bit():
    direct_model, plain_model = build_model("lenet300_100", seed=2), build_model("lenet300_100", seed=2)
    config = TrainConfig(weight_decay=0.001)
    direct_opt, plain_opt = make_optimizer(direct_model, config), make_optimizer(plain_model, config)
    direct = fastpath.fused_adam_step(direct_opt, create_state=True)  # before any step: even the first is direct
    assert direct is not None
    assert not fastpath.FusedAdamStep.create_state(direct_opt)  # the state exists now: left alone
    for step in range(3):
        images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(step))
        labels = torch.arange(8)
        for model in (direct_model, plain_model):
            model.zero_grad()
            F.cross_entropy(model(images), labels).backward()
        plain_opt.step()
        params = list(direct_model.parameters())
        direct(params, [p.grad for p in params])
        for p, q in zip(direct_opt.param_groups[0]["params"], plain_opt.param_groups[0]["params"]):
            for key in ("step", "exp_avg", "exp_avg_sq"):  # torch's own state, value, dtype and device alike
                mine, torchs = direct_opt.state[p][key], plain_opt.state[q][key]
                assert torch.equal(mine, torchs) and mine.dtype == torchs.dtype and mine.device == torchs.device
    for a, b in zip(direct_model.parameters(), plain_model.parameters()):
        assert torch.equal(a, b)
    sgd = torch.optim.SGD(build_model("lenet300_100", seed=0).parameters(), lr=0.1)
    assert not fastpath.FusedAdamStep.create_state(sgd) and not sgd.state


def test_training_never_imports_dynamo_and_leaves_torch_as_it_was():
    """torch._dynamo costs about a second of start-up; lthkit's training path must not import it."""
    if not fastpath.ENABLED:
        pytest.skip("the fast path is off for this torch version: the first step is optimizer.step()")
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys\n"
        "sys.path.insert(0, 'tests')\n"
        "import torch\n"
        "from conftest import make_tiny_data\n"
        "from lthkit.core.models import build_model\n"
        "from lthkit.core.train import TrainConfig, train\n"
        "train(build_model('lenet300_100', seed=0), make_tiny_data(), TrainConfig(iterations=20, eval_every=10,"
        " batch_size=32), seed=0, progress=False)\n"
        "wrapped = torch.optim.Optimizer.add_param_group.__wrapped__\n"
        "print('torch._dynamo' in sys.modules, hasattr(wrapped, '__dynamo_disable'))\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.split() == ["False", "False"]
