"""A winning ticket as a thing you keep: its masks, its weights, its history, one portable file.

:func:`lthkit.imp.find.find_ticket` returns a :class:`WinningTicket`: the masks of the last IMP
round (``{parameter name: bool tensor}``, ``True`` keeps a weight), the weights its survivors
start from (θ₀ or θ_k, the real parameters and buffers of the network as a state dict), the
weights it trained to, the density and metric of every round (of the ticket and of its controls),
and where it came from (lthkit and torch versions, a hash of the network's structure, the
settings).

``ticket.apply(model)`` puts it on a fresh network of the same structure, through
``torch.nn.utils.prune`` (``weight_orig`` holds the weights, ``weight_mask`` the mask) or as plain
masked weights; ``ticket.save(path)`` writes one ``safetensors`` file (tensors, and a JSON header
in its metadata: never pickle), and :meth:`WinningTicket.load` reads it back bit for bit, checking
its format, its integrity and its structure. Anything wrong is a one-line
:class:`~lthkit.LthkitError` naming the problem: a truncated or altered file, a newer format, a
network of another structure (the first parameter that differs).

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> masks = {"0.weight": torch.rand(3, 4) > 0.5, "2.weight": torch.ones(2, 3, dtype=torch.bool)}
    >>> ticket = WinningTicket.from_masks(net, masks)
    >>> fresh = ticket.apply(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))
    >>> bool(torch.equal(fresh[0].weight_mask.bool(), masks["0.weight"])), ticket.total
    (True, 18)
"""

from __future__ import annotations

import hashlib
import json
import platform
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn
from torch.nn.utils import prune

from .. import __version__
from ..core.files import atomic_write_bytes
from ..errors import LthkitError

#: What the file's header says it is, and the newest format version this lthkit reads and writes.
TICKET_FORMAT = "lthkit-ticket"
TICKET_FORMAT_VERSION = 1
#: What the weights of a ticket can be: where its survivors start (θ₀ or θ_k), or what they trained to.
WEIGHTS = ("rewind", "trained")
#: The tensors' name prefixes inside the file.
_PREFIX = {"mask": "mask/", "rewind": "rewind/", "trained": "trained/"}


def structure_of(model_or_state) -> list[list]:
    """The structure of a network: ``[name, shape, dtype]`` of every entry of its ``state_dict``, in order.

    Example:
        >>> structure_of(nn.Linear(2, 1))
        [['weight', [1, 2], 'float32'], ['bias', [1], 'float32']]
    """
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    return [[name, list(tensor.shape), str(tensor.dtype).replace("torch.", "")] for name, tensor in state.items()]


def structure_hash(structure: list[list]) -> str:
    """A SHA-256 of a :func:`structure_of` list: two networks with the same state-dict layout share it."""
    return hashlib.sha256(json.dumps(structure, separators=(",", ":")).encode()).hexdigest()


def first_difference(expected: list[list], found: list[list], *, what: str = "the model") -> str | None:
    """One line naming the first entry in which two structures differ (``None`` if they are the same).

    Example:
        >>> first_difference(structure_of(nn.Linear(2, 3)), structure_of(nn.Linear(2, 4)))
        'weight has shape (3, 2) in the ticket and (4, 2) in the model'
    """
    theirs = {name: (shape, dtype) for name, shape, dtype in found}
    ours = {name: (shape, dtype) for name, shape, dtype in expected}
    for name, shape, dtype in expected:
        if name not in theirs:
            hint = ""
            if name.endswith(".weight") and f"{name}_orig" in theirs:
                hint = " (it is under torch.nn.utils.prune: give a network without pruning)"
            return f"{name} is in the ticket but not in {what}{hint}"
        if tuple(theirs[name][0]) != tuple(shape):
            return f"{name} has shape {tuple(shape)} in the ticket and {tuple(theirs[name][0])} in {what}"
        if theirs[name][1] != dtype:
            return f"{name} is {dtype} in the ticket and {theirs[name][1]} in {what}"
    for name, _, _ in found:
        if name not in ours:
            hint = " (it is under torch.nn.utils.prune: give a network without pruning)" \
                if name.endswith(("_orig", "_mask")) else ""
            return f"{name} is in {what} but not in the ticket{hint}"
    return None


@dataclass
class TicketRound:
    """One IMP round of a ticket (or of a control): its density, its metric, what training took.

    Attributes:
        round: 0 is the dense network.
        density: the fraction of prunable weights kept.
        metric: what ``evaluate(model)`` returned after training (``None``: no ``evaluate`` given).
        steps: optimizer steps the training function took.
        seconds: wall-clock seconds of the round's training and evaluation.
        layer_density: the density of each prunable parameter.
    """

    round: int
    density: float
    metric: float | None
    steps: int
    seconds: float
    layer_density: dict = field(default_factory=dict)


