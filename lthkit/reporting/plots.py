"""Figures of IMP results, laid out like Frankle & Carbin's.

Every helper takes an optional matplotlib ``Axes`` and returns the ``Figure``; none calls
``plt.show()``, and only a figure a helper made itself gets its layout tightened (a figure you
pass Axes of is yours to lay out). Density is on a log axis that falls from left to right (100% → 1%), as in the
paper. Where a group holds several trials, the line is their mean and the band spans their
minimum and maximum. Figures have an opaque white face, so they stay readable in dark themes.

Runs are given as a :class:`~lthkit.imp.records.LotteryResult`, a list of them (grouped by control,
one entry per trial), a ``{label: [results...]}`` mapping (overlays of any runs you like), or the
rows of a ``summary.csv``.

Besides the paper's two figures (:func:`accuracy_vs_density`, :func:`early_stop_vs_density`, and
both side by side: :func:`accuracy_and_early_stop`), there are figures of one run's masks:
:func:`layer_density_plot` (how IMP thins each layer) and :func:`first_layer_connectivity` (how
many outgoing connections each input pixel keeps). Notebook 6's figures take the rows of
:mod:`lthkit.studies.stability`'s CSVs: :func:`error_along_path`, :func:`instability_vs_k` and
:func:`retraining_vs_density`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from ..errors import LthkitError
from ..imp.branches import BRANCHES
from ..imp.records import LotteryResult
from .summaries import summary_rows


def summary_series(runs, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{label: (densities, values)}`` with ``values`` of shape ``(trials, rounds)``.

    Args:
        runs: a :class:`~lthkit.imp.records.LotteryResult`, a list of them, a ``{label: [results]}``
            mapping, or rows of a ``summary.csv`` (dicts with ``control``, ``trial``, ``round``,
            ``density`` and the metric; see :func:`lthkit.reporting.summaries.read_summary_csv`).
        metric: a column of ``summary.csv``: ``test_acc_early_stop``, ``test_acc_final`` or
            ``early_stop_iter``.

    Densities are the mean over trials per round. Trials may have different round counts; only
    the rounds that all of a group's trials reached are kept.
    """
    if isinstance(runs, LotteryResult):
        runs = [runs]
    if isinstance(runs, Mapping):
        rows = [dict(row, control=str(label)) for label, group in runs.items()
                for row in summary_rows(group if isinstance(group, Sequence) else [group])]
    else:
        runs = list(runs)
        rows = [row for row in runs if isinstance(row, Mapping)]
        rows += summary_rows([run for run in runs if isinstance(run, LotteryResult)])
    by_label: dict[str, dict[int, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        label = BRANCHES.label(row["control"])
        by_label[label][row["trial"]][row["round"]] = row
    series = {}
    for label, trials in by_label.items():
        rounds = min(len(per_round) for per_round in trials.values())
        ordered = [[per_round[r] for r in sorted(per_round)[:rounds]] for per_round in trials.values()]
        densities = np.array([[row["density"] for row in trial] for trial in ordered]).mean(0)
        values = np.array([[float(row[metric]) for row in trial] for trial in ordered])
        series[label] = (densities, values)
    return series


def _color(label: str, index: int) -> str:
    for name in BRANCHES:  # a branch's own colour (lthkit.imp.branches), in every figure
        if label == BRANCHES.label(name) and BRANCHES.colour(name):
            return BRANCHES.colour(name)
    # Any other series takes the cycle's colours that no branch owns, so it is never mistaken for a control.
    from matplotlib.colors import to_hex

    owned = {to_hex(BRANCHES.colour(name)) for name in BRANCHES if BRANCHES.colour(name)}
    free = [to_hex(color) for color in plt.rcParams["axes.prop_cycle"].by_key()["color"] if to_hex(color) not in owned]
    return free[index % len(free)] if free else to_hex(plt.rcParams["axes.prop_cycle"].by_key()["color"][index % 10])


def _new_axes(ax, figsize=(6.4, 4.2)):
    if ax is not None:
        return ax.figure, ax
    figure, ax = plt.subplots(figsize=figsize, facecolor="white")
    return figure, ax


def _percent(value, _position=None) -> str:
    percent = 100 * value
    return f"{percent:.0f}%" if percent >= 10 or percent == round(percent) else f"{percent:.1f}%"


def format_density_axis(ax, densities=None, max_ticks: int = 9) -> None:
    """Log-scaled density axis in percent of weights remaining, falling from left to right.

    Args:
        ax: the Axes.
        densities: where to put the ticks (the rounds' densities, thinned to ``max_ticks``);
            default: the densities of the lines already drawn.
        max_ticks: the most ticks to show.
    """
    if densities is None:
        densities = [x for line in ax.get_lines() for x in np.asarray(line.get_xdata(), dtype=float)]
    ticks = []
    candidates = sorted({round(float(d), 6) for d in densities if d > 0}, reverse=True)
    # Overlaid runs reach nearly equal densities (71.0% and 67.1% on an axis from 100% to 45%): one
    # tick, not two labels on top of each other. Close means within a share of the axis's log span.
    span = math.log(candidates[0] / candidates[-1]) if candidates else 0.0
    closest = max(math.log(1 / 0.97), span / (1.2 * max_ticks))
    for density in candidates:
        if not ticks or math.log(ticks[-1] / density) >= closest:
            ticks.append(density)
    if len(ticks) > max_ticks:
        step = (len(ticks) - 1) / (max_ticks - 1)
        ticks = [ticks[round(i * step)] for i in range(max_ticks)]
    ax.set_xscale("log")
    left, right = ax.get_xlim()
    if left < right:
        ax.set_xlim(right, left)
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(_percent))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("weights remaining (P_m, log scale)")
    ax.grid(True, which="major", alpha=0.3)


def dense_reference(ax, values, *, label: str = "dense network", color: str = "0.35") -> None:
    """A horizontal band across the axes: the dense network's value, its mean as a line and the min–max of its
    trials as the band, for comparing pruned networks with it (matching or not).

    Args:
        ax: the Axes.
        values: the dense network's value in each trial (already scaled, e.g. percent).
        label: the legend's name for it (the number of trials is added).
        color: the band's colour.
    """
    values = np.asarray(values, dtype=float)
    suffix = f" ({len(values)} trials: mean, min–max)" if len(values) > 1 else ""
    ax.axhline(values.mean(), color=color, linewidth=1, linestyle="-.", label=label + suffix, zorder=1)
    if len(values) > 1:
        ax.axhspan(values.min(), values.max(), color=color, alpha=0.12, linewidth=0, zorder=0)


def place_legend(ax, *, outside: bool | None = None, **options) -> None:
    """The Axes' legend where it hides nothing: beside the plot (right) when it holds more than four entries or
    ``outside`` says so, else inside at matplotlib's best place."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if outside is None:
        outside = len(handles) > 4
    options.setdefault("frameon", False)
    if outside:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **options)
    else:
        ax.legend(handles, labels, **options)


def plot_metric_vs_density(runs, metric: str, *, ax=None, ylabel: str, scale: float = 1.0,
                           title: str | None = None, marker: str = "o", dense: bool = False,
                           min_span: float | None = None, legend: bool | None = True):
    """Plot one per-round metric against density, mean line with a min/max band per group.

    Args:
        runs: the results (see the module docstring).
        metric: a ``summary.csv`` column (``"test_acc_early_stop"``, ``"early_stop_iter"``).
        ax: draw into this Axes (default: a new figure).
        ylabel: the y-axis label, with its unit.
        scale: multiply values by this (100 for percent).
        title: the axes title.
        marker: the line's marker.
        dense: draw the dense network (the first group's round 0, over its trials) as a reference band
            (:func:`dense_reference`), for figures that compare pruned networks with it.
        min_span: the y axis spans at least this much (in plotted units), so that noise between
            trials is not blown up to fill the figure.
        legend: ``True``: inside when it has room, beside the plot when it has more than four
            entries; ``"outside"``: beside it; ``False``: none (a caller that gathers legends).

    Returns:
        The :class:`~matplotlib.figure.Figure`.
    """
    owns_figure = ax is None  # lay out only a figure made here; a caller's Axes is the caller's
    figure, ax = _new_axes(ax)
    series = summary_series(runs, metric)
    for index, (label, (densities, values)) in enumerate(series.items()):
        values = values * scale
        color = _color(label, index)
        suffix = f" ({len(values)} trials)" if len(values) > 1 else ""
        ax.plot(densities, values.mean(0), marker=marker, markersize=4, color=color, label=label + suffix)
        if len(values) > 1:
            band = ax.fill_between(densities, values.min(0), values.max(0), color=color, alpha=0.2, linewidth=0)
            band.set_gid(label + suffix)  # the band's line, for reading the figure back
    if dense and series:
        densities, values = next(iter(series.values()))
        if densities[0] >= 0.999:
            dense_reference(ax, values[:, 0] * scale)
    format_density_axis(ax)
    if min_span:
        low, high = ax.get_ylim()
        if high - low < min_span:
            middle = (low + high) / 2
            ax.set_ylim(middle - min_span / 2, middle + min_span / 2)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        place_legend(ax, outside=True if legend == "outside" else None)
    if owns_figure:
        figure.tight_layout()
    return figure


def accuracy_vs_density(runs, *, ax=None, metric: str = "test_acc_early_stop", title: str | None = None,
                        dense: bool = False, min_span: float | None = None, legend: bool | str = True):
    """Test accuracy (percent) against weights remaining, as in the paper's Figure 3.

    ``dense=True`` adds the dense network as a reference band, ``min_span`` (points) keeps the y axis
    from magnifying noise (see :func:`plot_metric_vs_density`).

    Example:
        >>> fig = accuracy_vs_density([ticket_result, reinit_result], dense=True)  # doctest: +SKIP
        >>> fig.savefig("accuracy.png")                                            # doctest: +SKIP
    """
    when = "at early stop" if metric.endswith("early_stop") else "at end of training"
    return plot_metric_vs_density(runs, metric, ax=ax, ylabel=f"test accuracy {when} (%)", scale=100.0,
                                  title=title, dense=dense, min_span=min_span, legend=legend)


def early_stop_vs_density(runs, *, ax=None, title: str | None = None, legend: bool | str = True):
    """Early-stopping iteration (minimum validation loss) against weights remaining (Figure 4)."""
    return plot_metric_vs_density(runs, "early_stop_iter", ax=ax, ylabel="early-stop iteration",
                                  title=title, legend=legend)


def accuracy_and_early_stop(runs, *, axes=None, metric: str = "test_acc_early_stop", title: str | None = None):
    """Test accuracy and early-stop iteration against weights remaining, side by side.

    The figure the dashboard draws, and the usual way to overlay several runs: pass
    ``{label: result}`` (or ``{label: [results of several trials]}``).

    Args:
        runs: the results (see the module docstring).
        axes: two Axes to draw into (default: a new 1x2 figure).
        metric: the accuracy to plot, ``"test_acc_early_stop"`` or ``"test_acc_final"``.
        title: the figure's title.

    Returns:
        The :class:`~matplotlib.figure.Figure`; its legend is on the left panel only.

    Example:
        >>> accuracy_and_early_stop({"θ₀": ticket, "θ_100": rewound})  # doctest: +SKIP
    """
    owns_figure = axes is None
    if owns_figure:
        figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), facecolor="white")
    left, right = axes
    accuracy_vs_density(runs, ax=left, metric=metric, legend=False)
    early_stop_vs_density(runs, ax=right, legend=False)
    handles, labels = left.get_legend_handles_labels()
    if title:
        left.figure.suptitle(title)
    below = len(handles) > 4  # many runs: one legend under both panels, where it hides no curve
    if owns_figure:
        left.figure.tight_layout(rect=(0, 0.06 * ((len(handles) + 2) // 3), 1, 1) if below else None)
    if below:
        left.figure.legend(handles, labels, loc="lower center", ncol=3, frameon=False, fontsize="small")
    elif handles:
        left.legend(frameon=False)
    return left.figure


def _percent_log_axis(axis, values) -> None:
    """Percent labels on a log axis; minor ticks get labels only when it spans under a decade."""
    values = [v for v in values if v > 0]
    axis.set_major_formatter(FuncFormatter(_percent))
    narrow = bool(values) and max(values) / min(values) < 10
    axis.set_minor_formatter(FuncFormatter(_percent) if narrow else NullFormatter())


def layer_density_plot(result: LotteryResult, *, ax=None, title: str | None = None):
    """Weights remaining in each layer against the whole network's, round by round.

    Layer-wise IMP thins every layer at its own rate (LeNet's output layer at half the rate);
    global IMP lets the magnitudes decide, and layers part ways. Both axes are logarithmic; the
    dashed line is the whole network, for reference.

    Args:
        result: one IMP run.
        ax: draw into this Axes (default: a new figure).
        title: the axes title.

    Returns:
        The :class:`~matplotlib.figure.Figure`.

    Example:
        >>> layer_density_plot(run_experiment(preset("fast")))  # doctest: +SKIP
    """
    if not isinstance(result, LotteryResult):
        raise LthkitError(f"layer_density_plot needs one LotteryResult, got {type(result).__name__}")
    owns_figure = ax is None
    figure, ax = _new_axes(ax)
    overall = [round_result.density for round_result in result.rounds]
    for name in result.rounds[0].layer_density:
        densities = [round_result.layer_density[name] for round_result in result.rounds]
        ax.plot(overall, densities, marker="o", markersize=4, label=name.removesuffix(".weight"))
    ax.plot(overall, overall, linestyle="--", color="0.5", label="whole network")
    format_density_axis(ax, overall)
    ax.set_yscale("log")
    _percent_log_axis(ax.yaxis, [d for r in result.rounds for d in r.layer_density.values()])
    ax.set_ylabel("weights remaining in the layer (log scale)")
    ax.set_title(title or f"per-layer density ({result.config.scope} pruning)")
    ax.legend(frameon=False)
    if owns_figure:
        figure.tight_layout()
    return figure


def input_connectivity(masks: Mapping, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """How many of the first layer's weights out of each input pixel survive.

    Args:
        masks: a mask set whose first entry is a fully connected layer over the pixels
            (LeNet's ``fc1.weight``, shape ``(units, 784)``).
        image_shape: the input image's height and width.

    Returns:
        An integer array of ``image_shape``: surviving outgoing weights per pixel.

    Raises:
        LthkitError: the first layer is not fully connected to ``image_shape`` pixels (a
            convolution, for instance).

    Example:
        >>> input_connectivity(full_masks(build_model("lenet300_100"))).max()  # doctest: +SKIP
        300
    """
    name, first = next(iter(masks.items()))
    pixels = math.prod(image_shape)
    if first.dim() != 2 or first.shape[1] != pixels:
        raise LthkitError(f"the first layer {name} has shape {tuple(first.shape)}: not a fully connected layer over "
                          f"{image_shape[0]}x{image_shape[1]} = {pixels} input pixels")
    return first.detach().cpu().sum(0).reshape(image_shape).numpy().astype(int)


def first_layer_connectivity(source, *, rounds: Sequence[int] | None = None, ax=None, title: str | None = None):
    """28x28 maps of how many outgoing first-layer weights each input pixel keeps.

    Each pixel's count of surviving outgoing weights is shown relative to the layer's average
    (1 = an average pixel), on one color scale for all maps, so that the *pattern* stays visible
    as the layer thins out: pixels where digits are drawn keep more connections than the blank
    border. Each map's title gives the average count.

    Args:
        source: a :class:`~lthkit.imp.records.LotteryResult` (one map per chosen round) or a single
            mask set.
        rounds: which rounds of a result to show (default: the first pruned round, a middle one
            and the last). Negative numbers count from the end.
        ax: draw a single map into this Axes (the last of ``rounds``).
        title: the figure's title.

    Returns:
        The :class:`~matplotlib.figure.Figure`.

    Example:
        >>> first_layer_connectivity(result, rounds=[1, -1])  # doctest: +SKIP
    """
    if isinstance(source, LotteryResult):
        count = len(source.masks)
        if rounds is None:
            rounds = sorted({min(1, count - 1), count // 2, count - 1})
        try:
            chosen = [(index % count, source.masks[index]) for index in rounds]
        except IndexError:
            raise LthkitError(f"rounds {list(rounds)} out of range: the run has rounds 0 to {count - 1}") from None
    elif isinstance(source, Mapping):
        chosen = [(None, source)]
    else:
        raise LthkitError(f"first_layer_connectivity needs a LotteryResult or a mask set, got {type(source).__name__}")
    if ax is not None:
        chosen = chosen[-1:]
        figure, axes = ax.figure, [ax]
    else:
        figure, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen) + 1.2, 3.4), facecolor="white",
                                    squeeze=False)
        axes = list(axes[0])
    width = next(iter(chosen[0][1].values())).shape[0]
    counts = [input_connectivity(masks) for _, masks in chosen]
    relative = [c / c.mean() if c.mean() > 0 else np.zeros(c.shape) for c in counts]
    top = max(2.0, max(float(r.max()) for r in relative))
    image = None
    for axis, (round_index, masks), count, ratio in zip(axes, chosen, counts, relative):
        image = axis.imshow(ratio, cmap="viridis", vmin=0, vmax=top, interpolation="nearest")
        kept = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
        heading = (f"{kept:.1%} of the weights remaining" if round_index is None
                   else f"round {round_index}: {kept:.1%} remaining")
        axis.set_title(f"{heading}\naverage pixel keeps {count.mean():.0f} of {width}", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    colorbar = figure.colorbar(image, ax=axes, shrink=0.85)
    colorbar.set_label("outgoing weights kept\n(× the average pixel)")
    if title:
        figure.suptitle(title)
    return figure


# --- notebook 6: instability analysis and retraining -----------------------------------------------

#: Display names and colors of the kinds of network in instability analysis.
KIND_LABELS = {"dense": "dense network", "ticket": "IMP subnetwork", "random_prune": "random pruning",
               "reinit": "random re-init"}
KIND_COLORS = {"dense": "#7f7f7f", "ticket": "#1f77b4", "random_prune": "#2ca02c", "reinit": "#d62728"}


def _groups(rows, key):
    grouped = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    return grouped


def _kind_label(kind: str, density: float) -> str:
    return KIND_LABELS.get(kind, kind) + ("" if kind == "dense" else f", {_percent(density)} left")


def _linestyle(index: int) -> str:
    return ("-", "--", ":", "-.")[index % 4]


def error_along_path(rows, *, ax=None, select=None, title: str | None = None, relative: bool = True):
    """Test error along the linear path between two copies, against α.

    One line per (kind, density, k) of ``rows`` (the rows of ``stability.csv``, see
    :func:`lthkit.studies.stability.run_stability`), the mean over trials with a min/max band.
    With ``relative`` (the default) each trial's curve is drawn as its rise above the mean of its two
    ends, in points: every curve starts and ends near 0 and its peak is the error barrier, so a
    network with a 25% error and a barrier of 0.3 points reads as clearly as a dense one. Without
    ``ax`` and with several k, each k gets its own panel.

    Args:
        rows: the rows.
        ax: draw into this Axes (default: a new figure).
        select: keep only rows for which ``select(row)`` is true.
        title: the axes title (the figure's, with several panels).
        relative: draw the rise above the endpoints' mean instead of the raw test error.

    Example:
        >>> fig = error_along_path(rows, select=lambda r: r["k"] == 0)  # doctest: +SKIP
    """
    rows = [row for row in rows if select is None or select(row)]
    if not rows:
        raise LthkitError("no rows to plot")
    ks = sorted({r["k"] for r in rows})
    if ax is None and len(ks) > 1:
        figure, axes = plt.subplots(1, len(ks), figsize=(4.6 * len(ks) + 2.6, 4.2), facecolor="white", sharey=True,
                                    squeeze=False)
        for panel, k in zip(axes[0], ks):
            _path_panel(panel, [r for r in rows if r["k"] == k], relative, legend=False)
            panel.set_title(f"copies split at k = {k:,}", fontsize=10)
        for panel in axes[0][1:]:
            panel.set_ylabel("")
        handles, labels = axes[0][0].get_legend_handles_labels()
        if title:
            figure.suptitle(title)
        figure.tight_layout(rect=(0, 0.1, 1, 1))
        figure.legend(handles, labels, loc="lower center", ncol=min(4, len(handles)), frameon=False, fontsize="small")
        return figure
    owns_figure = ax is None
    figure, ax = _new_axes(ax)
    _path_panel(ax, rows, relative, legend=True)
    if title:
        ax.set_title(title)
    if owns_figure:
        figure.tight_layout()
    return figure


def _path_panel(ax, rows, relative: bool, legend: bool) -> None:
    groups = _groups(rows, lambda r: (r["control"], r["round"], r["k"]))
    ks = sorted({r["k"] for r in rows})
    styles = {k: _linestyle(i) for i, k in enumerate(ks)}
    for (kind, _, k), members in sorted(groups.items(), key=lambda item: (list(KIND_LABELS).index(item[0][0])
                                                                           if item[0][0] in KIND_LABELS else 9,
                                                                           item[0][1], item[0][2])):
        by_trial = _groups(members, lambda r: r["trial"])
        alphas = sorted({r["alpha"] for r in members})
        values = np.array([[100 * {r["alpha"]: r["test_error"] for r in trial}[a] for a in alphas]
                           for trial in by_trial.values()])
        if relative:
            values = values - (values[:, :1] + values[:, -1:]) / 2
        density = float(np.mean([r["density"] for r in members]))
        color = KIND_COLORS.get(kind, "#333333")
        label = _kind_label(kind, density) + (f", k={k}" if len(ks) > 1 else "") + \
            (f" ({len(values)} trials)" if len(values) > 1 else "")
        ax.plot(alphas, values.mean(0), color=color, linestyle=styles[k], marker="o", markersize=3, label=label)
        if len(values) > 1:
            ax.fill_between(alphas, values.min(0), values.max(0), color=color, alpha=0.15, linewidth=0)
    if relative:
        ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("α (0: copy A, 1: copy B)")
    ax.set_ylabel("test error above the ends' mean (points)" if relative else "test error (%)")
    ax.grid(True, alpha=0.3)
    if legend:
        place_legend(ax, fontsize="small")


def instability_vs_k(rows, *, ax=None, threshold: float = 0.02, title: str | None = None):
    """Error barrier (percentage points) against the iteration k the copies split at.

    One line per (kind, density) of the rows of ``stability.csv``, the mean over trials with a
    min/max band; k on a symmetric-log axis that starts at k = 0 (no empty negative side), with a
    tick at every k measured; the stability threshold dashed. The legend sits beside the plot:
    colours for the kinds of network, line styles for the weights remaining.

    Example:
        >>> fig = instability_vs_k(read_rows("results/stability/stability.csv"))  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D

    owns_figure = ax is None
    figure, ax = _new_axes(ax, figsize=(8.4, 4.2))
    if not rows:
        raise LthkitError("no rows to plot")
    groups = _groups(rows, lambda r: (r["control"], r["round"]))
    densities = {}
    kinds, trial_counts = [], set()
    for (kind, round_index), members in sorted(groups.items(), key=lambda item: (
            list(KIND_LABELS).index(item[0][0]) if item[0][0] in KIND_LABELS else 9, item[0][1])):
        ks = sorted({r["k"] for r in members})
        barrier = {(r["k"], r["trial"]): 100 * r["error_barrier"] for r in members}
        trials = sorted({r["trial"] for r in members})
        trial_counts.add(len(trials))
        values = np.array([[barrier.get((k, t), np.nan) for k in ks] for t in trials])
        density = float(np.mean([r["density"] for r in members]))
        if kind != "dense":
            densities.setdefault(round_index, density)
        color = KIND_COLORS.get(kind, "#333333")
        style = "-" if kind == "dense" else _linestyle(round_index - 1)
        ax.plot(ks, np.nanmean(values, 0), color=color, linestyle=style, marker="o", markersize=4)
        if len(trials) > 1:
            ax.fill_between(ks, np.nanmin(values, 0), np.nanmax(values, 0), color=color, alpha=0.12, linewidth=0)
        if kind not in kinds:
            kinds.append(kind)
    ax.axhline(100 * threshold, color="black", linestyle="--", linewidth=1)
    measured = sorted({r["k"] for r in rows})
    positive = [k for k in measured if k > 0]
    linthresh = max(1, min(positive)) if positive else 1
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xlim(-0.15 * linthresh, max(measured) * 1.25 if positive else 1)
    ax.xaxis.set_major_locator(FixedLocator(measured))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.0f}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(bottom=0)
    ax.set_xlabel("k: the iteration the two copies split at (symlog)")
    ax.set_ylabel("instability: error barrier (points)")
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    trials_note = f", mean and min–max of {max(trial_counts)} trials" if max(trial_counts, default=1) > 1 else ""
    handles = [Line2D([], [], color=KIND_COLORS.get(kind, "#333333"), marker="o", markersize=4,
                      label=KIND_LABELS.get(kind, kind)) for kind in kinds]
    handles += [Line2D([], [], color="0.3", linestyle=_linestyle(round_index - 1), label=f"{_percent(density)} left")
                for round_index, density in sorted(densities.items())]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1,
                          label=f"stable below {100 * threshold:g} points"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
              fontsize="small", title=f"network{trials_note}", title_fontsize="small")
    if owns_figure:
        figure.tight_layout()
    return figure


def retraining_vs_density(rows, *, ax=None, metric: str = "test_acc_final", title: str | None = None):
    """Test accuracy (percent) against weights remaining for the three retraining methods.

    ``rows`` are those of ``retraining.csv`` (:func:`lthkit.studies.stability.run_retraining`); one line per
    method, the mean over trials with a min/max band.
    """
    relabeled = [dict(row, control=BRANCHES.label(row["method"])) for row in rows]
    when = "at the end of training" if metric == "test_acc_final" else "at early stop"
    return plot_metric_vs_density(relabeled, metric, ax=ax, ylabel=f"test accuracy {when} (%)", scale=100.0,
                                  title=title)


# --- Ticket anatomy (issue 16, notebook 7): rows of lthkit.studies.anatomy's summary.csv and supermask.csv ----

def _experiment_rows(rows, experiment: str) -> list[dict]:
    """The rows of one experiment of a ticket-anatomy ``summary.csv``, labelled by their series."""
    picked = [dict(row, control=row["series"]) for row in rows if row["experiment"] == experiment]
    if not picked:
        raise LthkitError(f"the rows hold no experiment {experiment!r}")
    return picked


def anatomy_plot(rows, experiment: str, *, ax=None, title: str | None = None,
                 metric: str = "test_acc_early_stop", legend: bool | str = True):
    """Test accuracy against weights remaining, one line per series of a ticket-anatomy experiment.

    Args:
        rows: rows of a ticket-anatomy ``summary.csv`` (:func:`lthkit.studies.anatomy.read_study_csv`, or
            ``Study.rows``).
        experiment: ``"criteria"``, ``"resets"``, ``"zeros"``, ``"pai"``, ``"pai_shuffled"`` or
            ``"pai_reinit"``.
        ax: draw into this Axes (default: a new figure).
        title: the axes title.
        metric: the accuracy column.

    Returns:
        The :class:`~matplotlib.figure.Figure`.

    Example:
        >>> fig = anatomy_plot(study.rows, "criteria", title="mask criteria")  # doctest: +SKIP
    """
    return accuracy_vs_density(_experiment_rows(rows, experiment), ax=ax, metric=metric, title=title, legend=legend)


def supermask_plot(rows, *, axes=None, title: str | None = None):
    """Untrained test accuracy of each criterion's masks against density: θ₀ ⊙ mask, and sign(θ₀)·σ ⊙ mask.

    Args:
        rows: rows of a ticket-anatomy ``supermask.csv``.
        axes: two Axes to draw into (default: a new figure with two panels).
        title: the figure's title.

    Returns:
        The :class:`~matplotlib.figure.Figure`.
    """
    owns_figure = axes is None
    if owns_figure:
        figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), facecolor="white", sharey=True)
    else:
        figure = axes[0].figure
    from ..imp.scorers import SCORERS

    for ax, (weights, label) in zip(axes, (("theta0", "θ₀ ⊙ mask"), ("sign_constant", "sign(θ₀)·σ ⊙ mask"))):
        picked = [dict(row, control=SCORERS[row["criterion"]].label if row["criterion"] in SCORERS
                       else row["criterion"]) for row in rows if row["weights"] == weights]
        if picked:
            plot_metric_vs_density(picked, "test_acc", ax=ax, ylabel="test accuracy, untrained (%)", scale=100.0,
                                   title=f"weights: {label}", legend=False)
        ax.axhline(10, color="grey", linestyle=":", linewidth=1, label="chance (10 classes)")
    handles, labels = axes[0].get_legend_handles_labels()
    if title:
        figure.suptitle(title)
    if owns_figure:
        figure.tight_layout(rect=(0, 0.12, 1, 1))
    if handles:  # one legend for both panels, under them: it hides no curve
        figure.legend(handles, labels, loc="lower center", ncol=min(4, len(handles)), frameon=False, fontsize="small")
    return figure


def pai_plot(rows, *, axes=None, title: str | None = None):
    """Pruning at initialization against the IMP ticket: as found, masks shuffled in each layer, survivors re-initialized.

    One panel per sanity check of Frankle et al. (2021), the same methods (and colors) in each.

    Args:
        rows: rows of a ticket-anatomy ``summary.csv`` holding ``pai``, ``pai_shuffled`` and/or ``pai_reinit``.
        axes: Axes to draw into, one per experiment present (default: a new figure).
        title: the figure's title.

    Returns:
        The :class:`~matplotlib.figure.Figure`.
    """
    panels = [(name, label) for name, label in (("pai", "as found"), ("pai_shuffled", "mask shuffled in each layer"),
                                                ("pai_reinit", "survivors re-initialized"))
              if any(row["experiment"] == name for row in rows)]
    if not panels:
        raise LthkitError("the rows hold no pruning-at-init experiment (pai, pai_shuffled, pai_reinit)")
    owns_figure = axes is None
    if owns_figure:
        figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.4), facecolor="white", sharey=True,
                                    squeeze=False)
        axes = axes[0]
    else:
        figure = axes[0].figure
    for ax, (name, label) in zip(axes, panels):
        anatomy_plot(rows, name, ax=ax, title=label, legend=False)
    handles, labels = axes[0].get_legend_handles_labels()
    if title:
        figure.suptitle(title)
    if owns_figure:
        figure.tight_layout(rect=(0, 0.12, 1, 1))
    if handles:  # one legend for every panel, under them
        figure.legend(handles, labels, loc="lower center", ncol=min(4, len(handles)), frameon=False, fontsize="small")
    return figure


