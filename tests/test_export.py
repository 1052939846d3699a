"""Issue 30: lthkit.export turns a ticket into a compact dense network, CSR and 2:4 sparse layers and files, each
checked against the masked dense network (the oracle: the same network with every pruned weight zero, run by torch's
own dense layers), and refuses bad input in one line (hypothesis for the input checks)."""

from __future__ import annotations

import copy
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from lthkit.core.masks import full_masks, magnitude_masks, prunable_weights
from lthkit.core.models import build_model
from lthkit.errors import LthkitError
from lthkit.export.agreement import compare_outputs, paired_difference
from lthkit.export.chain import trace_chain
from lthkit.export.compact import compact_linear, compact_network
from lthkit.export.forms import FORMS, export_ticket, forms_for, masked_reference, stored_weights
from lthkit.export.sparse import (
    GROUP,
    KEEP,
    SparseConv2d,
    csr_from_mask,
    csr_network,
    semi_structured_network,
    semi_structured_support,
    two_four_masks,
    two_four_ticket_masks,
)
from lthkit.export.storage import FORMATS, file_sizes, load_sparse, save_sparse
from lthkit.export.ticket import prepare_ticket
from lthkit.export.timing import time_forward

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def trained_like(name: str, seed: int = 0, bias_scale: float = 0.1) -> nn.Module:
    """A network whose weights and biases moved away from θ₀ (biases of both signs), as training leaves them."""
    model = build_model(name, seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * bias_scale)
    return model


def imp_masks(model: nn.Module, rounds: int, rate: float = 0.5) -> dict:
    masks = full_masks(model)
    for _ in range(rounds):
        masks = magnitude_masks(prunable_weights(model), masks, rate, scope="layer")
    return masks


def random_masks(model: nn.Module, density: float, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.rand(mask.shape, generator=generator) < density for name, mask in full_masks(model).items()}


def reference(model, masks) -> nn.Module:
    """The oracle: a copy with every pruned weight zeroed by hand, run by torch's dense layers."""
    copied = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, parameter in copied.named_parameters():
            if name in masks:
                parameter.mul_(masks[name].float())
    return copied


INPUTS = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(5))


# --- the chain ----------------------------------------------------------------------------------

def test_the_kits_networks_and_a_sequential_are_chains():
    chain = trace_chain(build_model("conv2_small"))
    assert [step.kind for step in chain.steps] == ["conv", "relu", "conv", "relu", "max_pool", "flatten", "linear",
                                                    "relu", "linear", "relu", "linear"]
    assert chain.shapes["fc1"] == ((8 * 14 * 14,), (64,)) and chain.shapes["conv2"] == ((8, 28, 28), (8, 28, 28))
    sequential = nn.Sequential(nn.Flatten(), nn.Linear(784, 20), nn.ReLU(), nn.Dropout(0.5), nn.Linear(20, 10))
    assert trace_chain(sequential).layers == ["1", "4"]


class WithLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(784, 8), nn.LayerNorm(8), nn.Linear(8, 10)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(x.flatten(1))))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 784), nn.Linear(784, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc2(x + self.fc1(x))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot follow it
            return self.fc(x.flatten(1))
        return -self.fc(x.flatten(1))


@pytest.mark.parametrize("model,words", [(WithLayerNorm(), "LayerNorm"), (Residual(), "not the step before it"),
                                         (Branchy(), "cannot follow Branchy's forward"),
                                         (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Tanh()), "Tanh")])
def test_a_network_that_is_no_chain_is_refused_in_one_line(model, words):
    with pytest.raises(LthkitError, match=words) as raised:
        prepare_ticket(model, {})
    assert "\n" not in str(raised.value)


def test_an_input_shape_that_does_not_fit_is_refused():
    with pytest.raises(LthkitError, match=r"input of shape \(3, 32, 32\) does not fit"):
        trace_chain(build_model("lenet300_100"), (3, 32, 32))


# --- the ticket's input checks (property-based) ---------------------------------------------------

LENET = build_model("lenet300_100", seed=0)
SHAPES = {name: tuple(weight.shape) for name, weight in prunable_weights(LENET).items()}