def _state_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in state.items()}


class WinningTicket:
    """A ticket found by IMP: masks, the weights its survivors start from and train to, its history.

    Attributes:
        masks: ``{parameter name: bool tensor}`` of the last round (``True`` keeps a weight), keyed by
            the network's parameter names (``"features.0.weight"``).
        rewind_weights: the state dict the survivors start from: θ₀ (``rewind="init"``), θ_k
            (``("iteration", k)``), or the previous round's trained weights (``rewind="none"``).
            Unmasked: :meth:`apply` masks them.
        trained_weights: the state dict the last round trained to (its pruned weights are zero).
        rounds: the ticket's :class:`TicketRound` per round, 0 (dense) first.
        controls: ``{control name: [TicketRound, ...]}``: the controls trained beside it.
        settings: the search's settings (rounds, rates, scope, rewind point, criterion, seed...).
        provenance: lthkit, torch and Python versions, the network's class, the training
            function's name, and :attr:`structure_hash`.
        structure: :func:`structure_of` the network.
    """

    def __init__(self, *, masks: Mapping[str, torch.Tensor], rewind_weights: Mapping[str, torch.Tensor],
                 trained_weights: Mapping[str, torch.Tensor] | None = None, rounds=(), controls=None,
                 settings: dict | None = None, provenance: dict | None = None):
        self.rewind_weights = _state_copy(rewind_weights)
        self.trained_weights = _state_copy(trained_weights) if trained_weights is not None else None
        self.structure = structure_of(self.rewind_weights)
        self.masks = {name: mask.detach().to("cpu", copy=True).bool().contiguous() for name, mask in masks.items()}
        self.rounds = [round_ if isinstance(round_, TicketRound) else TicketRound(**round_) for round_ in rounds]
        self.controls = {name: [r if isinstance(r, TicketRound) else TicketRound(**r) for r in history]
                         for name, history in (controls or {}).items()}
        self.settings = dict(settings or {})
        self.provenance = {**(provenance or {}), "structure_hash": structure_hash(self.structure)}
        self._check()

    @classmethod
    def from_masks(cls, model: nn.Module, masks: Mapping[str, torch.Tensor], **kwargs) -> "WinningTicket":
        """A ticket of ``model``'s current weights and ``masks`` (found elsewhere, e.g. with ``torch.nn.utils.prune``).

        Args:
            model: the network at the weights its survivors start from.
            masks: ``{parameter name: bool tensor}``.
            kwargs: any other attribute of :class:`WinningTicket` (``trained_weights``, ``settings``...).
        """
        provenance = {**_versions(), "model_class": _qualname(type(model)), **kwargs.pop("provenance", {})}
        return cls(masks=masks, rewind_weights=model.state_dict(), provenance=provenance, **kwargs)

    # --- what it is ---------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Prunable weights of the network (every masked parameter's size)."""
        return sum(mask.numel() for mask in self.masks.values())

    @property
    def remaining(self) -> int:
        """Prunable weights the ticket keeps."""
        return sum(int(mask.sum()) for mask in self.masks.values())

    @property
    def density(self) -> float:
        """The fraction of prunable weights kept (``remaining / total``)."""
        return self.remaining / self.total

    @property
    def sparsity(self) -> float:
        """The fraction of prunable weights removed (1 − density)."""
        return 1.0 - self.density

    @property
    def compression_ratio(self) -> float:
        """``total / remaining``: how many times fewer prunable weights the ticket has (``inf`` when none is left)."""
        return self.total / self.remaining if self.remaining else float("inf")

    @property
    def sparsity_history(self) -> list[float]:
        """The sparsity after every round, 0 (dense) first."""
        return [1.0 - round_.density for round_ in self.rounds]

    @property
    def metrics(self) -> list[float | None]:
        """``evaluate(model)`` after every round's training, 0 (dense) first."""
        return [round_.metric for round_ in self.rounds]

    @property
    def structure_hash(self) -> str:
        """The SHA-256 of :attr:`structure`."""
        return self.provenance["structure_hash"]

    def layer_densities(self) -> dict[str, float]:
        """The density of each masked parameter."""
        return {name: int(mask.sum()) / mask.numel() for name, mask in self.masks.items()}

    def __repr__(self) -> str:
        metric = self.rounds[-1].metric if self.rounds else None
        return (f"WinningTicket({len(self.masks)} masked parameters, {self.remaining:,} of {self.total:,} weights "
                f"kept (density {self.density:.3f}, {self.compression_ratio:.1f}x)"
                + (f", metric {metric:.4f}" if isinstance(metric, float) else "") + ")")

    # --- putting it on a network --------------------------------------------------------------------

    def check_fits(self, model: nn.Module) -> None:
        """Raise a one-line :class:`~lthkit.LthkitError` naming the first entry of ``model``'s state dict
        that differs from the ticket's structure (a missing or extra name, a shape, a dtype)."""
        if not isinstance(model, nn.Module):
            raise LthkitError(f"a ticket is applied to an nn.Module, got a {type(model).__name__}")
        problem = first_difference(self.structure, structure_of(model))
        if problem:
            raise LthkitError(f"the model does not fit the ticket: {problem}")

    @torch.no_grad()
    def apply(self, model: nn.Module, *, weights: str = "rewind", permanent: bool = False) -> nn.Module:
        """Put the ticket on ``model``, a network of the same structure (fresh, or the one it was found on).

        Args:
            model: the network (changed in place).
            weights: ``"rewind"``: the weights the survivors start from (θ₀ or θ_k), to train the
                ticket; ``"trained"``: the weights it trained to, to use it.
            permanent: ``False``: through ``torch.nn.utils.prune`` (each masked parameter ``p``
                becomes ``p_orig``, which holds the weights, and the buffer ``p_mask``; ``p`` is
                recomputed as their product before each forward): training it keeps the mask.
                ``True``: plain parameters with the pruned weights set to zero (what
                ``prune.remove`` leaves); an optimizer can move them again.

        Returns:
            ``model``.

        Raises:
            LthkitError: ``model`` has another structure (the message names the first difference),
                or the ticket holds no trained weights.
        """
        if weights not in WEIGHTS:
            raise LthkitError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
        if not isinstance(permanent, bool):
            raise LthkitError(f"permanent must be True or False, got {permanent!r}")
        self.check_fits(model)
        state = self.rewind_weights if weights == "rewind" else self.trained_weights
        if state is None:
            raise LthkitError("this ticket holds no trained weights (it was made from masks alone): "
                              "use weights='rewind'")
        model.load_state_dict(state)
        parameters = dict(model.named_parameters())
        for name, mask in self.masks.items():
            parameter = parameters[name]
            if permanent:
                parameter.mul_(mask.to(parameter.device, parameter.dtype))
            else:
                module_name, _, parameter_name = name.rpartition(".")
                module = model.get_submodule(module_name)
                # weight_orig: the loaded parameter itself; weight_mask: the mask; weight: their product, now
                prune.custom_from_mask(module, parameter_name, mask.to(parameter.device))
        return model

    # --- files ------------------------------------------------------------------------------------

    def _header(self) -> dict:
        return {"structure": self.structure, "masked": list(self.masks),
                "rounds": [asdict(round_) for round_ in self.rounds],
                "controls": {name: [asdict(r) for r in history] for name, history in self.controls.items()},
                "settings": self.settings, "provenance": self.provenance,
                "has_trained_weights": self.trained_weights is not None}

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {_PREFIX["mask"] + name: mask for name, mask in self.masks.items()}
        tensors.update({_PREFIX["rewind"] + name: tensor for name, tensor in self.rewind_weights.items()})
        if self.trained_weights is not None:
            tensors.update({_PREFIX["trained"] + name: tensor for name, tensor in self.trained_weights.items()})
        return tensors

    def save(self, path) -> Path:
        """Write the ticket to one ``safetensors`` file (written whole or not at all).

        The tensors are the masks (``mask/<name>``), the rewind weights (``rewind/<name>``) and the
        trained weights (``trained/<name>``); the file's metadata holds the format, its version and a
        JSON header (the structure, the history, the settings, the provenance, and a SHA-256 of
        every tensor's bytes). Nothing in it is pickled: any safetensors reader can open it.

        Returns:
            The path written.
        """
        from safetensors.torch import save as safetensors_bytes

        path = Path(path)
        tensors = self._tensors()
        header = {**self._header(), "checksum": _checksum(tensors)}
        metadata = {"format": TICKET_FORMAT, "format_version": str(TICKET_FORMAT_VERSION),
                    "header": json.dumps(header, sort_keys=True)}
        atomic_write_bytes(path, safetensors_bytes(tensors, metadata=metadata))
        return path

    @classmethod
    def load(cls, path, model: nn.Module | None = None) -> "WinningTicket":
        """Read a ticket written by :meth:`save`, checking it; with ``model``, check that it fits it too.

        Args:
            path: the file.
            model: a network the ticket is meant for (checked with :meth:`check_fits`; not changed).

        Raises:
            LthkitError: the file is missing, truncated or altered, not a ticket, of a newer format,
                or for a network of another structure (the first differing entry is named).
        """
        path = Path(path)
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            raise LthkitError(f"no ticket file at {path}") from None
        except OSError as error:
            raise LthkitError(f"cannot read the ticket file {path}: {error.strerror or error}") from None
        metadata = _metadata(payload, path)
        if metadata.get("format") != TICKET_FORMAT:
            raise LthkitError(f"{path} is a safetensors file but not an lthkit ticket (its metadata names no "
                              f"{TICKET_FORMAT} format)")
        version = metadata.get("format_version", "")
        if not version.isdigit():
            raise LthkitError(f"ticket file {path} is damaged: its format version {version!r} is not a "
                              "number")
        if int(version) > TICKET_FORMAT_VERSION:
            raise LthkitError(f"ticket file {path} has format version {version}, newer than the "
                              f"{TICKET_FORMAT_VERSION} this lthkit ({__version__}) reads: upgrade lthkit to load it")
        try:
            header = json.loads(metadata["header"])
        except (KeyError, ValueError):
            raise LthkitError(f"ticket file {path} is damaged: its JSON header is missing or unreadable") from None
        from safetensors import SafetensorError
        from safetensors.torch import load as safetensors_load

        try:
            tensors = safetensors_load(payload)
        except SafetensorError as error:
            reason = str(error).split(":", 1)[-1].strip()
            raise LthkitError(f"ticket file {path} is truncated or damaged ({reason})") from None
        if _checksum(tensors) != header.get("checksum"):
            raise LthkitError(f"ticket file {path} is damaged: its tensors do not match the checksum in its header")
        try:
            ticket = cls._from_parts(header, tensors)
        except (KeyError, TypeError, ValueError) as error:
            raise LthkitError(f"ticket file {path} is damaged: its header does not describe its tensors "
                              f"({type(error).__name__}: {error})") from None
        if model is not None:
            ticket.check_fits(model)
        return ticket

    @classmethod
    def _from_parts(cls, header: dict, tensors: dict) -> "WinningTicket":
        def part(prefix: str) -> dict:
            return {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}

        rewind = part(_PREFIX["rewind"])
        order = [name for name, _, _ in header["structure"]]
        if sorted(rewind) != sorted(order):
            raise ValueError("the rewind weights name other entries than its structure")
        masks = part(_PREFIX["mask"])
        if sorted(masks) != sorted(header["masked"]):
            raise ValueError("its masks name other parameters than its header")
        trained = part(_PREFIX["trained"]) if header["has_trained_weights"] else None
        ticket = cls(masks={name: masks[name] for name in header["masked"]},
                     rewind_weights={name: rewind[name] for name in order},
                     trained_weights=None if trained is None else {name: trained[name] for name in order},
                     rounds=header["rounds"], controls=header["controls"], settings=header["settings"],
                     provenance={k: v for k, v in header["provenance"].items() if k != "structure_hash"})
        if ticket.structure != header["structure"] or ticket.structure_hash != header["provenance"]["structure_hash"]:
            raise ValueError("its tensors' shapes or types differ from its recorded structure")
        return ticket

    def _check(self) -> None:
        """The masks name parameters of the structure, with their shapes; the trained weights have the structure."""
        if not self.masks:
            raise LthkitError("a ticket needs at least one mask")
        shapes = {name: tuple(shape) for name, shape, _ in self.structure}
        for name, mask in self.masks.items():
            if name not in shapes:
                raise LthkitError(f"the mask {name!r} names no entry of the network's state dict")
            if tuple(mask.shape) != shapes[name]:
                raise LthkitError(f"the mask of {name} has shape {tuple(mask.shape)}, the weight {shapes[name]}")
        if self.trained_weights is not None:
            problem = first_difference(self.structure, structure_of(self.trained_weights), what="the trained weights")
            if problem:
                raise LthkitError(f"the trained weights do not fit the rewind weights: {problem}")


def _checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _metadata(payload: bytes, path: Path) -> dict:
    """The ``__metadata__`` of a safetensors file's header (an 8-byte length, then JSON), checked."""
    if len(payload) < 8:
        raise LthkitError(f"ticket file {path} is truncated: {len(payload)} bytes, too few for a header")
    (length,) = struct.unpack("<Q", payload[:8])
    if length > len(payload) - 8:
        raise LthkitError(f"ticket file {path} is truncated: its header needs {length:,} bytes, "
                          f"the file has {len(payload) - 8:,} after the length")
    try:
        header = json.loads(payload[8:8 + length])
    except ValueError:
        raise LthkitError(f"ticket file {path} is not a safetensors file (its header is not JSON)") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _versions() -> dict:
    return {"lthkit_version": __version__, "torch_version": torch.__version__,
            "python_version": platform.python_version()}


def _qualname(thing) -> str:
    return f"{getattr(thing, '__module__', '?')}.{getattr(thing, '__qualname__', type(thing).__name__)}"
