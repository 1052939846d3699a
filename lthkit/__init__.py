"""lthkit: an interactive teaching kit for the Lottery Ticket Hypothesis.

Frankle & Carbin (2018), "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural
Networks" (arXiv:1803.03635): dense networks contain sparse subnetworks ("winning tickets")
that, reset to their original initialization and trained alone, match the dense network.

The package is built in layers, each importing only those below it (``docs/architecture.md``;
``lint-imports`` checks the rules):

* :mod:`lthkit.core`       config fields, files, MNIST in memory, the networks, masks, masked training
* :mod:`lthkit.imp`        the IMP engine: the run's config and records, the one driver, the branches
* :mod:`lthkit.export`     tickets as compact dense networks, sparse kernels and files (beside the IMP engine)
* :mod:`lthkit.runs`       the versioned cache, cached experiments, Dask sweeps, presets
* :mod:`lthkit.reporting`  summaries, figures, provenance
* :mod:`lthkit.studies`    the paper's protocol, instability analysis, ticket anatomy
* :mod:`lthkit.course`     notebook modes, exercises, the dashboard and explorers
* :mod:`lthkit.cli`        ``python -m lthkit``

and :mod:`lthkit.grading` beside them. The names below are lthkit's public face: notebooks and
scripts import them from ``lthkit`` itself (``from lthkit import run_experiment``), so they keep
working when code moves between modules. They are imported on first use, so ``import lthkit``
is cheap.

Example:
    >>> import lthkit
    >>> lthkit.LotteryConfig(rounds=2).rounds
    2
"""

from __future__ import annotations

import importlib

from .errors import LthkitError

__version__ = "0.1.0"

#: Public name → the module that defines it.
_PUBLIC = {
    # core
    "DataConfig": "lthkit.core.data", "MNISTData": "lthkit.core.data", "load_mnist": "lthkit.core.data",
    "get_data": "lthkit.core.data", "data_root": "lthkit.core.data", "REPO_ROOT": "lthkit.core.data",
    "build_model": "lthkit.core.models", "MODELS": "lthkit.core.models",
    "full_masks": "lthkit.core.masks", "magnitude_masks": "lthkit.core.masks", "random_masks_like": "lthkit.core.masks",
    "prunable_weights": "lthkit.core.masks", "prunable_layers": "lthkit.core.masks", "density": "lthkit.core.masks",
    "layer_densities": "lthkit.core.masks", "apply_masks_": "lthkit.core.masks", "to_torch_prune": "lthkit.core.masks",
    "from_torch_prune": "lthkit.core.masks",
    "TrainConfig": "lthkit.core.train", "train": "lthkit.core.train", "evaluate": "lthkit.core.train",
    "interpolate": "lthkit.core.paths", "error_barrier": "lthkit.core.paths", "alpha_grid": "lthkit.core.paths",
    "path_errors": "lthkit.core.paths",
    # imp
    "LotteryConfig": "lthkit.imp.config",
    "LotteryResult": "lthkit.imp.records", "RoundResult": "lthkit.imp.records",
    "run_lottery": "lthkit.imp.driver", "run_lotteries": "lthkit.imp.driver",
    "BRANCHES": "lthkit.imp.branches", "Branch": "lthkit.imp.branches", "PAPER_CONTROLS": "lthkit.imp.branches",
    "derive_seed": "lthkit.imp.branches",
    "RoundInputs": "lthkit.imp.branches", "RoundStart": "lthkit.imp.branches",
    "supermask_accuracy": "lthkit.imp.resets", "sign_constant_reinit": "lthkit.imp.resets",
    "prune_at_init": "lthkit.imp.scorers", "snip_scores": "lthkit.imp.scorers", "SCORERS": "lthkit.imp.scorers",
    "find_ticket": "lthkit.imp.find", "WinningTicket": "lthkit.imp.ticket", "TicketRound": "lthkit.imp.ticket",
    # export
    "prepare_ticket": "lthkit.export.ticket",
    **{name: "lthkit.export.compact" for name in ("compact_network", "compact_linear")},
    **{name: "lthkit.export.sparse" for name in ("csr_network", "two_four_masks", "semi_structured_network",
                                                  "semi_structured_support")},
    **{name: "lthkit.export.storage" for name in ("file_sizes", "save_sparse", "load_sparse")},
    "compare_outputs": "lthkit.export.agreement", "time_forward": "lthkit.export.timing",
    "FORMS": "lthkit.export.forms", "export_ticket": "lthkit.export.forms",
    # runs
    "run_experiment": "lthkit.runs.experiments", "run_experiments": "lthkit.runs.experiments",
    "runs_to_train": "lthkit.runs.experiments", "preset": "lthkit.runs.presets",
    "load_cached": "lthkit.runs.cache", "clear_cache": "lthkit.runs.cache",
    "preset_config": "lthkit.runs.presets",
    # reporting
    "read_summary_csv": "lthkit.reporting.summaries", "summary_rows": "lthkit.reporting.summaries",
    **{name: "lthkit.reporting.plots" for name in (
        "accuracy_vs_density", "early_stop_vs_density", "accuracy_and_early_stop", "layer_density_plot",
        "input_connectivity", "first_layer_connectivity", "error_along_path", "instability_vs_k",
        "retraining_vs_density", "anatomy_plot", "supermask_plot", "pai_plot", "paired_differences_plot")},
    "paired_by_round": "lthkit.reporting.comparisons", "versus_dense": "lthkit.reporting.comparisons",
    **{name: "lthkit.reporting.speed_plots" for name in ("latency_vs_density", "size_vs_density",
                                                          "structure_vs_density")},
    # studies
    "paper_claims": "lthkit.studies.paper", "claims_markdown": "lthkit.studies.paper", "PAPER_PM": "lthkit.studies.paper",
    **{name: "lthkit.studies.sparsity_speed" for name in ("run_speed_study", "measure_ticket", "ticket_rounds",
                                                           "load_speed_study", "crossovers")},
    # course
    "notebook_preset": "lthkit.course.modes", "fast_mode": "lthkit.course.modes", "describe": "lthkit.course.modes",
    "compare_with_reference": "lthkit.course.references",
    "compare_ticket_with_reference": "lthkit.course.references",
    "Dashboard": "lthkit.course.dashboard", "StabilityExplorer": "lthkit.course.dashboard",
    "AnatomyExplorer": "lthkit.course.anatomy_explorer",
    **{name: "lthkit.course.predictions" for name in ("predict", "reveal", "ask", "record_answer", "answer_sheet")},
}
__all__ = ["LthkitError", "__version__", *sorted(_PUBLIC)]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module 'lthkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