@SETTINGS
@given(name=st.sampled_from(sorted(SHAPES)), rows=st.integers(1, 900), cols=st.integers(1, 900))
def test_masks_of_another_shape_are_refused(name, rows, cols):
    if (rows, cols) == SHAPES[name]:
        return
    masks = {name: torch.ones(rows, cols, dtype=torch.bool)}
    with pytest.raises(LthkitError, match=rf"masks\['{name}'\] has shape \({rows}, {cols}\).*not this network's"):
        prepare_ticket(LENET, masks)


@SETTINGS
@given(name=st.text(min_size=1, max_size=20).filter(lambda text: text not in SHAPES))
def test_masks_naming_no_layer_are_refused(name):
    with pytest.raises(LthkitError, match="not a layer weight of LeNet300100"):
        prepare_ticket(LENET, {name: torch.ones(3, dtype=torch.bool)})


@SETTINGS
@given(value=st.floats(width=32, allow_nan=True).filter(lambda value: value not in (0.0, 1.0)))
def test_masks_with_values_other_than_0_and_1_are_refused(value):
    mask = torch.ones(SHAPES["fc2.weight"])
    mask[0, 0] = value
    with pytest.raises(LthkitError, match=r"masks\['fc2.weight'\] is a float32 tensor with values other than 0 and 1"):
        prepare_ticket(LENET, {"fc2.weight": mask})


@SETTINGS
@given(masks=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=3)))
def test_masks_that_are_no_dict_nor_ticket_are_refused(masks):
    with pytest.raises(LthkitError):
        prepare_ticket(LENET, masks)


def test_nothing_left_is_refused_in_one_line():
    empty = {name: torch.zeros(shape, dtype=torch.bool) for name, shape in SHAPES.items()}
    with pytest.raises(LthkitError, match=r"keep no weight at all \(density 0\)"):
        prepare_ticket(LENET, empty)
    one_layer_empty = dict(full_masks(LENET), **{"fc2.weight": torch.zeros(SHAPES["fc2.weight"], dtype=torch.bool)})
    with pytest.raises(LthkitError, match="keep none of fc2.weight's 30,000 weights"):
        prepare_ticket(LENET, one_layer_empty)
    stranded = dict(full_masks(LENET))  # fc1 survives only into neuron 0 of fc1, which feeds nothing
    stranded["fc1.weight"] = torch.zeros(SHAPES["fc1.weight"], dtype=torch.bool)
    stranded["fc1.weight"][0, 0] = True
    stranded["fc2.weight"] = torch.ones(SHAPES["fc2.weight"], dtype=torch.bool)
    stranded["fc2.weight"][:, 0] = False
    with pytest.raises(LthkitError, match="fc1 keeps no weight: the output no longer depends on the input"):
        compact_network(LENET, stranded)


def test_a_ticket_object_with_masks_a_pruned_model_and_float_masks_are_read():
    masks = random_masks(LENET, 0.3, seed=1)
    ticket_like = types.SimpleNamespace(masks=masks)  # a WinningTicket, by duck typing
    from_object = prepare_ticket(LENET, ticket_like)
    pruned = copy.deepcopy(LENET)
    for name, mask in masks.items():
        prune.custom_from_mask(pruned.get_submodule(name.rsplit(".", 1)[0]), "weight", mask.float())
    from_hooks = prepare_ticket(pruned)
    from_floats = prepare_ticket(LENET, {name: mask.float() for name, mask in masks.items()})
    for ticket in (from_hooks, from_floats):
        assert all(torch.equal(ticket.masks[name], from_object.masks[name]) for name in masks)
        expected = from_object.model.state_dict()
        assert all(torch.equal(value, expected[key]) for key, value in ticket.model.state_dict().items())
    with pytest.raises(LthkitError, match="carries none"):
        prepare_ticket(LENET)


def test_the_network_given_is_never_changed():
    model = trained_like("lenet300_100")
    before = copy.deepcopy(model.state_dict())
    masks = random_masks(model, 0.1, seed=2)
    for form in ("compact", "csr", "compact_csr"):
        FORMS[form].build(prepare_ticket(model, masks), "cpu")
    file_sizes(model, masks)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert model.training


