"""The forms a ticket is exported into, one registry: what each is, how it is built, where it runs.

Each :class:`Form` builds a network from a prepared ticket (:func:`~lthkit.export.ticket.prepare_ticket`)
on a device, and says which masks it must agree with (the ticket's, or for the 2:4 form its
re-pruned ones) and which form it is timed against. The speed study, its command, its figures and
notebook 9 read :data:`FORMS`; a new form is one entry.

Example:
    >>> [name for name, form in FORMS.items() if "cpu" in form.devices]
    ['dense', 'compact', 'csr', 'compact_csr']
    >>> FORMS["two_four"].baseline, FORMS["two_four"].dtype
    ('dense_fp16', torch.float16)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..core.registry import Registry
from ..errors import LthkitError
from .compact import compact_network
from .sparse import csr_network, semi_structured_network, semi_structured_support
from .ticket import PreparedTicket, prepare_ticket


@dataclass(frozen=True)
class Form:
    """One way to run a ticket.

    Attributes:
        name: its name (``"csr"``), a column value of ``speed.csv``.
        label: how figures name it.
        description: one line: what it is.
        build: ``(ticket, device) -> (network, masks)``: the network on ``device``, and the masks it
            is checked against (``None``: the ticket's own).
        devices: device types it runs on (``"cpu"``, ``"cuda"``).
        dtype: what it computes in.
        baseline: the form its latency is compared with (the dense network in its dtype).
        colour: its colour in figures.
        unavailable: ``device -> reason | None``: why it cannot run on a device of its type (a GPU
            too old for a kernel), in one line.
    """

    name: str
    label: str
    description: str
    build: Callable[[PreparedTicket, str], tuple]
    devices: tuple[str, ...] = ("cpu", "cuda")
    dtype: torch.dtype = torch.float32
    baseline: str = "dense"
    colour: str = "#7f7f7f"
    unavailable: Callable[[str], str | None] = lambda device: None

    def runs_on(self, device) -> str | None:
        """Why this form cannot run on ``device`` (one line), or ``None`` when it can."""
        kind = torch.device(device).type
        if kind not in self.devices:
            return f"the {self.name} form runs on {' or '.join(self.devices)}, not {kind}"
        return self.unavailable(device)


def _dense(ticket: PreparedTicket, device, dtype=torch.float32):
    return copy.deepcopy(ticket.model).to(device=device, dtype=dtype).eval(), None


def _compact(ticket: PreparedTicket, device):
    return compact_network(ticket).to(device).eval(), None


def _csr(ticket: PreparedTicket, device):
    return csr_network(ticket).to(device).eval(), None


def _compact_csr(ticket: PreparedTicket, device):
    return csr_network(compact_network(ticket)).to(device).eval(), None


def _two_four(ticket: PreparedTicket, device):
    return semi_structured_network(ticket, device=device, dtype=torch.float16)


#: The forms, in the order tables and figures list them.
FORMS = Registry([
    Form("dense", "dense × mask (the ticket as trained)", "the masked dense network: every weight multiplied, "
         "pruned ones as zeros", _dense, colour="#000000"),
    Form("compact", "compact dense", "a smaller dense network: the units no surviving weight connects removed",
         _compact, colour="#1f77b4"),
    Form("csr", "sparse CSR", "every layer's survivors as a CSR matrix (convolutions as unfold + CSR product)", _csr,
         colour="#d62728"),
    Form("compact_csr", "compact, then CSR", "the compact network's layers as CSR matrices", _compact_csr,
         colour="#ff7f0e"),
    Form("dense_fp16", "dense × mask, float16", "the masked dense network in float16: the 2:4 form's baseline",
         lambda ticket, device: _dense(ticket, device, torch.float16), devices=("cuda",), dtype=torch.float16,
         baseline="dense_fp16", colour="#7f7f7f"),
    Form("two_four", "2:4 semi-structured, float16", "fully connected layers re-pruned to 2:4 and run on the sparse "
         "tensor cores (compute capability ≥ 8.0)", _two_four, devices=("cuda",), dtype=torch.float16,
         baseline="dense_fp16", colour="#2ca02c", unavailable=semi_structured_support),
], kind="export form")


def forms_for(device, names=None) -> tuple[list[str], dict[str, str]]:
    """The forms that run on ``device`` (of ``names``, default all), and why each of the others does not.

    Example:
        >>> runs, skipped = forms_for("cpu")
        >>> runs, sorted(skipped)
        (['dense', 'compact', 'csr', 'compact_csr'], ['dense_fp16', 'two_four'])
    """
    names = list(FORMS) if names is None else [FORMS.require(name).name for name in names]
    runs, skipped = [], {}
    for name in names:
        reason = FORMS[name].runs_on(device)
        if reason is None:
            runs.append(name)
        else:
            skipped[name] = reason
    return runs, skipped


def stored_weights(network: nn.Module) -> int:
    """How many weights a network stores and multiplies: every entry of a dense weight, the stored values of a
    sparse one (CSR: the survivors; 2:4: half the entries).

    Example:
        >>> stored_weights(nn.Linear(4, 3))
        12
    """
    total = 0
    for module in network.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or any(True for _ in module.children()):
            continue
        if weight.layout == torch.sparse_csr:
            total += weight.values().numel()
        elif type(weight).__name__.startswith("SparseSemiStructured"):
            total += weight.shape.numel() // 2
        else:
            total += weight.numel()
    return total


def masked_reference(ticket: PreparedTicket, masks, device, dtype=torch.float32) -> nn.Module:
    """The masked dense network with ``masks`` (the ticket's, or a form's re-pruned ones) on ``device`` in ``dtype``."""
    model = copy.deepcopy(ticket.model)
    if masks is not None:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in masks:
                    parameter.mul_(masks[name].to(parameter.device, parameter.dtype))
    return model.to(device=device, dtype=dtype).eval()


def export_ticket(model: nn.Module, masks=None, *, forms=("compact", "csr"), device="cpu",
                  input_shape=(1, 28, 28)) -> dict[str, nn.Module]:
    """Export a ticket (a trained network and its masks) into each of ``forms``.

    Args:
        model: the trained network (not changed).
        masks: its masks: a dict, a ticket object with ``.masks``, or ``None`` for a network under
            ``torch.nn.utils.prune`` (see :func:`~lthkit.export.ticket.prepare_ticket`).
        forms: names of :data:`FORMS`.
        device: where the exported networks run.
        input_shape: one example's input shape.

    Returns:
        ``{form: network}``, each in eval mode on ``device``.

    Raises:
        LthkitError: bad masks or network (one line), an unknown form, or a form the device has no kernel for.

    Example:
        >>> from lthkit.core.models import build_model
        >>> from lthkit.core.masks import full_masks
        >>> exported = export_ticket(build_model("lenet300_100"), full_masks(build_model("lenet300_100")))
        >>> sorted(exported)
        ['compact', 'csr']
        >>> export_ticket(build_model("lenet300_100"), full_masks(build_model("lenet300_100")), forms=["two_four"])
        Traceback (most recent call last):
        ...
        lthkit.LthkitError: the two_four form runs on cuda, not cpu
    """
    chosen = [FORMS.require(name) for name in forms]
    for form in chosen:
        reason = form.runs_on(device)
        if reason is not None:
            raise LthkitError(reason)
    ticket = prepare_ticket(model, masks, input_shape)
    return {form.name: form.build(ticket, device)[0] for form in chosen}
