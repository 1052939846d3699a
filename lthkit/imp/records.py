"""What an IMP run records: per-round results, the records a store keeps, finished runs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from .. import __version__
from ..core.fields import check_bool, check_int, check_number
from ..core.files import atomic_save_tensors, atomic_write_json
from ..core.masks import Masks
from ..core.train import TrainResult
from ..errors import LthkitError
from .config import LotteryConfig


@dataclass
class RoundResult:
    """One IMP round: the mask's densities and what training it measured."""

    round: int
    density: float
    layer_density: dict
    train: TrainResult
    #: where and with what the round was trained (see :func:`lthkit.runs.cache.provenance`); set by
    #: the disk cache, empty for rounds kept in memory. Not part of :meth:`to_dict` nor of equality.
    provenance: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def early_stop_iteration(self) -> int:
        return self.train.early_stop_iteration

    @property
    def test_acc_early_stop(self) -> float:
        return self.train.test_acc_early_stop

    @property
    def test_acc_final(self) -> float:
        return self.train.test_acc_final

    @property
    def val_acc_early_stop(self) -> float:
        return self.train.val_acc_early_stop

    def to_dict(self) -> dict:
        return {"round": self.round, "density": self.density, "layer_density": self.layer_density,
                "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "RoundResult":
        """Rebuild a round from :meth:`to_dict`'s output, checking every value's type and range.

        Raises:
            LthkitError: a key is missing or unknown, or a value is not what the round recorded
                (a density that is not a fraction, a null accuracy, a non-integer iteration ...),
                so that nothing downstream (summaries, plots, the next round) sees it.
        """
        _check_keys(data, [f.name for f in dataclasses.fields(cls) if f.name != "provenance"], "round result")
        train = data["train"]
        _check_keys(train, [f.name for f in dataclasses.fields(TrainResult) if f.name != "snapshots"], "train")
        check_int(data["round"], "round", minimum=0)
        _check_share(data["density"], "density")
        if not isinstance(data["layer_density"], dict) or not data["layer_density"]:
            raise LthkitError(f"layer_density must be a non-empty dict, got {data['layer_density']!r}"[:200])
        for name, value in data["layer_density"].items():
            _check_share(value, f"layer_density[{name!r}]")
        for name in ("start_iteration", "iterations", "early_stop_iteration"):
            check_int(train[name], f"train.{name}", minimum=0)
        for name in ("val_acc_early_stop", "test_acc_early_stop", "val_acc_final", "test_acc_final", "train_acc_final"):
            _check_share(train[name], f"train.{name}")
        for name in ("val_loss_early_stop", "val_loss_final"):  # NaN is a real outcome (a diverged run)
            if not isinstance(train[name], (int, float)) or isinstance(train[name], bool):
                raise LthkitError(f"train.{name} must be a number, got {train[name]!r}")
        check_bool(train["stopped_by_patience"], "train.stopped_by_patience")
        check_number(train["seconds"], "train.seconds")
        _check_curve(train["curve"])
        return cls(round=data["round"], density=data["density"], layer_density=dict(data["layer_density"]),
                   train=TrainResult.from_dict(train))


def _check_keys(data, expected, what: str) -> None:
    if not isinstance(data, dict):
        raise LthkitError(f"{what} must be a dict, got {type(data).__name__}")
    missing, unknown = [k for k in expected if k not in data], [k for k in data if k not in expected]
    if missing or unknown:
        raise LthkitError(f"{what} has " + "; ".join(
            part for part in (f"no {', '.join(missing)}" if missing else "",
                              f"unknown keys {', '.join(map(str, unknown))}" if unknown else "") if part))


def _check_share(value, name: str) -> float:
    """A number in [0, 1]: a density or an accuracy."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise LthkitError(f"{name} must be a number in [0, 1], got {value!r}"[:200])
    return value


#: The columns of a training curve and whether an entry may be None (no train loss before the first
#: step; the test set is evaluated only at some points).
_CURVE_COLUMNS = {"iteration": False, "train_loss": True, "val_loss": False, "val_acc": False, "test_acc": True}


def _check_curve(curve) -> None:
    _check_keys(curve, list(_CURVE_COLUMNS), "train.curve")
    lengths = {len(column) if isinstance(column, list) else -1 for column in curve.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise LthkitError("train.curve must hold lists of one length")
    for name, nullable in _CURVE_COLUMNS.items():
        for value in curve[name]:
            if not (value is None and nullable) and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise LthkitError(f"train.curve[{name!r}] holds {value!r}, not a number"[:200])


@dataclass
class RoundRecord:
    """What a store keeps per round: the metrics, the mask, and the tensors needed to go on.

    ``trained_state`` is the round's trained weights (the next ticket round ranks them);
    ``rewind_state`` is θ_k, captured in round 0 when rewinding to an iteration k > 0.
    """

    result: RoundResult
    mask: Masks
    trained_state: dict | None = None
    rewind_state: dict | None = None


class RoundStore(Protocol):
    """Where :func:`run_lottery` keeps finished rounds (so an interrupted run can resume)."""

    def load(self, round_index: int) -> RoundRecord | None: ...

    def save(self, round_index: int, record: RoundRecord) -> None: ...


class MemoryStore:
    """A :class:`RoundStore` in a dict: resumable within one Python session."""

    def __init__(self):
        self.records: dict[int, RoundRecord] = {}

    def load(self, round_index: int) -> RoundRecord | None:
        return self.records.get(round_index)

    def save(self, round_index: int, record: RoundRecord) -> None:
        self.records[round_index] = record


@dataclass
class LotteryResult:
    """A finished IMP run: per-round metrics and every round's mask."""

    config: LotteryConfig
    rounds: list[RoundResult]
    masks: list[Masks] = field(repr=False)
    version: str = __version__

    @property
    def densities(self) -> list[float]:
        return [r.density for r in self.rounds]

    @property
    def test_acc_early_stop(self) -> list[float]:
        return [r.test_acc_early_stop for r in self.rounds]

    @property
    def early_stop_iterations(self) -> list[int]:
        return [r.early_stop_iteration for r in self.rounds]

    @property
    def final_masks(self) -> Masks:
        return self.masks[-1]

    def to_dict(self) -> dict:
        return {"lthkit_version": self.version, "config": self.config.to_dict(),
                "rounds": [r.to_dict() for r in self.rounds], "provenance": [r.provenance for r in self.rounds]}

    def save(self, directory) -> Path:
        """Write ``result.json`` (metrics) and ``masks.pt`` (every round's masks) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "result.json", self.to_dict())
        atomic_save_tensors(directory / "masks.pt", [{k: v.cpu() for k, v in m.items()} for m in self.masks])
        return directory

    @classmethod
    def load(cls, directory) -> "LotteryResult":
        """Read a result written by :meth:`save` (tensors with ``weights_only=True``)."""
        directory = Path(directory)
        try:
            data = json.loads((directory / "result.json").read_text())
            masks = torch.load(directory / "masks.pt", weights_only=True)
            rounds = [RoundResult.from_dict(r) for r in data["rounds"]]
            for round_result, round_provenance in zip(rounds, data.get("provenance", [])):
                round_result.provenance = dict(round_provenance)
            return cls(config=LotteryConfig.from_dict(data["config"]), rounds=rounds, masks=masks,
                       version=data.get("lthkit_version", "unknown"))
        except FileNotFoundError as error:
            raise LthkitError(f"no saved result in {directory}: {Path(error.filename).name} is missing") from None
        except Exception as error:  # JSON, unpickling (weights_only refuses anything else), missing keys
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise LthkitError(f"broken result in {directory}: {type(error).__name__}: {reason}") from None