# --- the compact network ------------------------------------------------------------------------

@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["lenet300_100", "conv2_small"]), density=st.sampled_from([0.002, 0.01, 0.05, 0.3, 1.0]),
       seed=st.integers(0, 10_000))
def test_the_compact_network_computes_what_the_masked_network_computes(name, density, seed):
    model = trained_like(name, seed=seed % 7)
    masks = random_masks(model, density, seed)
    try:
        compact = compact_network(model, masks)
    except LthkitError as error:  # a random mask so sparse that nothing connects: refused, as it should be
        assert "nothing left to export" in str(error)
        return
    expected = reference(model, masks)(INPUTS)
    assert torch.allclose(compact(INPUTS), expected, rtol=1e-4, atol=1e-5)
    for row in compact.structure[:-1]:
        assert row["units_kept"] + row["no_outgoing"] + row["no_incoming"] + row["folded"] == row["units"], row
    assert sum(row["compact_survivors"] for row in compact.structure) <= sum(int(m.sum()) for m in masks.values())


def test_unstructured_pruning_leaves_units_to_remove_and_the_compact_network_is_smaller():
    model = trained_like("lenet300_100")
    masks = imp_masks(model, rounds=6)  # 1.6% of the weights
    compact = compact_network(model, masks)
    fc1 = compact.structure[0]
    assert fc1["inputs_kept"] < 784 and fc1["units_kept"] < 300
    assert compact.layer("fc1").weight.shape == (fc1["units_kept"], fc1["inputs_kept"])
    assert torch.allclose(compact(INPUTS), reference(model, masks)(INPUTS), atol=1e-5)
    assert stored_weights(compact) < stored_weights(prepare_ticket(model, masks).model)


def test_a_neuron_without_incoming_weights_is_folded_into_the_next_bias_or_dropped():
    model = trained_like("lenet300_100")
    masks = full_masks(model)
    with torch.no_grad():
        model.fc1.bias[:3] = torch.tensor([0.7, -0.4, 0.0])
    masks["fc1.weight"][:3] = False  # neurons 0, 1, 2 of fc1 output relu(bias): 0.7, 0, 0
    compact = compact_network(model, masks)
    fc1 = compact.structure[0]
    assert (fc1["folded"], fc1["no_incoming"], fc1["units_kept"]) == (1, 2, 297)
    assert torch.allclose(compact(INPUTS), reference(model, masks)(INPUTS), atol=1e-5)


def test_a_constant_channel_before_a_padded_convolution_stays():
    model = trained_like("conv2_small")
    masks = full_masks(model)
    with torch.no_grad():
        model.conv1.bias[:2] = torch.tensor([0.5, -0.5])
    masks["conv1.weight"][:2] = False  # channel 0: constant 0.5 into a padded conv (kept); channel 1: zero (dropped)
    compact = compact_network(model, masks)
    conv1 = compact.structure[0]
    assert (conv1["units_kept"], conv1["no_incoming"], conv1["folded"]) == (7, 1, 0)
    assert torch.allclose(compact(INPUTS), reference(model, masks)(INPUTS), atol=1e-5)


def compact_linear_by_hand(weight, bias, mask_in, mask_out):
    """An independent loop: a neuron stays if it feeds something and can output something other than 0."""
    keep = []
    for neuron in range(weight.shape[0]):
        feeds = any(bool(mask_out[row, neuron]) for row in range(mask_out.shape[0]))
        receives = any(bool(mask_in[neuron, col]) for col in range(mask_in.shape[1]))
        keep.append(feeds and (receives or float(bias[neuron]) > 0))
    keep = torch.tensor(keep)
    return (weight * mask_in)[keep], bias[keep], keep


@SETTINGS
@given(out=st.integers(1, 12), inputs=st.integers(1, 9), following=st.integers(1, 6), seed=st.integers(0, 1000),
       density=st.floats(0.05, 0.9))
