"""Notebook 7's small interactive: choose a mask criterion, a reset and a density, press Run.

A thin face over pure functions, like notebook 3's dashboard (:mod:`lthkit.course.dashboard`):

* :func:`explorer_config`: the controls' values → a :class:`~lthkit.imp.config.LotteryConfig`;
* :func:`lthkit.runs.experiments.run_experiments`: the config (and the IMP ticket whose mask a reset
  uses) → results, through the disk cache;
* :func:`lthkit.reporting.plots.accuracy_vs_density`: results → figure, shown as a PNG image.

Moving a control never trains: it only looks the selected run up in the cache. Training starts on
**Run** alone, with one progress bar ("weights remaining NN.N%", complete at the end, "from cache"
when nothing trained). The density's first choice is the notebook's own schedule: the runs the
notebook's study trained (:func:`lthkit.studies.anatomy.study_configs`, same configs, same cache keys)
are drawn at once.

Example:
    >>> from lthkit.runs.presets import preset_config
    >>> explorer_config(preset_config("anatomy_live"), criterion="movement", reset="sign_constant",
    ...                 density=0.1).control
    'sign_constant'
    >>> base = preset_config("anatomy_live")
    >>> explorer_config(base, criterion=base.criterion, reset="reinit") == base.replace(control="reinit")
    True
"""

from __future__ import annotations

import functools
import html
import io
import traceback

import ipywidgets as widgets

from ..errors import LthkitError
from ..imp.config import LotteryConfig
from ..imp.records import LotteryResult
from ..imp.scorers import SCORERS
from ..runs.cache import load_cached
from ..runs.experiments import run_experiments, runs_to_train
from .dashboard import _ProgressAndStatus, remaining_text

#: The resets (and the frozen-zeros variant) the explorer offers, as (label, branch) pairs.
RESET_CHOICES = (("θ₀ (the ticket)", "ticket"), ("signs of θ₀ × layer constant", "sign_constant"),
                 ("θ₀ shuffled in each layer", "shuffled_init"), ("random re-init", "reinit"),
                 ("θ₀, pruned weights frozen at θ₀", "frozen_pruned"))
_RESET_LABELS = {value: label for label, value in RESET_CHOICES}


#: The final densities the explorer offers besides the notebook's own schedule.
DENSITIES = (0.2, 0.1, 0.05, 0.02, 0.01)


def explorer_config(base: LotteryConfig, *, criterion: str, reset: str, density: float | None = None) -> LotteryConfig:
    """The run the explorer's controls select: ``base`` with that criterion, reset and final density.

    Args:
        base: the config whose model, budget, data and number of rounds are kept.
        criterion: a mask criterion (one of :meth:`lthkit.imp.scorers.Scorers.criteria`).
        reset: a branch of :data:`RESET_CHOICES`.
        density: the target fraction of weights left after the last round, in (0, 1); None keeps
            ``base``'s own rates (the notebook's study's runs: the same config, the same cache key).

    Raises:
        LthkitError: an unknown criterion or reset, or a density outside (0, 1).
    """
    if reset not in _RESET_LABELS:
        raise LthkitError(f"unknown reset {reset!r}; choose one of {', '.join(_RESET_LABELS)}")
    if density is None:
        return base.replace(criterion=criterion, control=reset)
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density < 1:
        raise LthkitError(f"density must be a number in (0, 1), got {density!r}")
    return base.replace(criterion=criterion, control=reset, prune_rate=None, target_sparsity=round(1 - density, 4))


def _reports_errors(method):
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - shown to the learner
            self.status.value = f"<b>error:</b> {html.escape(str(error))}"
            with self.errors:
                traceback.print_exc()
        return None
    return guarded


