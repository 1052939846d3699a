"""The interactive dashboard of notebook 3: sweep the weights remaining, rounds, rewinding, controls and scope.

The dashboard is a thin face over pure functions, each usable (and tested) on its own:

* :func:`config_from_controls`: the controls' values → a :class:`~lthkit.imp.config.LotteryConfig`;
* :func:`lthkit.runs.experiments.run_experiments`: configs → :class:`~lthkit.imp.records.LotteryResult`,
  through the disk cache (finished configs come back at once, interrupted ones resume);
* :func:`lthkit.reporting.plots.accuracy_and_early_stop`: results → figure, shown as a PNG image.

Moving a control never trains: it only looks the selected config up in the cache, and draws it
if it is there. Training starts on the **Run** button alone. Errors raised in a callback are
shown in the dashboard's error area, never lost in a log.

Notebook 6's :class:`StabilityExplorer` is a smaller face of the same kind over
:func:`lthkit.studies.stability.pair_for`, :func:`lthkit.runs.experiments.run_experiments` and
:func:`lthkit.reporting.plots.error_along_path`: choose k and the weights remaining, press **Run**.

Example:
    >>> from lthkit.course.dashboard import Dashboard
    >>> dashboard = Dashboard()       # doctest: +SKIP
    >>> dashboard                     # in a notebook cell: shows the dashboard  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import functools
import html
import io
import itertools
import time
import traceback
from typing import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from ..core.data import REPO_ROOT
from ..errors import LthkitError
from ..imp.branches import BRANCHES
from ..imp.config import LotteryConfig
from ..imp.records import LotteryResult, RoundResult
from ..reporting.plots import accuracy_and_early_stop, format_density_axis, summary_series
from ..reporting.summaries import read_summary_csv
from ..runs.cache import load_cached
from ..runs.experiments import run_experiments, runs_to_train
from .glossary import glossary_html
from .modes import notebook_preset

#: The dashboard's choices, as (label shown, value) pairs.
REWIND_CHOICES = (("θ₀ (initialization)", "init"), ("θ_k (iteration k)", "iteration"),
                  ("late (fraction of training)", "fraction"), ("none (keep trained weights)", "none"))
SCOPE_CHOICES = (("layer-wise", "layer"), ("global", "global"))
METRIC_CHOICES = (("test accuracy at early stop", "test_acc_early_stop"),
                  ("test accuracy at end of training", "test_acc_final"))
#: The keys of :attr:`Dashboard.controls` that choose the config (the others only change the view).
CONFIG_CONTROLS = ("density", "rounds", "rewind", "rewind_iteration", "rewind_fraction", "control", "scope", "seed")
#: The most trials (seeds) one Run trains per curve.
MAX_TRIALS = 5
#: The dashboard's layouts (see :class:`Dashboard`).
LAYOUTS = ("projector", "wide")
#: The controls the projector layout shows above the plot (the others go under "more options").
MAIN_CONTROLS = ("density", "rounds", "rewind", "control", "trials")
#: The projector layout's grid: as many 290-px columns as the screen holds.
GRID_COLUMNS = "repeat(auto-fill, minmax(290px, 1fr))"
#: The committed full-protocol measurement the reference toggle draws (see results/paper-lenet300/README.md).
REFERENCE_CSV = REPO_ROOT / "results" / "paper-lenet300" / "summary.csv"
#: The controls the reference shows when no run is plotted.
REFERENCE_DEFAULT_CONTROLS = ("ticket", "reinit")


def config_from_controls(base: LotteryConfig, *, density: float, rounds: int, rewind: str, control: str,
                         scope: str, rewind_iteration: int = 0, rewind_fraction: float = 0.0,
                         seed: int | None = None) -> LotteryConfig:
    """The config the dashboard's controls select, built on ``base``.

    A rewind parameter that the chosen strategy does not use is reset to 0, so that moving, say,
    the iteration slider while rewinding to θ₀ selects the same (cached) config.

    Args:
        base: everything the controls do not set (model, training budget, data, layer rates).
        density: the weights remaining after ``rounds`` rounds, in (0, 1] (the glossary's word; the
            config stores its complement, ``target_sparsity``).
        rounds: pruning rounds after the dense round 0.
        rewind: ``"init"``, ``"iteration"``, ``"fraction"`` or ``"none"``.
        control: ``"ticket"``, ``"reinit"`` or ``"random_prune"``.
        scope: ``"layer"`` or ``"global"``.
        rewind_iteration: k, for ``rewind="iteration"``.
        rewind_fraction: the fraction of training, for ``rewind="fraction"``.
        seed: the trial (default: ``base.seed``).

    Returns:
        A new :class:`~lthkit.imp.config.LotteryConfig`.

    Raises:
        LthkitError: an invalid combination (random pruning without a rewind point, k past the
            training budget, ...).

    Example:
        >>> config = config_from_controls(LotteryConfig(), density=0.2, rounds=4, rewind="init",
        ...                               control="ticket", scope="global")
        >>> round(config.per_round_rate, 3)
        0.331
    """
    return base.replace(
        prune_rate=None, target_sparsity=round(1 - float(density), 6), rounds=int(rounds), rewind=rewind,
        control=control,
        scope=scope, rewind_iteration=int(rewind_iteration) if rewind == "iteration" else 0,
        rewind_fraction=float(rewind_fraction) if rewind == "fraction" else 0.0,
        seed=base.seed if seed is None else int(seed))


def run_label(config: LotteryConfig) -> str:
    """A short legend label that tells runs of the dashboard apart.

    Example:
        >>> run_label(LotteryConfig(rounds=5, target_sparsity=0.8))
        'winning ticket, layer-wise, rewind θ₀, 20% remaining after 5 rounds'
    """
    rewind = {"init": "rewind θ₀", "iteration": f"rewind θ_{config.rewind_iteration}",
              "fraction": f"late rewind ({config.rewind_fraction:.0%})", "none": "no rewind"}[config.rewind]
    if config.target_sparsity is not None:
        amount = f"{1 - config.target_sparsity:.0%} remaining after {config.rounds} round{'s' * (config.rounds != 1)}"
    else:
        amount = f"{config.per_round_rate:.0%}/round × {config.rounds}"
    scope = {value: name for name, value in SCOPE_CHOICES}[config.scope]
    label = f"{BRANCHES.label(config.control)}, {scope}, {rewind}, {amount}"
    return label if config.seed == 0 else f"{label}, seed {config.seed}"


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes (what the dashboard's image shows)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, facecolor=figure.get_facecolor())
    return buffer.getvalue()


def reference_label(control: str, trials: int) -> str:
    """The legend label of the reference curve of ``control`` (what it is: the full protocol, its trials)."""
    return f"reference: {BRANCHES.label(control)} (full protocol, {trials} trials, P_m)"


def reference_series(rows: Sequence[Mapping], metric: str, controls: Sequence[str]) -> dict[str, tuple]:
    """``{reference label: (densities, values of shape (trials, rounds))}`` of ``controls`` in ``rows``.

    Args:
        rows: a ``summary.csv``'s rows (:func:`lthkit.reporting.summaries.read_summary_csv`).
        metric: the column to draw.
        controls: which controls to take (those absent from ``rows`` are skipped).
    """
    series = {}
    for control in controls:
        mine = [row for row in rows if row["control"] == control]
        if mine:
            ((densities, values),) = summary_series(mine, metric).values()
            series[reference_label(control, len(values))] = (densities, values)
    return series


def _draw_reference(axis, series: Mapping[str, tuple], scale: float) -> None:
    """The reference curves, light and dashed, behind everything else (zorder below the runs')."""
    for label, (densities, values) in series.items():
        control = next(c for c in BRANCHES if label == reference_label(c, len(values)))
        values = values * scale
        color = BRANCHES.colour(control)
        axis.plot(densities, values.mean(0), linestyle="--", linewidth=1.2, color=color, alpha=0.45, zorder=1,
                  label=label)
        band = axis.fill_between(densities, values.min(0), values.max(0), color=color, alpha=0.08, linewidth=0,
                                 zorder=0.5)
        band.set_gid(label)


def _color_by_control(axes, groups: Mapping[str, list]) -> None:
    """Give each curve its control's color (as the reference has) when no two curves share a control."""
    controls = {label: group[0].config.control for label, group in groups.items() if group}
    if len(set(controls.values())) != len(controls):
        return
    for axis in axes:
        for artist in [*axis.get_lines(), *axis.collections]:
            name = artist.get_label() if artist in axis.get_lines() else artist.get_gid()
            label = next((label for label in controls if name in (label, f"{label} ({len(groups[label])} trials)")),
                         None)
            if label is not None and not str(name).startswith("reference"):
                color = BRANCHES.colour(controls[label])
                artist.set_color(color) if artist in axis.get_lines() else artist.set_facecolor(color)


def draw_runs(runs: Mapping[str, LotteryResult | Sequence[LotteryResult]], *, metric: str = "test_acc_early_stop",
              reference: Sequence[Mapping] | None = None, reference_controls: Sequence[str] = REFERENCE_DEFAULT_CONTROLS,
              figsize=(10.5, 4.0)) -> Figure:
    """The dashboard's figure of ``{label: result or [results of several trials]}``.

    A curve of several trials is their mean with a min/max band. A hint is drawn instead when
    there is nothing to show.

    Args:
        runs: the curves.
        metric: the accuracy to plot (``"test_acc_early_stop"`` or ``"test_acc_final"``).
        reference: rows of a full-protocol ``summary.csv`` to draw behind the runs, light and
            dashed (mean and min/max band per control), or None.
        reference_controls: the controls of ``reference`` to draw.
        figsize: the size without the legend.

    Built on a bare :class:`~matplotlib.figure.Figure` (not pyplot), so notebooks never display
    it by accident and nothing accumulates in pyplot's figure list.
    """
    groups = {label: [group] if isinstance(group, LotteryResult) else list(group) for label, group in runs.items()}
    panels = {}
    if reference:
        panels = {0: reference_series(reference, metric, reference_controls),
                  1: reference_series(reference, "early_stop_iter", reference_controls)}
    legend_rows = (len(groups) + len(panels.get(0, ())) + 1) // 2
    figure = Figure(figsize=(figsize[0], figsize[1] + 0.3 * legend_rows), dpi=100, facecolor="white")
    axes = figure.subplots(1, 2)
    for index, series in panels.items():
        _draw_reference(axes[index], series, 100.0 if index == 0 else 1.0)
    if groups or panels:
        if groups:
            accuracy_and_early_stop(groups, axes=axes, metric=metric)
            _color_by_control(axes, groups)
        else:
            when = "at early stop" if metric.endswith("early_stop") else "at end of training"
            for axis in axes:
                format_density_axis(axis)
            axes[0].set_ylabel(f"test accuracy {when} (%)")
            axes[1].set_ylabel("early-stop iteration")
        # The legend goes below both panels, where it never hides a curve, however many runs.
        handles, labels = axes[0].get_legend_handles_labels()
        if axes[0].get_legend() is not None:
            axes[0].get_legend().remove()
        figure.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
    else:
        for axis in axes:
            axis.set_xscale("log")
            axis.set_xlim(0.01, 1.0)
            format_density_axis(axis, [1.0, 0.3, 0.1, 0.03, 0.01])
            axis.set_yticks([])
        axes[0].set_ylabel("test accuracy (%)")
        axes[1].set_ylabel("early-stop iteration")
        axes[0].text(0.5, 0.5, "nothing to show yet:\nchoose a configuration and press Run", ha="center",
                     va="center", transform=axes[0].transAxes, color="0.35")
    # Fixed margins, not tight_layout: the labels never change, and a redraw must stay fast.
    height = figure.get_figheight()
    figure.subplots_adjust(left=0.07, right=0.98, top=1 - 0.15 / height, wspace=0.2,
                           bottom=(0.55 + 0.3 * legend_rows + 0.1) / height)
    return figure


def _partial_result(config: LotteryConfig, rounds: list[RoundResult]) -> LotteryResult:
    """A result of the rounds finished so far, to draw a run while it trains."""
    return LotteryResult(config=config, rounds=list(rounds), masks=[])


def overlapping_curves(groups: Mapping[str, Sequence[LotteryResult]], metric: str = "test_acc_early_stop",
                       ) -> list[tuple[str, str, list[float]]]:
    """Pairs of curves whose difference is smaller than the spread of their trials.

    Two curves of several trials each overlap at a density (both reached within 2%) when their
    min/max bands intersect: the gap between their means is then within what another trial could
    change. The dense round (100%) is left out: every control starts from the same network there.

    Args:
        groups: ``{label: [results of the curve's trials]}``; curves of one trial have no spread
            and are skipped.
        metric: the value compared.

    Returns:
        ``(label_a, label_b, densities where they overlap)`` for each pair that overlaps somewhere.

    Example:
        >>> overlapping_curves({"ticket": tickets, "re-init": reinits})  # doctest: +SKIP
        [('ticket', 're-init', [0.51, 0.41])]
    """
    series = {label: next(iter(summary_series({label: list(group)}, metric).values()))
              for label, group in groups.items() if len(group) > 1}
    found = []
    for (label_a, (dens_a, vals_a)), (label_b, (dens_b, vals_b)) in itertools.combinations(series.items(), 2):
        where = []
        for i, density in enumerate(dens_a):
            matches = np.flatnonzero(np.abs(dens_b / density - 1) < 0.02)
            if density >= 0.999 or not len(matches):
                continue
            j = matches[0]
            if max(vals_a[:, i].min(), vals_b[:, j].min()) <= min(vals_a[:, i].max(), vals_b[:, j].max()):
                where.append(float(density))
        if where:
            found.append((label_a, label_b, where))
    return found


def _reports_errors(method):
    """Run a callback so that any error lands in the dashboard's error area, not in a lost log."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except KeyboardInterrupt:  # Kernel → Interrupt during a run: stop quietly, keep what is cached
            self._set_status("interrupted: every finished round is cached, and Run resumes after the last one",
                             "warning")
        except Exception as error:  # noqa: BLE001 - shown to the learner, with its traceback
            self.report_error(error)
        return None

    return guarded


def _trials_text(trials: int) -> str:
    return f" ({trials} trials)" if trials > 1 else ""


def _short_names(config_a: LotteryConfig, config_b: LotteryConfig, label_a: str, label_b: str) -> tuple[str, str]:
    """Two curves' names for a sentence: the controls' names when only the control tells them apart."""
    if config_a.replace(control=config_b.control) == config_b:
        return BRANCHES.label(config_a.control), BRANCHES.label(config_b.control)
    return label_a, label_b


#: The one format of a run's progress bar: how much of the network the round just trained kept.
REMAINING = "weights remaining {density:.1%}"


def remaining_text(density: float) -> str:
    """The progress bar's label after a round: ``weights remaining 76.3%`` (no internal names, one format).

    Example:
        >>> remaining_text(0.763)
        'weights remaining 76.3%'
    """
    return REMAINING.format(density=density)


class _ProgressAndStatus:
    """The progress bar and status line of an interactive (``self.progress``, ``self.status``, ``self._bar``).

    One bar per run: it counts the networks trained (``3/7``) and says how many weights the last
    round kept (:func:`remaining_text`); a run drawn from the cache shows a full bar labelled
    ``from cache``; a finished run's bar is always complete (green), however its rounds were counted.
    """

    def _new_bar(self, total: int, description: str):
        from tqdm.notebook import tqdm as notebook_tqdm

        # display=False: the bar's widget goes into the interactive instead of the cell's output.
        return notebook_tqdm(total=total, desc=description, unit="training", display=False, mininterval=0,
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} trainings")

    def _set_bar(self, bar) -> None:
        if self._bar is not None and self._bar is not bar:
            self._bar.close()
        self._bar = bar
        self.progress.children = (bar.container,)

    def _round_done(self, bar, density: float) -> None:
        """One network trained: count it, and say how many weights it kept."""
        bar.set_description_str(remaining_text(density), refresh=False)
        bar.update(1)

    def _finish_bar(self, bar, density: float | None = None) -> None:
        """A run that finished: the bar complete (shared rounds make fewer updates than planned), green."""
        if density is not None:
            bar.set_description_str(remaining_text(density), refresh=False)
        if bar.total and bar.n < bar.total:
            bar.update(bar.total - bar.n)
        bar.close()

    def _cached_bar(self, count: int = 1) -> None:
        """Nothing to train: a full bar that says so."""
        bar = self._new_bar(max(1, count), "from cache")
        self._set_bar(bar)
        self._finish_bar(bar)

    def _set_status(self, message: str, kind: str = "info") -> None:
        # Mid-tone colors: readable on light and dark themes alike.
        colors = {"info": "inherit", "success": "#43a047", "warning": "#ef8f00", "danger": "#e53935"}
        self.status.value = f'<span style="color: {colors[kind]}">{message}</span>'

    def _show_image(self, png: bytes) -> None:
        """Put a PNG into ``self.image`` and show it (hidden while empty: no broken-image icon before the first Run)."""
        self.image.value = png
        self.image.layout.display = "" if png else "none"


class Dashboard(_ProgressAndStatus):
    """Interactive IMP sweeps: choose a config, press Run, compare accuracy against density.

    Display it by making it the last expression of a cell. Its parts are public, so that a test
    (or a curious learner) can drive it without a browser:

    * ``controls``: ``{name: widget}``. Config controls: ``"density"`` (the weights remaining after
      the last round, a FloatSlider), ``"rounds"`` (IntSlider), ``"rewind"`` (Dropdown: ``init``, ``iteration``,
      ``fraction``, ``none``), ``"rewind_iteration"`` (k, IntSlider), ``"rewind_fraction"``
      (FloatSlider), ``"control"`` (Dropdown: ``ticket``, ``reinit``, ``random_prune``),
      ``"scope"`` (Dropdown: ``layer``, ``global``), ``"seed"`` (the first trial's seed),
      ``"trials"`` (IntSlider 1-5: Run trains seeds ``seed`` … ``seed + trials - 1`` and draws
      their mean with a min/max band). View controls: ``"metric"`` (accuracy at early stop or at
      the end), ``"overlay"`` (Checkbox: keep earlier runs on the plot) and ``"reference"``
      (Checkbox: draw the committed full-protocol curves of :data:`REFERENCE_CSV` behind the runs).
    * ``run_button`` (text "Run") and ``clear_button`` ("Clear plot").
    * ``image``: the plot, an :class:`ipywidgets.Image` of PNG bytes, replaced in place.
    * ``progress``: the box holding the run's one progress bar (trainings done, and "weights
      remaining NN.N%" after each round; "from cache" when nothing had to train).
    * ``log``: an Output widget that catches anything the training prints (it stays empty: the
      rounds show no bars of their own).
    * ``errors``: an Output widget where errors raised in callbacks appear.
    * ``status``: one line saying what the dashboard is doing or has just done.

    Each part carries a stable CSS class for browser tests: ``lthkit-dashboard`` (the whole),
    ``lthkit-control-<name>`` (``_`` written ``-``), ``lthkit-run``, ``lthkit-clear``,
    ``lthkit-status``, ``lthkit-progress``, ``lthkit-training-log``, ``lthkit-plot``,
    ``lthkit-errors``.

    Methods: :meth:`config` (the selected config), :meth:`trial_configs` (one per trial),
    :meth:`plotted` (what is drawn, as numbers; ``bands=True``: the min/max bands), :meth:`redraw`,
    :meth:`clear`, :meth:`snapshot` (the plot as a static image). Attributes: ``groups``
    (``{label: [results of its trials]}`` pinned on the plot), ``runs`` (``{label: first trial}``),
    ``figure`` (the last matplotlib Figure), ``last_draw_seconds``.

    Example (what the tests do)::

        dashboard = Dashboard()
        dashboard.controls["density"].value = 0.2    # costs nothing: no training
        dashboard.run_button.click()                 # trains (or reads the cache), then draws
        dashboard.plotted()                          # {label: (densities, accuracies in %)}

    Args:
        base: the config the controls start from and leave alone (model, budget, data);
            default: ``notebook_preset("explore")`` (fast under ``LTHKIT_FAST=1``).
        cache_dir: the run cache (see :func:`lthkit.runs.cache.cache_root`).
        data: MNIST in memory; default: loaded once per process from ``base.data``.
        device: ``"cpu"`` or ``"cuda"``; default: the GPU when there is one.
        progress: kept for compatibility; the run's one bar is always shown (the rounds never show their own).
        layout: ``"projector"`` (default): the main controls and **Run** in a compact grid above a
            full-width plot, the other options under "more options", so that at 1024×768 the plot and
            Run fit on the first screen; ``"wide"``: every control shown, in two columns.
    """

    def __init__(self, base: LotteryConfig | None = None, *, cache_dir=None, data=None, device=None,
                 progress: bool = True, layout: str = "projector"):
        self.base = notebook_preset("explore") if base is None else base
        if not isinstance(self.base, LotteryConfig):
            raise LthkitError(f"base must be a LotteryConfig, got {type(self.base).__name__}")
        if layout not in LAYOUTS:
            raise LthkitError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.layout = layout
        self.cache_dir, self.data, self.device, self.show_training_bars = cache_dir, data, device, progress
        self.groups: dict[str, list[LotteryResult]] = {}
        self.figure: Figure | None = None
        self.last_draw_seconds = 0.0
        self._selected: tuple[str, list[LotteryResult]] | None = None
        self._kept: tuple[str, list[LotteryResult]] | None = None
        self._running: tuple[str, list[LotteryResult]] | None = None
        self._reference_rows: list[dict] | None = None
        self._known: dict[LotteryConfig, LotteryResult] = {}
        self._drawn = None  # what the image shows, to skip redrawing the same thing
        self._bar = None
        self._build()
        self._on_change()
        self.redraw()

    # --- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        base = self.base
        budget = self._budget()
        if base.target_sparsity is not None:
            density = 1 - base.target_sparsity
        else:
            density = (1 - base.per_round_rate) ** base.rounds
        wide = {"style": {"description_width": "150px"}, "layout": widgets.Layout(width="430px")}
        slider = {"continuous_update": False, **wide}
        self.controls = {
            "density": widgets.FloatSlider(value=round(density, 2), min=0.01, max=0.95, step=0.01,
                                           description="weights remaining", readout_format=".0%", **slider),
            "rounds": widgets.IntSlider(value=base.rounds, min=1, max=20, description="pruning rounds", **slider),
            "rewind": widgets.Dropdown(options=REWIND_CHOICES, value=base.rewind, description="rewind to", **wide),
            "rewind_iteration": widgets.IntSlider(value=min(base.rewind_iteration or 100, budget - 1), min=0,
                                                  max=budget - 1, description="k (iteration)", **slider),
            "rewind_fraction": widgets.FloatSlider(value=base.rewind_fraction or 0.5, min=0.0, max=0.95, step=0.05,
                                                   description="late: fraction", readout_format=".0%", **slider),
            "control": widgets.Dropdown(options=[(BRANCHES.label(name), name) for name in BRANCHES.controls()],
                                        value=base.control, description="train", **wide),
            "scope": widgets.Dropdown(options=SCOPE_CHOICES, value=base.scope, description="pruning scope", **wide),
            "seed": widgets.BoundedIntText(value=base.seed, min=0, max=999, description="trial (seed)", **wide),
            "trials": widgets.IntSlider(value=1, min=1, max=MAX_TRIALS, description="trials (seeds)", **slider),
            "metric": widgets.Dropdown(options=METRIC_CHOICES, value="test_acc_early_stop", description="plot", **wide),
            "overlay": widgets.Checkbox(value=True, description="keep earlier runs on the plot (overlay)",
                                        indent=False, layout=widgets.Layout(width="430px")),
            "reference": widgets.Checkbox(value=False, description="reference: the paper-scale run behind (full "
                                          "protocol)", indent=False, layout=widgets.Layout(width="430px")),
        }
        self.run_button = widgets.Button(description="Run", button_style="primary",
                                         tooltip="Train the selected configuration (or draw it from the cache)")
        self.clear_button = widgets.Button(description="Clear plot", tooltip="Remove every run from the plot")
        self.status = widgets.HTML()
        self.progress = widgets.Box(layout=widgets.Layout(width="100%"))
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.errors = widgets.Output(layout=widgets.Layout(max_height="320px", overflow="auto"))
        self.log = widgets.Output(layout=widgets.Layout(max_height="160px", overflow="auto"))

        # Stable CSS classes (lthkit-...): a browser test finds each part by name, never by position.
        for name, control in self.controls.items():
            control.add_class(f"lthkit-control-{name.replace('_', '-')}")
        for part, css_class in ((self.run_button, "lthkit-run"), (self.clear_button, "lthkit-clear"),
                                (self.status, "lthkit-status"), (self.progress, "lthkit-progress"),
                                (self.image, "lthkit-plot"), (self.errors, "lthkit-errors"),
                                (self.log, "lthkit-training-log")):
            part.add_class(css_class)

        for name in (*CONFIG_CONTROLS, "trials"):
            self.controls[name].observe(self._on_change, names="value")
        self.controls["metric"].observe(self._on_view_change, names="value")
        self.controls["reference"].observe(self._on_view_change, names="value")
        self.run_button.on_click(self._on_run)
        self.clear_button.on_click(self._on_clear)

        # The glossary, folded under the plot: the words on the controls and axes, defined once (docs/glossary.md).
        self.help = widgets.Accordion(children=[widgets.HTML(glossary_html())], selected_index=None)
        self.help.set_title(0, "help: the words used here (weights remaining, P_m, matching, rewinding, ...)")
        self.help.add_class("lthkit-help")
        title = widgets.HTML(f"<b>Lottery-ticket explorer</b>: {html.escape(base.model)}, "
                             f"{self._budget():,} iterations per training; moving a control never trains, "
                             f"<b>Run</b> does")
        buttons = widgets.HBox([self.run_button, self.clear_button])
        if self.layout == "wide":
            names = list(self.controls)
            left = widgets.VBox([self.controls[n] for n in names[:5]])
            right = widgets.VBox([self.controls[n] for n in names[5:]] + [buttons])
            controls = widgets.HBox([left, right])
            parts = [title, controls, self.status, self.progress, self.log, self.image, self.help, self.errors]
        else:
            # A projector: the main controls and Run in a grid that wraps to the screen's width, the plot
            # full width under them, the rest folded away (a lecture hall sees the plot, not the knobs).
            for name in self.controls:
                self.controls[name].layout.width = "auto"
                self.controls[name].style.description_width = "110px"
            main = [self.controls[name] for name in MAIN_CONTROLS] + [buttons]
            grid = widgets.GridBox(main, layout=widgets.Layout(grid_template_columns=GRID_COLUMNS, grid_gap="2px 12px",
                                                               width="100%"))
            more_grid = widgets.GridBox([self.controls[name] for name in self.controls if name not in MAIN_CONTROLS],
                                        layout=widgets.Layout(grid_template_columns=GRID_COLUMNS, grid_gap="2px 12px",
                                                              width="100%"))
            more = widgets.Accordion(children=[more_grid], selected_index=None)
            more.set_title(0, "more options: scope, seed, k, late fraction, plotted accuracy, overlay, reference")
            more.add_class("lthkit-more-options")
            title.layout.margin = "0"
            parts = [title, grid, self.status, self.progress, self.image, more, self.help, self.log, self.errors]
        self.widget = widgets.VBox(parts)
        self.widget.add_class("lthkit-dashboard")

    def _budget(self) -> int:
        """Training iterations per round of ``base`` (what bounds the rewind iteration k)."""
        if self.data is not None:
            num_train = len(self.data.train_y)
        else:
            num_train = self.base.data.train_size or 60_000 - self.base.data.validation_size
        return self.base.train.total_iterations(num_train)

    def _repr_mimebundle_(self, **kwargs):
        # The widget, plus a PNG of the plot and a line of text for viewers that cannot run
        # widgets (GitHub, nbviewer): they show the static figure instead.
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(bytes(self.image.value) or figure_png(self.figure)).decode("ascii")
        bundle["text/plain"] = f"<lthkit Dashboard: {len(self.groups)} run(s) plotted>"
        return bundle

    @property
    def runs(self) -> dict[str, LotteryResult]:
        """``{label: result of the first trial}`` of each curve pinned on the plot."""
        return {label: group[0] for label, group in self.groups.items()}

    # --- the pure parts, wired up ------------------------------------------------------------------

    def config(self) -> LotteryConfig:
        """The config the controls select (raises :class:`LthkitError` for an invalid choice)."""
        values = {name: self.controls[name].value for name in CONFIG_CONTROLS}
        return config_from_controls(self.base, **values)

    def trial_configs(self) -> list[LotteryConfig]:
        """One config per trial the controls select: seeds ``seed`` to ``seed + trials - 1``."""
        config = self.config()
        return [config.replace(seed=config.seed + trial) for trial in range(self.controls["trials"].value)]

    def lookup(self, config: LotteryConfig) -> LotteryResult | None:
        """The finished result of ``config`` from memory or the disk cache, without training."""
        if config not in self._known:
            cached = load_cached(config, self.cache_dir)
            if cached is None:
                return None
            self._known[config] = cached
        return self._known[config]

    def plotted(self, panel: str = "accuracy", *, bands: bool = False) -> dict[str, tuple]:
        """What the plot shows, read back from the figure.

        Args:
            panel: ``"accuracy"`` (values in percent) or ``"early_stop"`` (iterations).
            bands: read the min/max bands instead of the lines.

        Returns:
            ``{label: (densities, values)}`` of the lines (a curve of several trials: their mean),
            or with ``bands``: ``{label: (densities, lows, highs)}`` of the bands, densities falling.
        """
        panels = {"accuracy": 0, "early_stop": 1}
        if panel not in panels:
            raise LthkitError(f"unknown panel {panel!r}; choose accuracy or early_stop")
        axis = self.figure.axes[panels[panel]]
        if not bands:
            return {line.get_label(): (np.asarray(line.get_xdata(), dtype=float),
                                       np.asarray(line.get_ydata(), dtype=float)) for line in axis.get_lines()}
        read = {}
        for band in axis.collections:
            if band.get_gid() is None:
                continue
            # A band's polygon runs along the lows and back along the highs: per density, min and max.
            vertices = np.concatenate([path.vertices for path in band.get_paths()])
            densities = np.unique(vertices[:, 0])[::-1]
            lows = np.array([vertices[vertices[:, 0] == d, 1].min() for d in densities])
            highs = np.array([vertices[vertices[:, 0] == d, 1].max() for d in densities])
            read[band.get_gid()] = (densities, lows, highs)
        return read

    def shown_runs(self) -> dict[str, list[LotteryResult]]:
        """The curves drawn now (``{label: trials}``): the pinned ones, the selection if cached, the run in progress."""
        shown = dict(self.groups)
        kept = self._kept if self.controls["overlay"].value else None
        for extra in (kept, self._selected, self._running):
            if extra is not None and extra[0] not in shown:
                shown[extra[0]] = extra[1]
        return shown

    def redraw(self, force: bool = False) -> None:
        """Draw :meth:`shown_runs` and put the PNG into ``image`` (in place).

        Skipped when the same runs are drawn already (a control moved between two configs that
        are not cached), unless ``force``.
        """
        shown = self.shown_runs()
        metric = self.controls["metric"].value
        reference = self.reference_rows() if self.controls["reference"].value else None
        controls = sorted({result.config.control for group in shown.values() for result in group},
                          key=list(BRANCHES).index) or REFERENCE_DEFAULT_CONTROLS
        key = (metric, reference is not None, tuple(controls),
               tuple((label, tuple((id(result), len(result.rounds)) for result in group))
                     for label, group in shown.items()))
        if key == self._drawn and not force:
            return
        began = time.perf_counter()
        self.figure = draw_runs(shown, metric=metric, reference=reference, reference_controls=controls,
                                figsize=(10.5, 3.4) if self.layout == "projector" else (10.5, 4.0))
        self._show_image(figure_png(self.figure))
        self._drawn = key
        self.last_draw_seconds = time.perf_counter() - began

    def reference_rows(self) -> list[dict]:
        """The rows of :data:`REFERENCE_CSV`, read once (the committed full-protocol run)."""
        if self._reference_rows is None:
            self._reference_rows = read_summary_csv(REFERENCE_CSV)
        return self._reference_rows

    def snapshot(self):
        """The current plot as a static image (:class:`IPython.display.Image`).

        A cell that ends with ``dashboard.snapshot()`` keeps the picture in the saved notebook,
        where viewers without a kernel (GitHub, nbviewer) cannot show the live dashboard.
        """
        from IPython.display import Image

        return Image(data=bytes(self.image.value), format="png")

    def clear(self) -> None:
        """Remove every pinned run from the plot (the cache keeps them)."""
        self.groups.clear()
        self._kept = None
        self.redraw()

    def report_error(self, error: BaseException) -> None:
        """Show ``error`` in the error area: one line for an lthkit error, else the traceback."""
        if isinstance(error, LthkitError):
            text = f"LthkitError: {error}\n"
        else:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.errors.append_stderr(text)
        self._set_status(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__} "
                         "(details below)", "danger")

    # --- callbacks ------------------------------------------------------------------------------------

    @_reports_errors
    def _on_change(self, _change=None) -> None:
        """A config control moved: look the config up (never train) and draw it if it is cached."""
        rewind = self.controls["rewind"].value
        self.controls["rewind_iteration"].disabled = rewind != "iteration"
        self.controls["rewind_fraction"].disabled = rewind != "fraction"
        if self._selected is not None and self.controls["overlay"].value:
            self._kept = self._selected  # overlay on: the preview just left stays drawn, and Run keeps it
        self._selected = None
        try:
            configs = self.trial_configs()
        except LthkitError as error:
            self._set_status(f"this combination cannot run: {error}", "warning")
            self.redraw()
            return
        label = run_label(configs[0])
        found = [self.lookup(config) for config in configs]
        cached = [result for result in found if result is not None]
        if len(cached) == len(configs):
            self._selected = (label, cached)
            self.redraw()
            self._set_status(f"<b>{html.escape(label)}</b> is in the cache{_trials_text(len(cached))}: drawn in "
                             f"{self.last_draw_seconds * 1000:.0f} ms (Run keeps it on the plot)", "success")
        else:
            trainings = self._trainings_needed(configs)
            self.redraw()
            state = "has not run yet" if not cached else f"has {len(cached)} of {len(configs)} trials in the cache"
            self._set_status(f"<b>{html.escape(label)}</b> {state}: Run trains {trainings} network(s) "
                             f"({configs[0].per_round_rate:.1%} of the survivors pruned per round)", "info")

    @_reports_errors
    def _on_view_change(self, _change=None) -> None:
        self.redraw()

    @_reports_errors
    def _on_clear(self, _button=None) -> None:
        self.clear()
        self._set_status("plot cleared (runs stay in the cache)", "info")

    @_reports_errors
    def _on_run(self, _button=None) -> None:
        """Run: draw the selected config's trials from the cache, or train the missing ones first, and keep them."""
        self.errors.outputs = ()
        configs = self.trial_configs()
        label = run_label(configs[0])
        began = time.perf_counter()
        found = [self.lookup(config) for config in configs]
        if all(result is not None for result in found):
            self._cached_bar(len(found))
            self._pin(label, found)
            self._set_status(f"<b>{html.escape(label)}</b>: from the cache, drawn in "
                             f"{(time.perf_counter() - began) * 1000:.0f} ms{self._curves_note()}", "success")
            return
        self.run_button.disabled = True
        self.log.outputs = ()
        try:
            results = self._train(configs, label)
        finally:
            self._running = None
            self.run_button.disabled = False
        self._clear_training_log()
        self._pin(label, results)
        final = results[0].rounds[-1]
        self._set_status(f"<b>{html.escape(label)}</b>: trained in {time.perf_counter() - began:.1f} s; "
                         f"{final.density:.1%} of the weights remaining, test accuracy "
                         f"{np.mean([r.rounds[-1].test_acc_early_stop for r in results]):.2%} at early stop"
                         f"{' (mean of the trials)' if len(results) > 1 else ''}{self._curves_note()}", "success")

    # --- helpers --------------------------------------------------------------------------------------------

    def _curves_note(self) -> str:
        """The status line's tail: how many trials each curve has, and which curves their spread cannot tell apart."""
        if not self.groups:
            return ""
        counts = "; ".join(f"{html.escape(label)}: {len(group)}" for label, group in self.groups.items())
        note = f". Trials per curve: {counts}"
        for label_a, label_b, densities in overlapping_curves(self.groups, self.controls["metric"].value):
            name_a, name_b = _short_names(self.groups[label_a][0].config, self.groups[label_b][0].config,
                                          label_a, label_b)
            where = ", ".join(f"{density:.1%}" for density in densities)
            note += (f". {html.escape(name_a)} and {html.escape(name_b)} overlap at these densities ({where}): "
                     f"the gap between them is smaller than the spread of their trials; more trials or rounds "
                     f"would tell them apart")
        return note

    def _runs_to_train(self, configs: Sequence[LotteryConfig]) -> list[LotteryConfig]:
        """What Run trains for ``configs``: the driver's own answer (those not cached, and what they need)."""
        return runs_to_train(list(configs), lookup=self.lookup)

    def _trainings_needed(self, configs: Sequence[LotteryConfig]) -> int:
        """How many networks Run trains for ``configs``: their rounds, plus those of the runs they need if not cached."""
        return sum(run.rounds + 1 for run in self._runs_to_train(configs))

    def _train(self, configs: Sequence[LotteryConfig], label: str) -> list[LotteryResult]:
        """Train the missing trials of ``configs`` (with their tickets, for a control), with the progress bar and live plot."""
        steps = self._runs_to_train(configs)
        bar = self._new_bar(sum(step.rounds + 1 for step in steps), remaining_text(1.0))
        self._set_bar(bar)
        trials = f" ({len(configs)} trials)" if len(configs) > 1 else ""
        self._set_status(f"training <b>{html.escape(label)}</b>{trials} …", "info")
        # Each step belongs to a curve: the requested one, or that of its ticket (first trial's seed).
        first_seed = configs[0].seed
        curve = {step: label if step in configs else run_label(step.replace(seed=first_seed)) for step in steps}
        finished: dict[LotteryConfig, list[RoundResult]] = {step: [] for step in steps}

        def on_round(step_config, round_result):
            finished[step_config].append(round_result)
            self._round_done(bar, round_result.density)
            name = curve[step_config]
            self._running = (name, [_partial_result(step, finished[step]) for step in steps
                                    if curve[step] == name and finished[step]])
            self.redraw()

        # progress=False: the run's one bar above is all the progress shown (no bars of the rounds, no
        # internal names); anything else the training prints lands in the log, inside the dashboard.
        try:
            with self.log:
                results = run_experiments(steps, cache_dir=self.cache_dir, data=self.data, device=self.device,
                                          progress=False, batch=False, on_round=on_round)
        except BaseException:
            bar.close()  # unfinished: the bar turns red
            raise
        self._known.update(zip(steps, results))
        done = [self.lookup(config) for config in configs]
        self._finish_bar(bar, done[0].rounds[-1].density)
        return done

    def _clear_training_log(self) -> None:
        """Empty the training log after a finished run: the run's own bar keeps its summary."""
        from IPython.core.interactiveshell import InteractiveShell

        if InteractiveShell.initialized():
            # A clear_output message, which the front end applies in order with the bars' own
            # messages; setting log.outputs could be undone by the front end's pending updates.
            self.log.clear_output()
        else:  # no kernel (a script, a test): no front end either, and no escape codes on stdout
            self.log.outputs = ()

    def _pin(self, label: str, results: list[LotteryResult]) -> None:
        """Keep ``label``'s curve on the plot; with overlay on, every curve drawn so far stays (the preview too)."""
        if not self.controls["overlay"].value:
            self.groups.clear()
        else:
            for preview in (self._kept, self._selected):  # a cached preview on the plot stays there
                if preview is not None and preview[0] not in self.groups:
                    self.groups[preview[0]] = list(preview[1])
        self._kept = None
        self.groups[label] = list(results)
        self._selected = (label, list(results))
        self.redraw()


class StabilityExplorer(_ProgressAndStatus):
    """Notebook 6's interactive: the linear path between two copies of one network, for a chosen k and weights remaining.

    Choosing never trains; **Run** trains the network and its twin (or reads both from the cache),
    with a progress bar inside the explorer, then draws the test error along the path and says
    whether the pair is stable. Parts: ``controls`` (``"k"``, ``"round"``: the weights remaining, as IMP
    rounds, 0 dense; ``"control"``: IMP subnetwork or random pruning), ``run_button``, ``status``,
    ``progress``, ``image``, ``errors``; ``last`` holds the rows of the last pair drawn.

    Example (what the tests do)::

        explorer = StabilityExplorer(base, ks=(0, 20))
        explorer.controls["k"].value = 20
        explorer.run_button.click()      # trains (or reads the cache), then draws
        explorer.last[0]["error_barrier"]

    Args:
        base: the IMP run (default: ``notebook_preset("stability")``).
        ks: the choices of k.
        cache_dir, data, device: as for :class:`Dashboard`.
    """

    def __init__(self, base: LotteryConfig | None = None, *, ks=(0, 50), cache_dir=None, data=None, device=None):
        from ..core.paths import STABLE_THRESHOLD

        self.base = notebook_preset("stability") if base is None else base
        self.cache_dir, self.data, self.device = cache_dir, data, device
        self.threshold = STABLE_THRESHOLD
        self.last: list[dict] = []
        self._bar = None
        wide = {"style": {"description_width": "120px"}, "layout": widgets.Layout(width="380px")}
        rate = self.base.per_round_rate
        rounds = [(f"{(1 - rate) ** r:.1%} of the hidden weights remaining ({r} IMP rounds)" if r else "dense (100%)", r)
                  for r in range(self.base.rounds + 1)]
        self.controls = {
            "k": widgets.Dropdown(options=[(f"k = {k:,}", int(k)) for k in ks], value=int(ks[0]),
                                  description="split at", **wide),
            "round": widgets.Dropdown(options=rounds, value=min(1, self.base.rounds), description="weights remaining", **wide),
            "control": widgets.Dropdown(options=(("IMP subnetwork", "ticket"), ("random pruning", "random_prune")),
                                        value="ticket", description="subnetwork", **wide),
        }
        self.run_button = widgets.Button(description="Run", button_style="primary",
                                         tooltip="Train the two copies (or draw them from the cache)")
        self.status = widgets.HTML()
        self.progress = widgets.Box(layout=widgets.Layout(width="100%"))
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", display="none"))
        self.errors = widgets.Output()
        for name, control in self.controls.items():
            control.add_class(f"lthkit-control-{name}")
            control.observe(self._on_change, names="value")
        self.run_button.add_class("lthkit-run")
        self.run_button.on_click(self._on_run)
        title = widgets.HTML("<b>Instability explorer</b>: two copies from θ_k, different batch orders; "
                             "choosing never trains, <b>Run</b> does")
        self.widget = widgets.VBox([title, widgets.HBox([widgets.VBox(list(self.controls.values())),
                                                          self.run_button]),
                                    self.status, self.progress, self.image, self.errors])
        self.widget.add_class("lthkit-stability-explorer")
        self.progress.add_class("lthkit-progress")
        self.image.add_class("lthkit-plot")
        self.run_button.add_class("lthkit-run")
        self._on_change()

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "<lthkit StabilityExplorer>"
        return bundle

    def pair(self):
        """The selected pair (:class:`lthkit.studies.stability.Pair`): the very pair the study measures.

        Its runs are the study's own (:func:`lthkit.studies.stability.stability_pairs` on ``base``, all
        its rounds), so a pair the notebook's live study trained is drawn from the cache, never retrained.
        """
        from ..studies.stability import stability_pairs

        k, round_index, control = self.controls["k"].value, self.controls["round"].value, self.controls["control"].value
        kind = "dense" if round_index == 0 else control
        pairs = stability_pairs(self.base, [k], 1, ("ticket",) if round_index == 0 else (control,))
        return next(pair for pair in pairs if pair.round == round_index and pair.kind == kind)

    def report_error(self, error: BaseException) -> None:
        self.errors.outputs = ()
        with self.errors:
            traceback.print_exception(type(error), error, error.__traceback__)
        self._set_status(f"error: {html.escape(str(error).splitlines()[0] if str(error) else type(error).__name__)}",
                         "danger")

    @_reports_errors
    def _on_change(self, _change=None) -> None:
        pair = self.pair()
        missing = runs_to_train([pair.source, pair.twin], cache_dir=self.cache_dir)
        trainings = sum(config.rounds + 1 for config in missing)
        self._set_status(f"{pair.kind} at k = {pair.k:,}: " + (f"Run trains {trainings} network(s)" if trainings
                                                               else "in the cache: Run draws it at once"), "info")

    @_reports_errors
    def _on_run(self, _button=None) -> None:
        from ..core.data import get_data
        from ..core.paths import error_barrier
        from ..reporting.plots import error_along_path
        from ..studies.stability import measure_pair, pair_rows

        self.errors.outputs = ()
        pair = self.pair()
        began = time.perf_counter()
        missing = runs_to_train([pair.source, pair.twin], cache_dir=self.cache_dir)
        self.run_button.disabled = True
        try:
            if missing:
                bar = self._new_bar(sum(config.rounds + 1 for config in missing), remaining_text(1.0))
                self._set_bar(bar)
                self._set_status(f"training the {pair.kind} pair at k = {pair.k:,} …", "info")
                try:
                    run_experiments([pair.source, pair.twin], cache_dir=self.cache_dir, data=self.data,
                                    device=self.device, progress=False, batch=False,
                                    on_round=lambda _config, found: self._round_done(bar, found.density))
                except BaseException:
                    bar.close()  # unfinished: the bar turns red
                    raise
            data = self.data if self.data is not None else get_data(self.base.data, self.device)
            rows = pair_rows(pair, measure_pair(pair, data, cache_dir=self.cache_dir), self.threshold)
            if missing:
                self._finish_bar(bar, rows[0]["density"])
            else:
                self._cached_bar(2)
        finally:
            self.run_button.disabled = False
        self.last = rows
        import matplotlib.pyplot as plt

        figure = error_along_path(rows, title=f"{pair.kind}, k = {pair.k:,}")
        self._show_image(figure_png(figure))
        plt.close(figure)
        barrier = error_barrier([row["test_error"] for row in rows])
        verdict = "stable" if barrier < self.threshold else "unstable"
        self._set_status(f"{pair.kind} at k = {pair.k:,}, {rows[0]['density']:.1%} of the weights remaining: error barrier "
                         f"{100 * barrier:.2f} points, <b>{verdict}</b> (threshold {100 * self.threshold:g}); "
                         f"{'trained' if missing else 'from the cache'} in {time.perf_counter() - began:.1f} s",
                         "success" if verdict == "stable" else "warning")