def test_compact_linear_against_a_plain_loop(out, inputs, following, seed, density):
    generator = torch.Generator().manual_seed(seed)
    weight, bias = torch.randn(out, inputs, generator=generator), torch.randn(out, generator=generator)
    mask_in = torch.rand(out, inputs, generator=generator) < density
    mask_out = torch.rand(following, out, generator=generator) < density
    found, expected = compact_linear(weight, bias, mask_in, mask_out), compact_linear_by_hand(weight, bias, mask_in,
                                                                                                mask_out)
    assert all(torch.equal(a, b) for a, b in zip(found, expected))


def test_compact_linear_refuses_masks_of_the_wrong_shape():
    weight, bias = torch.ones(3, 2), torch.zeros(3)
    with pytest.raises(LthkitError, match=r"mask_out has shape \(4, 2\).*must be \(next, 3\)"):
        compact_linear(weight, bias, torch.ones(3, 2, dtype=torch.bool), torch.ones(4, 2, dtype=torch.bool))
    with pytest.raises(LthkitError, match="mask_in has shape"):
        compact_linear(weight, bias, torch.ones(2, 3, dtype=torch.bool), torch.ones(4, 3, dtype=torch.bool))


# --- sparse kernels -----------------------------------------------------------------------------

def test_a_surviving_weight_that_is_zero_stays_in_the_csr_matrix():
    weight = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [False, True, False]])
    csr = csr_from_mask(weight, mask)
    assert csr.values().tolist() == [0.0, 1.0, 0.0] and csr.col_indices().tolist() == [0, 1, 1]
    assert torch.equal(csr.to_dense(), weight * mask)


@pytest.mark.parametrize("stride,padding,dilation,batch", [(1, 1, 1, 1), (1, 1, 1, 5), (2, 0, 1, 3), (1, 2, 2, 2)])
def test_the_csr_convolution_is_torchs_convolution(stride, padding, dilation, batch):
    generator = torch.Generator().manual_seed(stride + padding + dilation)
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation)
    mask = torch.rand(conv.weight.shape, generator=generator) < 0.3
    inputs = torch.randn(batch, 3, 11, 9, generator=generator)
    expected = F.conv2d(inputs, conv.weight * mask, conv.bias, stride, padding, dilation)
    assert torch.allclose(SparseConv2d(conv, mask)(inputs), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["lenet300_100", "conv2_small"])
def test_the_csr_networks_compute_what_the_masked_network_computes(name):
    model = trained_like(name)
    masks = imp_masks(model, rounds=4)
    ticket = prepare_ticket(model, masks)
    expected = reference(model, masks)(INPUTS)
    for network in (csr_network(ticket), csr_network(compact_network(ticket))):
        assert torch.allclose(network(INPUTS), expected, atol=1e-5)
        assert torch.allclose(network(INPUTS[:1]), expected[:1], atol=1e-5)  # batch 1 takes its own path
    assert stored_weights(csr_network(ticket)) == sum(int(mask.sum()) for mask in masks.values())


def two_four_by_hand(weight, mask):
    """An independent loop over rows and groups of 4: the 2 largest |w| among the survivors stay."""
    rows = weight.shape[0]
    flat_w, flat_m = weight.reshape(rows, -1), mask.reshape(rows, -1)
    result = torch.zeros_like(flat_m)
    for row in range(rows):
        for start in range(0, flat_w.shape[1], 4):
            alive = [col for col in range(start, min(start + 4, flat_w.shape[1])) if flat_m[row, col]]
            for col in sorted(alive, key=lambda c: -abs(float(flat_w[row, c])))[:2]:
                result[row, col] = True
    return result.view(mask.shape)