class AnatomyExplorer(_ProgressAndStatus):
    """Criterion, reset, density and Run: one ticket variant against density, overlaid run after run.

    Parts (public, so a test can drive it without a browser): ``controls`` (``"criterion"``,
    ``"reset"``, ``"density"``: None for the notebook's own schedule, or a final density), ``run_button``,
    ``status``, ``progress`` (the run's one bar), ``image`` (the plot as PNG, hidden until the first
    Run), ``errors``; ``runs`` (``{label: result}`` on the plot), ``trained`` (how many Run clicks
    trained or read something), :meth:`config`, :meth:`plotted`.

    Args:
        base: the config the controls change (default: ``notebook_preset("anatomy_live")``).
        cache_dir, data, device: as for :func:`lthkit.runs.experiments.run_experiments`.
        progress: show training progress bars.
    """

    def __init__(self, base: LotteryConfig | None = None, *, cache_dir=None, data=None, device=None,
                 progress: bool = True):
        from .modes import notebook_preset

        self.base = notebook_preset("anatomy_live") if base is None else base
        self.cache_dir, self.data, self.device, self.progress = cache_dir, data, device, progress
        self.runs: dict[str, LotteryResult] = {}
        self.trained = 0
        self._bar = None
        wide = {"style": {"description_width": "120px"}, "layout": widgets.Layout(width="420px")}
        own = 1 - self.base.target_sparsity if self.base.target_sparsity is not None else \
            (1 - self.base.per_round_rate) ** self.base.rounds
        densities = [(f"{own:.1%} in {self.base.rounds} rounds (the notebook's runs)", None)]
        densities += [(f"{density:.0%}", density) for density in DENSITIES]
        self.controls = {
            "criterion": widgets.Dropdown(options=list(SCORERS.criteria()), value=self.base.criterion,
                                          description="keep",
                                          **wide),
            "reset": widgets.Dropdown(options=RESET_CHOICES, value="ticket", description="reset survivors to",
                                      **wide),
            "density": widgets.Dropdown(options=densities, value=None, description="weights remaining", **wide),
        }
        self.run_button = widgets.Button(description="Run", button_style="primary")
        self.status = widgets.HTML()
        self.progress = widgets.Box(layout=widgets.Layout(width="100%"))
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", display="none"))
        self.errors = widgets.Output()
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.run_button.on_click(self._on_run)
        self.widget = widgets.VBox([*self.controls.values(), self.run_button, self.status, self.progress, self.image,
                                    self.errors])
        self.widget.add_class("lthkit-anatomy-explorer")
        self._on_change()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def config(self) -> LotteryConfig:
        """The run the controls select."""
        return explorer_config(self.base, criterion=self.controls["criterion"].value,
                               reset=self.controls["reset"].value, density=self.controls["density"].value)

    def label(self, config: LotteryConfig) -> str:
        final = 1 - config.target_sparsity if config.target_sparsity is not None else \
            (1 - config.per_round_rate) ** config.rounds
        return f"{config.criterion}, {_RESET_LABELS[config.control]}, to {final:.1%}"

    @_reports_errors
    def _on_change(self, _change=None) -> None:
        config = self.config()  # never trains: only the cache is looked at
        cached = load_cached(config, self.cache_dir)
        self.status.value = ("in the cache: Run draws it at once" if cached is not None
                             else "not trained yet: Run trains it")

    @_reports_errors
    def _on_run(self, _button=None) -> None:
        config = self.config()
        missing = runs_to_train([config], cache_dir=self.cache_dir)
        self.run_button.disabled = True
        try:
            if missing:
                bar = self._new_bar(sum(step.rounds + 1 for step in missing), remaining_text(1.0))
                self._set_bar(bar)
                self.status.value = f"training {html.escape(self.label(config))} …"
                try:
                    (result,) = run_experiments([config], cache_dir=self.cache_dir, data=self.data, device=self.device,
                                                progress=False,
                                                on_round=lambda _c, found: self._round_done(bar, found.density))
                except BaseException:
                    bar.close()  # unfinished: the bar turns red
                    raise
                self._finish_bar(bar, result.rounds[-1].density)
            else:
                (result,) = run_experiments([config], cache_dir=self.cache_dir, data=self.data, device=self.device,
                                            progress=False)
                self._cached_bar(1)
        finally:
            self.run_button.disabled = False
        self.trained += 1
        self.runs[self.label(config)] = result
        self._draw()
        self.status.value = (f"done: {html.escape(self.label(config))} "
                             f"({'trained' if missing else 'from the cache: nothing trained'})")

    def _draw(self) -> None:
        import matplotlib.pyplot as plt

        from ..reporting.plots import accuracy_vs_density

        figure = accuracy_vs_density({label: [result] for label, result in self.runs.items()},
                                     title="your runs (test accuracy at early stop)")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, facecolor="white")
        plt.close(figure)
        self._show_image(buffer.getvalue())

    def plotted(self) -> dict[str, tuple[list[float], list[float]]]:
        """``{label: (densities, test accuracies at early stop)}`` of the runs on the plot."""
        return {label: (result.densities, [r.test_acc_early_stop for r in result.rounds])
                for label, result in self.runs.items()}
