"""How much the course notebooks train: fast or full mode, and their named presets.
"""

from __future__ import annotations

from .. import settings
from ..core.data import get_dataset
from ..errors import LthkitError
from ..imp.config import LotteryConfig
from ..runs.presets import NOTEBOOK_PRESET_NAMES, PRESETS, preset_config

#: The environment variable that switches the notebooks to fast mode.
FAST_ENV = "LTHKIT_FAST"

#: ``{name: {"full": config, "fast": config}}`` of the notebooks: their entries of the one preset
#: registry, :data:`lthkit.runs.presets.PRESETS`; read them through :func:`notebook_preset`.
NOTEBOOK_PRESETS: dict[str, dict[str, LotteryConfig]] = {name: PRESETS[name] for name in NOTEBOOK_PRESET_NAMES}


def fast_mode() -> bool:
    """Whether ``$LTHKIT_FAST`` asks for fast mode (``1``/``true``/``yes``/``on``; unset: no).

    Raises:
        LthkitError: the variable holds something else (a typo must not silently run the full
            budgets inside a test).
    """
    return settings.flag(FAST_ENV, default=False)


def notebook_preset(name: str, *, fast: bool | None = None, **changes) -> LotteryConfig:
    """The config a notebook runs, in the current mode, optionally changed.

    Args:
        name: one of :data:`NOTEBOOK_PRESETS` (``kata``, ``imp``, ``explore``, ``rewind_lenet``,
            ``rewind_conv``, ``stability``).
        fast: force a mode; default: :func:`fast_mode`.
        **changes: fields to change, as for :meth:`LotteryConfig.replace` (``train`` and
            ``data`` may be dicts of changes).

    Returns:
        A :class:`~lthkit.imp.config.LotteryConfig`.

    Raises:
        LthkitError: unknown name or bad changes.

    Example:
        >>> notebook_preset("imp", fast=True, control="reinit").control
        'reinit'
    """
    if name not in NOTEBOOK_PRESETS:
        raise LthkitError(f"unknown notebook preset {name!r}; choose one of {', '.join(NOTEBOOK_PRESETS)}")
    return preset_config(name, fast=fast_mode() if fast is None else fast, **changes)


def describe(config: LotteryConfig) -> str:
    """One line saying what ``config`` trains on and for how long, with the mode.

    Example:
        >>> describe(notebook_preset("imp", fast=True))  # doctest: +ELLIPSIS
        'lenet300_100 on 5,000 MNIST training images (1,000 validation, 10,000 test), 300 iterations ...'
    """
    data, train = config.data, config.train
    images = f"{data.train_size:,}" if data.train_size is not None else f"all {60_000 - data.validation_size:,}"
    test = f"{data.test_size:,}" if data.test_size is not None else "10,000"
    budget = f"{train.iterations:,} iterations" if train.iterations is not None else f"{train.epochs:g} epochs"
    mode = f"fast mode ({FAST_ENV}=1)" if fast_mode() else f"full mode (set {FAST_ENV}=1 for a quick check)"
    return (f"{config.model} on {images} {get_dataset(data.dataset).label} training images "
            f"({data.validation_size:,} validation, {test} test), "
            f"{budget} of {train.optimizer} at lr {train.lr:g} per training; {mode}")