@SETTINGS
@given(rows=st.integers(1, 6), cols=st.integers(1, 19), kernel=st.sampled_from([None, (1, 3), (3, 3)]),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_two_four_masks_keep_the_two_largest_survivors_of_every_group(rows, cols, kernel, density, seed):
    generator = torch.Generator().manual_seed(seed)
    shape = (rows, cols) if kernel is None else (rows, cols, *kernel)
    weight = torch.randn(shape, generator=generator)  # continuous: no ties
    mask = torch.rand(shape, generator=generator) < density
    found = two_four_masks({"w": weight}, {"w": mask})["w"]
    assert found.shape == mask.shape and not (found & ~mask).any()
    padded = F.pad(found.reshape(rows, -1).int(), (0, (-found.reshape(rows, -1).shape[1]) % GROUP))
    assert int(padded.view(rows, -1, GROUP).sum(2).max()) <= KEEP
    assert torch.equal(found, two_four_by_hand(weight, mask))


def test_the_two_four_form_needs_a_recent_gpu_and_says_so_in_one_line():
    ticket = prepare_ticket(trained_like("lenet300_100"), imp_masks(LENET, rounds=2))
    reason = semi_structured_support("cpu")
    assert reason is not None and "compute capability 8.0" in reason and "\n" not in reason
    with pytest.raises(LthkitError, match="compute capability 8.0 or later"):
        semi_structured_network(ticket, device="cpu")
    runs, skipped = forms_for("cpu", ["dense", "two_four"])
    assert runs == ["dense"] and "runs on cuda, not cpu" in skipped["two_four"]
    if not torch.cuda.is_available():
        assert "torch sees none" in semi_structured_support("cuda")


@pytest.mark.parametrize("name", ["lenet300_100", "conv2_small"])
def test_the_two_four_network_is_wired_right_with_a_stand_in_kernel(name):
    """On a CPU the 2:4 kernel cannot run; a stand-in (the padded dense weight itself) checks everything around it:
    which layers are re-pruned, the padding to the kernel's shapes, and the outputs against the re-pruned network."""
    model = trained_like(name)
    ticket = prepare_ticket(model, imp_masks(model, rounds=1))
    seen = []

    def stand_in(weight):
        assert weight.shape[0] % 16 == 0 and weight.shape[1] % 16 == 0 and weight.is_contiguous()
        seen.append(tuple(weight.shape))
        return weight

    network, masks = semi_structured_network(ticket, device="cpu", dtype=torch.float32, convert=stand_in)
    linear = [layer for layer in ticket.chain.layers if ticket.chain.kind(layer) == "linear"]
    assert len(seen) == len(linear)
    repruned = two_four_ticket_masks(ticket)
    assert list(masks) == list(repruned) and all(torch.equal(masks[k], repruned[k]) for k in masks)
    for layer in ticket.chain.layers:
        if layer not in linear:
            assert torch.equal(masks[f"{layer}.weight"], ticket.masks[f"{layer}.weight"])
    expected = masked_reference(ticket, masks, "cpu")(INPUTS)
    assert torch.allclose(network(INPUTS), expected, atol=1e-5)
    assert network(INPUTS).shape == (16, 10)


# --- files --------------------------------------------------------------------------------------

def test_a_sparse_file_gives_back_the_weights_and_the_masks_a_kept_zero_included(tmp_path):
    model = trained_like("conv2_small")
    masks = random_masks(model, 0.2, seed=3)
    with torch.no_grad():  # a survivor that is exactly zero: only the mask says it survives
        model.fc1.weight[masks["fc1.weight"]] = torch.where(torch.arange(int(masks["fc1.weight"].sum())) % 5 == 0, 0.0,
                                                            model.fc1.weight[masks["fc1.weight"]])
    ticket = prepare_ticket(model, masks)
    for compressed in (True, False):
        path = save_sparse(tmp_path / f"ticket_{compressed}.npz", model, masks, compressed=compressed)
        state, loaded = load_sparse(path)
        assert list(state) == list(ticket.model.state_dict())
        assert all(torch.equal(state[key], value) for key, value in ticket.model.state_dict().items())
        assert set(loaded) == set(masks) and all(torch.equal(loaded[name], masks[name]) for name in masks)
    with np.load(tmp_path / "ticket_True.npz") as archive:
        assert archive["fc1.weight.col"].dtype == np.uint16 and archive["conv1.weight.col"].dtype == np.uint8


def test_sizes_sparse_wins_when_sparse_enough():
    model = trained_like("lenet300_100")
    dense_like, sparse_like = file_sizes(model, random_masks(model, 0.9, 1)), file_sizes(model, random_masks(model, 0.02,
                                                                                                             1))
    assert list(dense_like) == list(FORMATS)
    assert dense_like["sparse"] > dense_like["dense"] and sparse_like["sparse"] < sparse_like["dense"] / 10
    assert sparse_like["dense"] == dense_like["dense"]  # zeros cost what any weight costs in the dense file


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays,words", [
    ({}, "no marker"),
    ({"__lthkit_sparse_ticket__": np.array(1), "w.shape": np.array([2, 2])}, "lacks values"),
    ({"__lthkit_sparse_ticket__": np.array(1), "w.shape": np.array([2, 2]), "w.values": np.ones(2, np.float32),
      "w.col": np.array([0, 5], np.uint8), "w.crow": np.array([0, 1, 2], np.uint8)}, "do not describe a 2 x 2"),
    ({"__lthkit_sparse_ticket__": np.array(1), "w.shape": np.array([2, 2]), "w.values": np.ones(2, np.float32),
      "w.col": np.array([1, 1], np.uint8), "w.crow": np.array([0, 2, 2], np.uint8)}, "indices repeat"),
    ({"__lthkit_sparse_ticket__": np.array(1), "w.shape": np.array([2 ** 20, 2 ** 20]),
      "w.values": np.ones(0, np.float32), "w.col": np.zeros(0, np.uint8), "w.crow": np.zeros(2 ** 20 + 1, np.uint8)},
     "claims"),
    ({"__lthkit_sparse_ticket__": np.array(1), "w.shape": np.array([1, 2]), "w.values": np.ones(1, np.float32),
      "w.col": np.array([-1], np.int64), "w.crow": np.array([0, 1], np.int64)}, "do not describe"),
])
def test_a_broken_sparse_file_is_refused_in_one_line(tmp_path, arrays, words):
    path = _write_npz(tmp_path / "broken.npz", **arrays) if arrays else _write_npz(tmp_path / "broken.npz",
                                                                                  x=np.ones(2))
    with pytest.raises(LthkitError, match=words) as raised:
        load_sparse(path)
    assert "\n" not in str(raised.value)


