"""The versioned, locked, atomically written disk cache of IMP runs.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from .. import __version__, settings
from ..core.data import REPO_ROOT, default_device
from ..core.files import atomic_save_tensors, atomic_write_json
from ..core.masks import density
from ..errors import LthkitError
from ..imp.branches import get_branch
from ..imp.config import LotteryConfig, model_layout
from ..imp.records import LotteryResult, RoundRecord, RoundResult

#: The layers whose code computes results: the source of every module in them is part of every cache key.
#: The layers above (runs, reporting, studies, course, cli) orchestrate and show, and the grader is beside.
COMPUTING_PACKAGES = ("core", "imp")
#: Dict keys and keyword arguments whose string values only document (a field's ``help`` and ``doc``).
DOCUMENTATION_KEYS = frozenset({"help", "doc", "description", "metavar"})


def computing_modules(package: Path | None = None) -> list[Path]:
    """The source files whose code is part of every cache key: every module of :data:`COMPUTING_PACKAGES`.

    Args:
        package: the ``lthkit`` package folder (default: this one).

    Returns:
        The files, sorted by path.
    """
    package = Path(__file__).resolve().parents[1] if package is None else Path(package)
    return sorted(path for name in COMPUTING_PACKAGES for path in (package / name).rglob("*.py"))


class _WithoutDocumentation(ast.NodeTransformer):
    """Drops what documents code and computes nothing: docstrings, and the text of ``help``/``doc`` entries."""

    def _drop_docstring(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _drop_docstring

    def visit_Dict(self, node):
        self.generic_visit(node)
        node.values = [ast.Constant("") if isinstance(key, ast.Constant) and key.value in DOCUMENTATION_KEYS
                       else value for key, value in zip(node.keys, node.values)]
        return node

    def visit_keyword(self, node):
        self.generic_visit(node)
        if node.arg in DOCUMENTATION_KEYS:
            node.value = ast.Constant("")
        return node


def computing_source(path: Path) -> str:
    """What of a module's source the code version hashes: its syntax tree without docstrings, help texts,
    comments or layout (:class:`_WithoutDocumentation`)."""
    tree = _WithoutDocumentation().visit(ast.parse(path.read_bytes(), filename=str(path)))
    return ast.dump(tree, include_attributes=False)


@lru_cache(maxsize=4)
def code_version(package: Path | None = None) -> str:
    """lthkit's version plus a short hash of the code that computes results (:func:`computing_modules`).

    Editing a docstring, a comment, a flag's help text or anything outside :data:`COMPUTING_PACKAGES`
    keeps every cache key; editing how a network is built, pruned or trained changes them all.

    Example:
        >>> code_version().startswith(__version__ + "+")
        True
    """
    package = Path(__file__).resolve().parents[1] if package is None else Path(package)
    digest = hashlib.sha256()
    for path in computing_modules(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + computing_source(path).encode() + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def cache_root(cache_dir=None) -> Path:
    """The cache folder: ``cache_dir``, else ``$LTHKIT_CACHE``, else ``cache/`` at the repo root."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return settings.path("LTHKIT_CACHE") or REPO_ROOT / "cache"


