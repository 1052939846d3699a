"""Figures of the sparsity-speed study (:mod:`lthkit.studies.sparsity_speed`, notebook 9).

Each takes rows of one of the study's CSVs and returns a ``Figure`` (none calls ``plt.show()``);
density is on a log axis that falls from left to right, as in every figure of lthkit. Forms and
file formats are named and coloured from their registries (:data:`lthkit.export.forms.FORMS`,
:data:`lthkit.export.storage.FORMAT_LABELS`).

* :func:`latency_vs_density`: milliseconds per forward pass of each form, one panel per network and
  (batch size, threads), the band between the first and third quartile of the timing blocks;
* :func:`size_vs_density`: bytes of the ticket in each file format;
* :func:`structure_vs_density`: the share of each layer's units the compact network keeps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..export.forms import FORMS
from ..export.storage import FORMAT_COLOURS, FORMAT_LABELS
from .plots import format_density_axis


def _grid(rows: int, columns: int, width: float = 4.3, height: float = 3.5):
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), facecolor="white",
                                squeeze=False)
    return figure, axes


def _plain_log_axis(ax) -> None:
    """A log y axis labelled with plain numbers (0.2, 1, 30), not powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _models(rows) -> list[str]:
    return list(dict.fromkeys(row["model"] for row in rows))


def latency_vs_density(rows, *, title: str | None = None, forms=None):
    """Milliseconds per forward pass against weights remaining: a line per form, a panel per network and setting.

    Args:
        rows: rows of ``speed.csv`` (``model``, ``density``, ``form``, ``batch``, ``threads``, ``device``,
            ``median_ms``, ``q1_ms``, ``q3_ms``).
        title: the figure's title.
        forms: the forms to draw (default: every form in the rows).

    Returns:
        The :class:`~matplotlib.figure.Figure`.
    """
    models = _models(rows)
    settings = sorted({(row["device"], row["batch"], row["threads"]) for row in rows})
    figure, axes = _grid(max(1, len(models)), max(1, len(settings)))
    names = [name for name in FORMS if any(row["form"] == name for row in rows) and (forms is None or name in forms)]
    for i, model in enumerate(models):
        for j, (device, batch, threads) in enumerate(settings):
            ax = axes[i][j]
            picked = [row for row in rows if row["model"] == model and (row["device"], row["batch"], row["threads"]) ==
                      (device, batch, threads)]
            for name in names:
                points = sorted((row for row in picked if row["form"] == name), key=lambda row: -row["density"])
                if not points:
                    continue
                x = [row["density"] for row in points]
                ax.plot(x, [row["median_ms"] for row in points], marker="o", markersize=3, color=FORMS[name].colour,
                        label=FORMS[name].label)
                ax.fill_between(x, [row["q1_ms"] for row in points], [row["q3_ms"] for row in points],
                                color=FORMS[name].colour, alpha=0.2, linewidth=0)
            _plain_log_axis(ax)
            where = f"{device}, {threads} thread{'s' if threads != 1 else ''}" if device == "cpu" else device
            ax.set_title(f"{model}: batch {batch}, {where}", fontsize=9)
            ax.set_ylabel("ms per forward pass")
            ax.set_xlabel("weights remaining")
            ax.grid(True, which="both", alpha=0.3)
            if picked:
                format_density_axis(ax, [row["density"] for row in picked], max_ticks=6)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9, frameon=False)
    figure.suptitle(title or "Latency against weights remaining (median, band: interquartile range)", fontsize=11)
    figure.tight_layout(rect=(0, 0.06, 1, 0.97))
    return figure


def size_vs_density(rows, *, title: str | None = None):
    """Bytes of the ticket in each file format against weights remaining, a panel per network.

    Args:
        rows: rows of ``sizes.csv`` (``model``, ``density``, ``format``, ``bytes``).
        title: the figure's title.
    """
    models = _models(rows)
    figure, axes = _grid(1, max(1, len(models)), width=5.2, height=4.0)
    for ax, model in zip(axes[0], models):
        picked = [row for row in rows if row["model"] == model]
        for name, label in FORMAT_LABELS.items():
            points = sorted((row for row in picked if row["format"] == name), key=lambda row: -row["density"])
            if points:
                ax.plot([row["density"] for row in points], [row["bytes"] / 1024 for row in points], marker="o",
                        markersize=3, label=label, color=FORMAT_COLOURS[name])
        _plain_log_axis(ax)
        ax.set_title(model, fontsize=10)
        ax.set_ylabel("file size (KiB)")
        ax.set_xlabel("weights remaining")
        ax.grid(True, which="both", alpha=0.3)
        if picked:
            format_density_axis(ax, [row["density"] for row in picked], max_ticks=7)
        ax.legend(fontsize=8)
    figure.suptitle(title or "The ticket on disk:\ndense and sparse files, plain and compressed", fontsize=11)
    figure.tight_layout()
    return figure


def structure_vs_density(rows, *, title: str | None = None):
    """The share of each layer's units the compact network keeps, against weights remaining, a panel per network.

    Args:
        rows: rows of ``structure.csv`` (``model``, ``density``, ``layer``, ``units``, ``units_kept``,
            ``inputs``, ``inputs_kept``).
        title: the figure's title.
    """
    models = _models(rows)
    figure, axes = _grid(1, max(1, len(models)), width=5.2, height=4.0)
    for ax, model in zip(axes[0], models):
        picked = [row for row in rows if row["model"] == model]
        layers = list(dict.fromkeys(row["layer"] for row in picked))
        first = layers[0] if layers else None
        series = [(f"inputs of {first}", first, "inputs_kept", "inputs")] + \
                 [(f"units of {layer}", layer, "units_kept", "units") for layer in layers[:-1]]
        for label, layer, kept, total in series:
            points = sorted((row for row in picked if row["layer"] == layer), key=lambda row: -row["density"])
            ax.plot([row["density"] for row in points], [100 * row[kept] / row[total] for row in points], marker="o",
                    markersize=3, label=label)
        ax.set_ylim(0, 105)
        ax.set_title(model, fontsize=10)
        ax.set_ylabel("kept by the compact network (%)")
        ax.set_xlabel("weights remaining")
        ax.grid(True, which="both", alpha=0.3)
        if picked:
            format_density_axis(ax, [row["density"] for row in picked], max_ticks=7)
        ax.legend(fontsize=8)
    figure.suptitle(title or "What unstructured pruning leaves removable:\nthe units the compact network keeps", fontsize=11)
    figure.tight_layout()
    return figure
