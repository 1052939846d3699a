"""lthkit.find_ticket and WinningTicket: IMP on networks the kit has never seen, with the user's own loops.

The oracle for every mask is ``torch.nn.utils.prune`` (global_unstructured / l1_unstructured on the
previous round's trained weights and mask); the oracle for the engine is ``run_lottery`` itself.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

import lthkit
from lthkit.core.enforce import MaskEnforcer
from lthkit.core.models import build_model
from lthkit.core.train import TrainConfig
from lthkit.core.train import train as kit_train
from lthkit.errors import LthkitError
from lthkit.imp.config import LotteryConfig
from lthkit.imp.driver import run_lottery
from lthkit.imp.find import find_ticket, prunable_parameters
from lthkit.imp.records import MemoryStore
from lthkit.imp.ticket import TICKET_FORMAT_VERSION, WinningTicket

REPO = Path(__file__).resolve().parents[1]

# --- networks the kit has never seen -----------------------------------------------------------------


def mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 4))


class ConvBN(nn.Sequential):
    def __init__(self):
        torch.manual_seed(2)
        super().__init__(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32, 4))


class Custom(nn.Module):
    """Its own names: layers in a ModuleDict, a head that is a bare parameter used through F.linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.blocks = nn.ModuleDict({"stem": nn.Linear(64, 20), "middle": nn.Linear(20, 12)})
        self.head_weight = nn.Parameter(torch.randn(4, 12) * 0.3)
        self.head_bias = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        x = torch.relu(self.blocks["stem"](x.flatten(1)))
        x = torch.relu(self.blocks["middle"](x))
        return F.linear(x, self.head_weight, self.head_bias)


CUSTOM_PARAMETERS = ["blocks.stem.weight", "blocks.middle.weight", "head_weight"]


def custom_init(model: Custom) -> None:
    for layer in model.blocks.values():
        layer.reset_parameters()
    with torch.no_grad():
        model.head_weight.normal_(0, 0.3)