# --- paired comparisons with 95% intervals (notebook 4) ------------------------------------------

def paired_differences_plot(comparisons: Mapping, *, ax=None, tolerance: float | None = None,
                            title: str | None = None, ylabel: str = "difference, paired within a trial (points)"):
    """Round-by-round paired differences with their 95% intervals, against weights remaining.

    Args:
        comparisons: ``{label: [RoundComparison, ...]}`` (:mod:`lthkit.reporting.comparisons`), e.g.
            ``{"ticket − re-init": paired_by_round(rows, rows)}``.
        ax: draw into this Axes (default: a new figure).
        tolerance: draw the band from ``-tolerance`` to 0 (points): where a ticket still counts as
            matching the dense network.
        title: the axes title.
        ylabel: the y-axis label.

    Returns:
        The :class:`~matplotlib.figure.Figure`: a point at each mean and a bar over each 95% interval
        (none for a round of one trial), and the zero line.

    Example:
        >>> paired_differences_plot({"θ₀ ticket − re-init": paired_by_round(rows, rows)})  # doctest: +SKIP
    """
    owns_figure = ax is None
    figure, ax = _new_axes(ax)
    densities = []
    count = max(1, len(comparisons))
    for index, (label, compared) in enumerate(comparisons.items()):
        if not compared:
            continue
        x = np.array([c.density for c in compared])
        # Side by side within a round: a small shift on the log axis, so bars of different series do not overlap.
        shifted = x * (1.06 ** (index - (count - 1) / 2))
        means = np.array([c.interval.estimate for c in compared])
        lows = np.array([c.interval.low for c in compared])
        highs = np.array([c.interval.high for c in compared])
        finite = np.isfinite(lows) & np.isfinite(highs)
        color = plt.rcParams["axes.prop_cycle"].by_key()["color"][index % 10]
        trials = max(c.interval.n for c in compared)
        ax.plot(shifted, means, marker="o", markersize=4, color=color, linestyle="-", linewidth=1,
                label=f"{label} ({trials} trials, 95% interval)" if trials > 1 else label)
        if finite.any():
            ax.errorbar(shifted[finite], means[finite], yerr=[means[finite] - lows[finite], highs[finite] - means[finite]],
                        fmt="none", ecolor=color, elinewidth=1.2, capsize=3)
        densities.extend(x)
    ax.axhline(0, color="black", linewidth=0.8)
    if tolerance:
        ax.axhspan(-tolerance, 0, color="0.5", alpha=0.15, linewidth=0,
                   label=f"within {tolerance:g} points below: still matching")
    format_density_axis(ax, densities)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    place_legend(ax, fontsize="small")
    if owns_figure:
        figure.tight_layout()
    return figure