def test_a_file_that_is_no_archive_or_holds_objects_is_refused(tmp_path):
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(LthkitError, match="is not a sparse ticket file"):
        load_sparse(tmp_path / "text.npz")
    np.savez(tmp_path / "objects.npz", __lthkit_sparse_ticket__=np.array(1), evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(LthkitError, match="is not a sparse ticket file"):  # allow_pickle=False: never unpickled
        load_sparse(tmp_path / "objects.npz")
    with pytest.raises(LthkitError, match="no sparse ticket file"):
        load_sparse(tmp_path / "missing.npz")


# --- agreement and timing -----------------------------------------------------------------------

def test_an_export_outside_the_tolerance_is_caught():
    model = nn.Linear(4, 3)
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.bias.add_(1e-3)
    inputs, labels = torch.randn(50, 4), torch.randint(0, 3, (50,))
    found = compare_outputs(model, shifted, inputs, labels, batch_size=7)
    assert not found["agrees"] and found["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)
    assert compare_outputs(model, copy.deepcopy(model), inputs, labels)["agrees"]
    assert found["examples"] == 50 and found["correct"].shape == (50,)


def test_the_paired_interval_is_the_textbook_one():
    a = torch.tensor([True, True, False, True, False, True, True, True])
    b = torch.tensor([True, False, False, True, True, True, False, True])
    differences = a.double() - b.double()
    mean, low, high = paired_difference(a, b)
    half = 1.959964 * float(differences.std()) / 8 ** 0.5
    assert (mean, low, high) == pytest.approx((float(differences.mean()), mean - half, mean + half))


def test_time_forward_measures_and_checks_its_arguments():
    timing = time_forward(nn.Linear(16, 8), torch.zeros(4, 16), threads=1, min_run_time=0.01)
    assert 0 < timing.q1_s <= timing.median_s <= timing.q3_s and timing.runs >= 1 and timing.threads == 1
    with pytest.raises(LthkitError, match="threads"):
        time_forward(nn.Linear(2, 2), torch.zeros(1, 2), threads=0)
    with pytest.raises(LthkitError, match="min_run_time"):
        time_forward(nn.Linear(2, 2), torch.zeros(1, 2), min_run_time=float("nan"))
    assert torch.get_num_threads() == 1  # put back


def test_a_new_form_is_one_registry_entry():
    from lthkit.export.forms import Form

    def halved(ticket, device):
        return FORMS["dense"].build(ticket, device)

    with FORMS.temporarily(Form("toy", "toy form", "the dense network again", halved, devices=("cpu",))):
        assert "toy" in forms_for("cpu")[0]
    assert "toy" not in FORMS


class ConvBatchNorm(nn.Module):
    """A conv net with BatchNorm after each layer, as people write them (and as issue 29's hidden models are)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(6, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 12 * 12, 20), nn.BatchNorm1d(20), nn.ReLU(),
                                  nn.Linear(20, 10))

    def forward(self, x):
        return self.head(self.features(x))


def test_batchnorm_right_after_a_layer_is_folded_into_it_and_every_form_agrees():
    model = ConvBatchNorm()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # running statistics and affine parameters as training leaves them
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
    masks = random_masks(model, 0.3, seed=4)
    ticket = prepare_ticket(model, masks)
    assert ticket.folded == ["features.1", "features.5", "head.2"]
    expected = reference(model, masks)(INPUTS)  # the original network, eval mode, BatchNorm and all
    assert model.training and isinstance(model.features[1], nn.BatchNorm2d)  # the network given is untouched
    assert torch.allclose(ticket.model(INPUTS), expected, atol=1e-5)
    for name, network in export_ticket(model, masks, forms=["compact", "csr", "compact_csr"]).items():
        assert torch.allclose(network(INPUTS), expected, atol=1e-4), name
    for name, mask in ticket.masks.items():
        assert (ticket.model.get_parameter(name)[~mask] == 0).all()


def test_batchnorm_that_follows_no_layer_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.ReLU(), nn.BatchNorm1d(10), nn.Linear(10, 10))
    with pytest.raises(LthkitError, match="3 is a BatchNorm that does not directly follow a Linear or Conv2d layer"):
        prepare_ticket(model, {})
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.BatchNorm1d(10, track_running_stats=False))
    with pytest.raises(LthkitError, match="keeps no running statistics"):
        prepare_ticket(model, {})


def test_a_winning_ticket_found_by_find_ticket_exports_by_its_masks(tiny_data, tmp_path):
    """Issue 29's WinningTicket, found by find_ticket on a user's network and loop: its masks (duck typing, .masks),
    or the network it is applied to (under torch.nn.utils.prune), give the same exports, agreeing with it."""
    from lthkit.imp.find import find_ticket
    from lthkit.imp.ticket import WinningTicket

    def network():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))

    def train(model):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        model.train()
        for start in range(0, 300, 50):
            optimizer.zero_grad()
            F.cross_entropy(model(tiny_data.train_x[start:start + 50]), tiny_data.train_y[start:start + 50]).backward()
            optimizer.step()

    ticket = find_ticket(network(), train, rounds=2, prune_rate=0.6, progress=False)
    assert isinstance(ticket, WinningTicket) and ticket.density < 0.2
    trained = ticket.apply(network(), weights="trained").eval()  # under torch.nn.utils.prune
    expected = trained(tiny_data.test_x)
    for masks in (ticket, None, WinningTicket.load(ticket.save(tmp_path / "ticket.safetensors"))):
        exported = export_ticket(trained, masks, forms=["compact", "csr", "compact_csr"])
        for name, exported_network in exported.items():
            assert torch.allclose(exported_network(tiny_data.test_x), expected, atol=1e-4), name
    assert compact_network(trained, ticket).structure[0]["units_kept"] <= 32
    state, masks = load_sparse(save_sparse(tmp_path / "ticket.npz", trained, ticket))
    assert set(masks) == set(ticket.masks) and all(torch.equal(masks[k], ticket.masks[k]) for k in masks)
    reloaded = network().eval()
    reloaded.load_state_dict(state)  # the file holds the network as it is named, BatchNorm and all
    assert torch.allclose(reloaded(tiny_data.test_x), expected, atol=1e-5)