def cache_key(config: LotteryConfig, code: str | None = None) -> str:
    """The cache key of a config: its hash together with ``code`` (default: :func:`code_version`)."""
    payload = json.dumps({"config": config.to_dict(), "code": code_version() if code is None else code},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


# --- the disk store -------------------------------------------------------------------------------

def provenance(device) -> dict:
    """Where and with what a round was computed: lthkit's code version, torch's version, the device, threads."""
    device = torch.device(device)
    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return {"code_version": code_version(), "torch": torch.__version__, "device": name,
            "threads": torch.get_num_threads()}


def _short(error: BaseException) -> str:
    """An exception as one short line of plain text (no tensor dumps, no escape codes)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = "".join(character for character in text if character.isprintable())
    text = f"{type(error).__name__}: {text}" if not isinstance(error, LthkitError) else text
    return text if len(text) <= 160 else text[:157] + "..."


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _report(message: str) -> None:
    """One line on stderr, above any progress bar (never glued to one)."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


class DiskStore:
    """A :class:`lthkit.imp.records.RoundStore` in a cache folder, one set of files per round.

    ``round_NNN.json`` holds the metrics (and the round's :func:`provenance`) and is written last,
    so it marks a finished round; ``round_NNN.masks.pt`` the mask; ``round_NNN.state.pt`` the
    tensors needed to continue. The folder is made when the first round is saved, so a run that
    fails before that leaves nothing behind.

    A round is trusted only after it is checked: metrics of the right types and ranges
    (:meth:`lthkit.imp.records.RoundResult.from_dict`), masks and weights with the layer names and
    shapes of the config's model. Anything else is reported in one line, removed with every later
    round (they were computed from it) and recomputed.

    Args:
        directory: the cache entry (see :func:`cache_entry`).
        config: the run whose rounds it holds.
        device: where the rounds are trained (recorded in their provenance).
        log: called with each one-line report (default: a line on stderr, above the progress bars).
    """

    def __init__(self, directory, config: LotteryConfig, *, device=None, log=None):
        self.directory = Path(directory)
        self.config = config
        self.device = default_device() if device is None else device
        self.log = log or _report

    def _paths(self, round_index: int) -> tuple[Path, Path, Path]:
        stem = self.directory / f"round_{round_index:03d}"
        return stem.with_suffix(".json"), Path(f"{stem}.masks.pt"), Path(f"{stem}.state.pt")

    def finished_rounds(self) -> int:
        """How many consecutive rounds, from round 0, have their metrics on disk."""
        count = 0
        while self._paths(count)[0].is_file():
            count += 1
        return count

    @contextmanager
    def locked(self):
        """A context that holds this entry's lock: one process at a time trains (or reads) its rounds.

        The lock is a file beside the entry (``<key>.lock``), held through :mod:`filelock`; a
        second process waits for the first to finish, then reads its rounds from the cache
        instead of training them again. The operating system releases the lock of a killed process.
        """
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{self.directory}.lock", is_singleton=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.log(f"lthkit: cache entry {self.directory.name} is being computed by another process; waiting for it")
            lock.acquire()
        try:
            yield self
        finally:
            lock.release()

    def load_result(self, round_index: int) -> tuple[RoundResult, dict] | None:
        """The metrics and mask of a finished round, without its state tensors (``None`` if absent)."""
        metrics_path, masks_path, _ = self._paths(round_index)
        if not self.directory.is_dir() and self.directory.exists():
            self._discard_from(round_index, LthkitError("the entry is a file, not a folder"))
            return None
        if not metrics_path.exists():
            return None
        try:
            data = json.loads(metrics_path.read_text())
            round_provenance = data.pop("provenance", {}) if isinstance(data, dict) else {}
            if not isinstance(round_provenance, dict):
                raise LthkitError(f"provenance must be a dict, got {round_provenance!r}"[:200])
            result = RoundResult.from_dict(data)
            result.provenance = round_provenance
            if result.round != round_index:
                raise LthkitError(f"the metrics are of round {result.round}")
            mask = torch.load(masks_path, weights_only=True)
            self._check_masks(mask, result)
            return result, mask
        except Exception as error:  # any decoding or checking problem: report, drop, recompute
            self._discard_from(round_index, error)
            return None

    def load(self, round_index: int) -> RoundRecord | None:
        loaded = self.load_result(round_index)
        if loaded is None:
            return None
        result, mask = loaded
        try:
            state = torch.load(self._paths(round_index)[2], weights_only=True)
            if not isinstance(state, dict) or set(state) != {"trained_state", "rewind_state"}:
                raise LthkitError("the state file does not hold trained_state and rewind_state")
            self._check_state(state["trained_state"], "trained_state")
            if state["rewind_state"] is not None:
                self._check_state(state["rewind_state"], "rewind_state")
            elif round_index == 0 and self._needs_rewind_state():
                raise LthkitError("round 0 lacks the rewind weights θ_k")
            return RoundRecord(result=result, mask=mask, trained_state=state["trained_state"],
                               rewind_state=state["rewind_state"])
        except Exception as error:
            self._discard_from(round_index, error)
            return None

    def save(self, round_index: int, record: RoundRecord) -> None:
        if not record.result.provenance:
            record.result.provenance = provenance(self.device)
        self._make_folder()
        metrics_path, masks_path, state_path = self._paths(round_index)
        atomic_save_tensors(masks_path, record.mask)
        atomic_save_tensors(state_path, {"trained_state": record.trained_state, "rewind_state": record.rewind_state})
        # Last: marks the round finished.
        atomic_write_json(metrics_path, {**record.result.to_dict(), "provenance": record.result.provenance})

    def _make_folder(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            self._discard_from(0, LthkitError("the entry is a file, not a folder"))
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.is_file():
            atomic_write_json(config_file, {"config": self.config.to_dict(), "code_version": code_version()})

    def _check_masks(self, mask, result: RoundResult) -> None:
        """The mask must name the model's prunable weights with their shapes, as bools, and give the metrics'
        densities."""
        shapes = model_layout(self.config.model)[0]
        _check_tensors(mask, shapes, "mask", dtype=torch.bool)
        if abs(density(mask) - result.density) > 1e-9 or set(result.layer_density) != set(shapes):
            raise LthkitError("the mask does not match the metrics' densities")

    def _check_state(self, state, name: str) -> None:
        _check_tensors(state, model_layout(self.config.model)[1], name)

    def _needs_rewind_state(self) -> bool:
        """Whether round 0 must hold θ_k (known without the data only for an iteration budget)."""
        config = self.config
        if not get_branch(config.control).uses_rewind_point or config.rewind in ("init", "none"):
            return False
        if config.rewind == "iteration":
            return config.rewind_iteration > 0
        return config.train.iterations is not None and config.rewind_point(config.train.iterations) > 0

    def _discard_from(self, round_index: int, error: BaseException) -> None:
        """Remove a corrupt round and every later one (they were computed from it)."""
        self.log(f"lthkit: cache entry {self.directory.name} round {round_index} is corrupt ({_short(error)}); "
                 "recomputing it")
        if self.directory.exists() and not self.directory.is_dir():
            self.directory.unlink()
            return
        later = round_index
        while any(path.exists() or path.is_symlink() for path in self._paths(later)):
            for path in self._paths(later):
                _remove(path)
            later += 1


def _check_tensors(tensors, shapes: dict, name: str, dtype=None) -> None:
    """``tensors`` must be a dict of exactly the names of ``shapes``, each a tensor of that shape (and ``dtype``)."""
    if not isinstance(tensors, dict) or list(tensors) != list(shapes):
        names = list(tensors)[:6] if isinstance(tensors, dict) else type(tensors).__name__
        raise LthkitError(f"{name} names {names}, not the model's {list(shapes)}"[:200])
    for key, shape in shapes.items():
        tensor = tensors[key]
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape or \
                (dtype is not None and tensor.dtype != dtype):
            what = f"shape {tuple(tensor.shape)}, {tensor.dtype}" if isinstance(tensor, torch.Tensor) else \
                type(tensor).__name__
            raise LthkitError(f"{name}[{key!r}] is {what}; the model needs shape {shape}"
                              + (f", {dtype}" if dtype is not None else ""))


def cache_entry(config: LotteryConfig, cache_dir=None) -> Path:
    """The cache folder of a config."""
    return cache_root(cache_dir) / cache_key(config)


def load_cached(config: LotteryConfig, cache_dir=None) -> LotteryResult | None:
    """The finished result of ``config`` from the cache, or ``None`` if any round is missing."""
    directory = cache_entry(config, cache_dir)
    if not (directory / "round_000.json").exists():
        return None
    store = DiskStore(directory, config)
    rounds, masks = [], []
    for round_index in range(config.rounds + 1):
        loaded = store.load_result(round_index)
        if loaded is None:
            return None
        rounds.append(loaded[0])
        masks.append(loaded[1])
    return LotteryResult(config=config, rounds=rounds, masks=masks)


def clear_cache(config: LotteryConfig | None = None, cache_dir=None) -> None:
    """Delete one config's cache entry (and its lock file), or (``config=None``) the whole cache folder."""
    target = cache_root(cache_dir) if config is None else cache_entry(config, cache_dir)
    _remove(target)
    if config is not None:
        Path(f"{target}.lock").unlink(missing_ok=True)