def task(count: int = 256, seed: int = 0):
    """Images of 4 learnable classes (8x8)."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(99))
    labels = torch.randint(0, 4, (count,), generator=generator)
    return prototypes[labels] + 0.8 * torch.randn(count, 1, 8, 8, generator=generator), labels


IMAGES, LABELS = task()


def make_train(optimizer: str, steps: int = 12, record=None, weight_decay: float = 0.0):
    """A user's loop: its own optimizer, batch order (seeded, so every call sees the same batches) and loss."""
    def train(model):
        if record is not None:
            record.append({"entry": {k: v.detach().clone() for k, v in model.state_dict().items()}})
        model.train()
        if optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=weight_decay)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=weight_decay)
        generator = torch.Generator().manual_seed(5)
        for _ in range(steps):
            index = torch.randint(0, len(LABELS), (32,), generator=generator)
            loss = F.cross_entropy(model(IMAGES[index]), LABELS[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if record is not None:
            record[-1]["exit"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return train


def accuracy(model) -> float:
    model.eval()
    with torch.no_grad():
        return (model(IMAGES).argmax(1) == LABELS).float().mean().item()


def oracle_mask(model_factory, trained: dict, previous: dict, rate: float, scope: str) -> dict:
    """torch.nn.utils.prune's mask of the next round: the trained weights, the previous mask, ``rate`` of the rest."""
    model = model_factory()
    model.load_state_dict(trained)
    targets = []
    for name, mask in previous.items():
        module_name, _, parameter = name.rpartition(".")
        module = model.get_submodule(module_name)
        prune.custom_from_mask(module, parameter, mask)
        targets.append((module, parameter, name))
    if scope == "global":
        prune.global_unstructured([(m, p) for m, p, _ in targets], pruning_method=prune.L1Unstructured, amount=rate)
    else:
        for module, parameter, _ in targets:
            prune.l1_unstructured(module, parameter, amount=rate)
    return {name: getattr(module, f"{parameter}_mask").bool() for module, parameter, name in targets}


MODELS = {"mlp": (mlp, None, None), "conv_bn": (ConvBN, None, None), "custom": (Custom, CUSTOM_PARAMETERS, custom_init)}


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_every_mask_is_torch_prunes_on_networks_the_kit_has_never_seen(name, optimizer, scope):
    factory, parameters, init = MODELS[name]
    calls = []
    ticket = find_ticket(factory(), make_train("adam" if optimizer == "adam" else "sgd", record=calls),
                         evaluate=accuracy, target_sparsity=0.7, rounds=3, scope=scope, parameters=parameters,
                         init=init, progress=False)
    rate = 1 - (1 - 0.7) ** (1 / 3)
    names = list(ticket.masks)
    in_model_order = [n for n, _ in factory().named_parameters() if n in (parameters or ())]
    assert names == (in_model_order or prunable_parameters(factory()))
    masks = {n: torch.ones_like(ticket.masks[n]) for n in names}
    for round_index in range(1, 4):
        expected = oracle_mask(factory, calls[round_index - 1]["exit"], masks, rate, scope)
        entry = calls[round_index]["entry"]
        for n in names:  # the round starts from θ₀ ⊙ mask (θ₀ has no exact zeros)
            assert torch.equal(entry[n] != 0, expected[n]), (round_index, n)
        masks = expected
    for n in names:
        assert torch.equal(ticket.masks[n], masks[n])
    assert ticket.remaining == sum(int(m.sum()) for m in masks.values())
    assert abs(ticket.sparsity - 0.7) < 0.01
    assert len(ticket.rounds) == 4 and all(isinstance(m, float) for m in ticket.metrics)


def test_find_ticket_with_lthkits_own_loop_gives_run_lotterys_masks_bit_for_bit(tiny_data):
    config = LotteryConfig(rounds=3, train=TrainConfig(iterations=60, eval_every=20, batch_size=32))
    store = MemoryStore()
    kit = run_lottery(config, tiny_data, store=store, progress=False)
    model = build_model(config.model, seed=config.seed)
    ticket = find_ticket(model, lambda m: kit_train(m, tiny_data, config.train, seed=config.seed, progress=False),
                         prune_rate=config.per_round_rate, rounds=config.rounds, scope=config.scope,
                         layer_rates=dict(config.layer_rates), progress=False)
    assert list(ticket.masks) == list(kit.final_masks)
    for name in ticket.masks:
        assert torch.equal(ticket.masks[name], kit.final_masks[name])
    for name, tensor in store.records[config.rounds].trained_state.items():
        assert torch.equal(ticket.trained_weights[name], tensor), name
    assert [r.density for r in ticket.rounds] == kit.densities


def test_rewinding_to_k_captures_the_same_theta_k_as_run_lottery(tiny_data):
    config = LotteryConfig(rounds=1, rewind="iteration", rewind_iteration=25,
                           train=TrainConfig(iterations=60, eval_every=20, batch_size=32))
    store = MemoryStore()
    kit = run_lottery(config, tiny_data, store=store, progress=False)
    ticket = find_ticket(build_model(config.model, seed=0),
                         lambda m: kit_train(m, tiny_data, config.train, seed=0, progress=False),
                         prune_rate=config.per_round_rate, rounds=1, scope="layer", layer_rates={"output": 0.1},
                         rewind=("iteration", 25), progress=False)
    for name, tensor in store.records[0].rewind_state.items():
        assert torch.equal(ticket.rewind_weights[name], tensor), name
    assert all(torch.equal(ticket.masks[n], kit.final_masks[n]) for n in ticket.masks)  # ranked on round 0's weights


def test_rewinding_to_iteration_k_uses_the_real_parameter_after_k_optimizer_steps():
    calls = []
    ticket = find_ticket(ConvBN(), make_train("sgd", steps=12, record=calls), rewind=("iteration", 7),
                         prune_rate=0.5, rounds=2, progress=False)
    # θ_7, measured independently: the same loop, stopped after 7 steps
    reference = ConvBN()
    make_train("sgd", steps=7)(reference)
    theta7 = reference.state_dict()
    assert ticket.settings["rewind_point"] == 7
    for name, tensor in theta7.items():  # parameters and buffers (BatchNorm's running statistics too)
        assert torch.equal(ticket.rewind_weights[name], tensor), name
    for round_index in (1, 2):
        entry = calls[round_index]["entry"]
        mask_of_round = {n: entry[n] != 0 for n in ticket.masks}
        for name, tensor in theta7.items():
            expected = tensor * mask_of_round[name] if name in ticket.masks else tensor
            assert torch.equal(entry[name], expected), (round_index, name)
    # Applied through torch.nn.utils.prune, the rewind lands on the real parameter, weight_orig
    fresh = ticket.apply(ConvBN())
    assert torch.equal(fresh[0].weight_orig, theta7["0.weight"])
    assert torch.equal(fresh[0].weight_mask.bool(), ticket.masks["0.weight"])
    assert torch.equal(fresh[0].weight, theta7["0.weight"] * ticket.masks["0.weight"])
    assert torch.equal(fresh[1].running_mean, theta7["1.running_mean"])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_momentum_and_adam_state_cannot_revive_a_pruned_weight(optimizer):
    model = mlp()
    kind = {"adam": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
            "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01)}[optimizer]
    opt = kind(model.parameters())
    for _ in range(3):  # optimizer state built on the dense network: nonzero moments everywhere
        F.cross_entropy(model(IMAGES[:32]), LABELS[:32]).backward()
        opt.step()
        opt.zero_grad()
    mask = {"1.weight": torch.rand(24, 64, generator=torch.Generator().manual_seed(0)) > 0.5}

    def run(enforced: bool) -> torch.Tensor:
        net = mlp()
        net.load_state_dict(model.state_dict())
        stepper = kind(net.parameters())
        stepper.load_state_dict(opt.state_dict())
        with torch.no_grad():
            net[1].weight.mul_(mask["1.weight"])  # masked in forward only, as other LTH code does
        context = MaskEnforcer(net, mask) if enforced else torch.no_grad()
        with context:
            for _ in range(5):
                with torch.enable_grad():
                    F.cross_entropy(net(IMAGES[:32]), LABELS[:32]).backward()
                stepper.step()
                stepper.zero_grad()
        return net[1].weight.detach()[~mask["1.weight"]]

    assert (run(enforced=False) != 0).any()  # the trap is real: the carried-over state revives them
    assert (run(enforced=True) == 0).all()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pruned_weights_stay_zero_after_every_step_of_a_users_loop(optimizer):
    seen = []

    def train(model):
        pruned = {n: p.detach() == 0 for n, p in model.named_parameters() if n.endswith("weight")}
        opt = (torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=0.1) if optimizer == "adam" else
               torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.1))
        parameters = dict(model.named_parameters())
        for step in range(8):
            F.cross_entropy(model(IMAGES[:64]), LABELS[:64]).backward()
            opt.step()
            opt.zero_grad()
            seen.append(all(bool((parameters[n][zero] == 0).all()) for n, zero in pruned.items()))

    ticket = find_ticket(mlp(), train, prune_rate=0.6, rounds=2, progress=False)
    assert seen and all(seen)
    assert ticket.density < 0.2


def test_controls_train_beside_the_ticket_with_the_same_function():
    calls = []
    ticket = find_ticket(mlp(), make_train("adam", record=calls), evaluate=accuracy, prune_rate=0.5, rounds=2,
                         controls=("reinit", "random_prune"), progress=False)
    assert set(ticket.controls) == {"reinit", "random_prune"}
    assert len(calls) == 3 * 3  # ticket, reinit, random_prune in each of 3 rounds
    ticket_entry, reinit_entry, random_entry = calls[6]["entry"], calls[7]["entry"], calls[8]["entry"]
    for name in ticket.masks:
        ticket_mask = ticket_entry[name] != 0
        assert torch.equal(reinit_entry[name] != 0, ticket_mask)  # the ticket's mask, a fresh initialization
        assert not torch.equal(reinit_entry[name], ticket_entry[name])
        assert int((random_entry[name] != 0).sum()) == int(ticket_mask.sum())  # the ticket's counts, elsewhere
        assert not torch.equal(random_entry[name] != 0, ticket_mask)
    for history in ticket.controls.values():
        assert [r.density for r in history] == [r.density for r in ticket.rounds]


def test_the_custom_network_needs_an_init_for_its_reinit_control():
    with pytest.raises(LthkitError, match="does not re-initialize head_weight"):
        find_ticket(Custom(), make_train("adam"), parameters=CUSTOM_PARAMETERS, controls=("reinit",), progress=False)


def test_find_ticket_leaves_the_users_model_as_it_was():
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ticket = find_ticket(model, make_train("adam"), prune_rate=0.5, rounds=1, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(ticket.rewind_weights[k], before[k]) for k in before)  # θ₀


def test_one_engine_prunes_for_both(tiny_data, monkeypatch):
    from lthkit.imp.branches import paper

    calls = []
    real = paper.prune_survivors
    monkeypatch.setattr(paper, "prune_survivors", lambda inputs: calls.append(inputs.config.control) or real(inputs))
    find_ticket(mlp(), make_train("adam"), rounds=2, progress=False)
    run_lottery(LotteryConfig(rounds=2, train=TrainConfig(iterations=20, eval_every=20, batch_size=32)), tiny_data,
                progress=False)
    assert calls == ["ticket"] * 4


# --- the ticket: properties, apply, files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_ticket() -> WinningTicket:
    return find_ticket(ConvBN(), make_train("adam"), evaluate=accuracy, target_sparsity=0.75, rounds=2,
                       controls=("reinit",), progress=False)


def test_a_ticket_knows_what_it_is(conv_ticket):
    ticket = conv_ticket
    assert ticket.total == 6 * 9 + 8 * 6 * 9 + 4 * 32
    assert ticket.remaining == sum(int(m.sum()) for m in ticket.masks.values())
    assert ticket.density == pytest.approx(ticket.remaining / ticket.total)
    assert ticket.compression_ratio == pytest.approx(ticket.total / ticket.remaining)
    assert ticket.sparsity_history[0] == 0 and ticket.sparsity_history == sorted(ticket.sparsity_history)
    assert ticket.provenance["torch_version"] == torch.__version__
    assert ticket.provenance["lthkit_version"] == lthkit.__version__
    assert ticket.provenance["model_class"].endswith("ConvBN")
    assert len(ticket.structure_hash) == 64 and ticket.settings["target_sparsity"] == 0.75
    assert all(mask.dtype == torch.bool for mask in ticket.masks.values())
    assert "density" in repr(ticket)


def test_apply_permanent_gives_plain_masked_weights_that_reproduce_the_metric(conv_ticket):
    fresh = conv_ticket.apply(ConvBN(), weights="trained", permanent=True)
    assert not hasattr(fresh[0], "weight_orig")
    assert accuracy(fresh) == conv_ticket.metrics[-1]
    for name, mask in conv_ticket.masks.items():
        assert (dict(fresh.named_parameters())[name][~mask] == 0).all()


def test_apply_refuses_another_structure_naming_the_first_difference(conv_ticket):
    other = ConvBN()
    other[4] = nn.Conv2d(6, 9, 3, padding=1)
    with pytest.raises(LthkitError, match=r"4.weight has shape \(8, 6, 3, 3\) in the ticket and \(9, 6, 3, 3\)"):
        conv_ticket.apply(other)
    with pytest.raises(LthkitError, match="0.weight is in the ticket but not in the model"):
        conv_ticket.apply(mlp())
    pruned = ConvBN()
    prune.identity(pruned[0], "weight")
    with pytest.raises(LthkitError, match="torch.nn.utils.prune"):
        conv_ticket.apply(pruned)


def test_save_and_load_in_another_process_bit_for_bit(conv_ticket, tmp_path):
    path = conv_ticket.save(tmp_path / "ticket.safetensors")
    out = tmp_path / "applied.safetensors"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from safetensors.torch import save_file
        from test_find_ticket import ConvBN
        from lthkit import WinningTicket
        ticket = WinningTicket.load({str(path)!r}, model=ConvBN())
        rewound = ticket.apply(ConvBN())
        trained = ticket.apply(ConvBN(), weights="trained", permanent=True)
        tensors = {{"rewound/" + k: v for k, v in rewound.state_dict().items()}}
        tensors.update({{"trained/" + k: v for k, v in trained.state_dict().items()}})
        tensors.update({{"mask/" + k: v for k, v in ticket.masks.items()}})
        save_file({{k: v.contiguous() for k, v in tensors.items()}}, {str(out)!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, env={**__import__("os").environ,
                                                                             "PYTHONPATH": str(REPO)})
    from safetensors.torch import load_file

    seen = load_file(out)
    for name, mask in conv_ticket.masks.items():
        assert torch.equal(seen[f"mask/{name}"], mask)
        assert torch.equal(seen[f"rewound/{name}_orig"], conv_ticket.rewind_weights[name])
        assert torch.equal(seen[f"rewound/{name}_mask"].bool(), mask)
    for name, tensor in conv_ticket.trained_weights.items():
        assert torch.equal(seen[f"trained/{name}"], tensor), name
    again = WinningTicket.load(path)
    assert again.rounds == conv_ticket.rounds and again.controls == conv_ticket.controls
    assert again.settings == json.loads(json.dumps(conv_ticket.settings))
    assert again.provenance == conv_ticket.provenance


def _rewrite_metadata(path: Path, change) -> None:
    payload = path.read_bytes()
    (length,) = struct.unpack("<Q", payload[:8])
    header = json.loads(payload[8:8 + length])
    change(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + payload[8 + length:])


def test_broken_ticket_files_are_one_line_errors(conv_ticket, tmp_path):
    good = conv_ticket.save(tmp_path / "good.safetensors")
    payload = good.read_bytes()
    (length,) = struct.unpack("<Q", payload[:8])
    cases = {
        "missing": (None, "no ticket file at"),
        "empty": (b"", "truncated"),
        "header": (payload[:8 + length // 2], "truncated: its header needs"),
        "tensors": (payload[:-100], "truncated or damaged"),
        "flipped": (payload[:-10] + bytes([payload[-10] ^ 0xFF]) + payload[-9:], "do not match the checksum"),
        "not json": (struct.pack("<Q", 4) + b"abcd", "not a safetensors file"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(LthkitError, match=message) as error:
            WinningTicket.load(path)
        assert "\n" not in str(error.value), name
    newer = tmp_path / "newer.safetensors"
    newer.write_bytes(payload)
    _rewrite_metadata(newer, lambda m: m.update(format_version=str(TICKET_FORMAT_VERSION + 1)))
    with pytest.raises(LthkitError, match="newer than the 1 this lthkit"):
        WinningTicket.load(newer)
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(LthkitError, match="not an lthkit ticket"):
        WinningTicket.load(tmp_path / "plain.safetensors")
    with pytest.raises(LthkitError, match="the model does not fit the ticket: 0.weight is in the ticket"):
        WinningTicket.load(good, model=mlp())


def test_save_writes_whole_files_only(conv_ticket, tmp_path, monkeypatch):
    path = conv_ticket.save(tmp_path / "ticket.safetensors")
    before = path.read_bytes()
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError):
        conv_ticket.save(path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


# --- bad input: one line each, before any training ----------------------------------------------------


def never_called(model):
    raise AssertionError("train was called")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparsity=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not 0 <= x < 1),
                          st.booleans(), st.text(max_size=4), st.none().map(lambda _: [0.5])))
def test_a_target_sparsity_outside_zero_one_is_refused(sparsity):
    with pytest.raises(LthkitError, match="target_sparsity"):
        find_ticket(mlp(), never_called, target_sparsity=sparsity, progress=False)


@settings(max_examples=60, deadline=None)
@given(arguments=st.one_of(
    st.fixed_dictionaries({"rounds": st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3))}),
    st.fixed_dictionaries({"prune_rate": st.floats().filter(lambda x: not 0 <= x < 1)}),
    st.fixed_dictionaries({"rewind": st.one_of(st.text(max_size=8).filter(lambda s: s not in ("init", "none")),
                                               st.tuples(st.sampled_from(["iteration", "fraction", "epoch"]),
                                                         st.one_of(st.integers(max_value=-1), st.text(max_size=2),
                                                                   st.floats(min_value=1.0))),
                                               st.integers())}),
    st.fixed_dictionaries({"scope": st.text(max_size=8).filter(lambda s: s not in ("global", "layer"))}),
    st.fixed_dictionaries({"criterion": st.text(max_size=8).filter(lambda s: s not in lthkit.SCORERS.criteria())}),
    st.fixed_dictionaries({"controls": st.lists(st.text(max_size=6).filter(
        lambda s: s not in ("reinit", "random_prune")), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"seed": st.integers(max_value=-1)}),
    st.fixed_dictionaries({"steps": st.one_of(st.integers(max_value=0), st.floats())}),
    st.fixed_dictionaries({"parameters": st.lists(st.text(max_size=6), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"layer_rates": st.dictionaries(st.text(max_size=5).filter(lambda s: s != "output"),
                                                          st.floats(0, 0.5), min_size=1, max_size=2)}),
))
def test_every_bad_argument_is_one_line_before_any_training(arguments):
    with pytest.raises(LthkitError) as error:
        find_ticket(mlp(), never_called, progress=False, **arguments)
    assert "\n" not in str(error.value)


def test_both_rates_and_a_fraction_without_steps_are_refused():
    with pytest.raises(LthkitError, match="not both"):
        find_ticket(mlp(), never_called, prune_rate=0.2, target_sparsity=0.5)
    with pytest.raises(LthkitError, match="give steps="):
        find_ticket(mlp(), never_called, rewind=("fraction", 0.1))
    with pytest.raises(LthkitError, match="past the training budget of 10"):
        find_ticket(mlp(), never_called, rewind=("iteration", 10), steps=10)
    with pytest.raises(LthkitError, match="random_prune control needs a rewind point"):
        find_ticket(mlp(), never_called, rewind="none", controls=("random_prune",))


def test_a_model_with_nothing_prunable_is_refused():
    with pytest.raises(LthkitError, match="Sequential has nothing prunable"):
        find_ticket(nn.Sequential(nn.BatchNorm1d(4), nn.ReLU()), never_called)
    with pytest.raises(LthkitError, match="must be a torch.nn.Module"):
        find_ticket("lenet", never_called)
    with pytest.raises(LthkitError, match="'fc9.weight' is not a parameter"):
        find_ticket(mlp(), never_called, parameters=["fc9.weight"])
    pruned = mlp()
    prune.random_unstructured(pruned[1], "weight", amount=0.5)
    with pytest.raises(LthkitError, match="1.weight is computed by torch.nn.utils.prune"):
        find_ticket(pruned, never_called)


def test_a_train_that_raises_returns_or_does_nothing_is_named():
    def raises(model):
        raise ValueError("loader exhausted\nsecond line")

    with pytest.raises(LthkitError, match=r"raised ValueError in round 0 of the ticket: loader exhausted$"):
        find_ticket(mlp(), raises, progress=False)

    def returns_loss(model):
        make_train("adam")(model)
        return 0.25

    with pytest.raises(LthkitError, match="must train the model in place and return None, but it returned a float"):
        find_ticket(mlp(), returns_loss, progress=False)
    with pytest.raises(LthkitError, match="left every parameter as it was"):
        find_ticket(mlp(), lambda model: None, progress=False)

    def placeholder(model):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):  # a learner notebook's unwritten exercise, as it is
        find_ticket(mlp(), placeholder, progress=False)


def test_a_train_that_writes_pruned_weights_behind_the_optimizer_is_caught():
    def sneaky(model):
        make_train("adam")(model)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.01)

    with pytest.raises(LthkitError, match="changed pruned weights of 1.weight outside optimizer steps .round 1"):
        find_ticket(mlp(), sneaky, rounds=1, progress=False)


def test_a_rewind_point_past_what_the_loop_ran_is_named():
    with pytest.raises(LthkitError, match="rewind iteration 50 is past what train ran: it took 12 optimizer steps"):
        find_ticket(mlp(), make_train("adam", steps=12), rewind=("iteration", 50), progress=False)
    with pytest.raises(LthkitError, match="took 12 optimizer steps in round 0 of the ticket, but steps=20"):
        find_ticket(mlp(), make_train("adam", steps=12), rewind=("fraction", 0.5), steps=20, progress=False)


def test_evaluate_must_return_a_number_and_leave_the_model_alone():
    with pytest.raises(LthkitError, match="evaluate.model. must return a finite number, got 'high'"):
        find_ticket(mlp(), make_train("adam"), evaluate=lambda model: "high", progress=False)

    def in_training_mode(model):
        model.train()
        return float(model(IMAGES).argmax(1).eq(LABELS).float().mean())

    with pytest.raises(LthkitError, match="evaluate.model. changed the model"):
        find_ticket(ConvBN(), make_train("adam"), evaluate=in_training_mode, progress=False)
