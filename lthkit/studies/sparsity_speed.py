"""Sparsity is not speed: every ticket of an IMP run exported, checked and timed against the dense network.

lthkit's tickets are dense tensors times a mask, so a ticket at 1.2% of its weights costs what the
dense network costs. This study asks when a ticket really gets smaller or faster. For each network
of :data:`NETWORKS` it trains (or reads from the run cache) one IMP run down to about 1% of the
weights, and at every round's density it:

1. exports the ticket into each form of :data:`lthkit.export.forms.FORMS` that runs on the device
   (compact dense, CSR, compact then CSR; on a GPU of compute capability ≥ 8.0 also dense float16
   and 2:4 semi-structured) and checks it against the masked dense network on the test set
   (``exports.csv``: the largest output difference against the stated tolerance, the
   predictions that differ, the test accuracy);
2. measures how much structure unstructured pruning left (``structure.csv``: per layer, the units
   the compact network keeps and why the others went);
3. re-prunes the fully connected layers to 2:4 and measures what that costs in test accuracy,
   with a paired 95% interval (``two_four.csv``; on any device: the masks are what change);
4. writes the ticket as files: dense, sparse (CSR values and indices), each plain and compressed
   (``sizes.csv``);
5. times a forward pass of every form with ``torch.utils.benchmark`` (warm-up, then repeated
   blocks for ``min_run_time`` seconds) at each batch size and thread count (``speed.csv``: median
   and quartiles in ms).

The report names, per network, form, batch size and thread count, the **crossover density**: below
it the form beats the dense network. A form beats it at a density when the form's third quartile
is below the dense network's first quartile (the two timings' blocks do not overlap); the
crossover is the interval between the densest density of the run of such wins that reaches the
sparsest density, and the next denser density measured. File sizes get the same, without noise.

``python -m lthkit speed`` is its command; ``python -m lthkit report DIR`` rewrites the report and
figures from the CSVs. Timings are only as good as the machine is quiet: ``run_info.json`` records
the load average before and after.

Example:
    >>> rows = [{"model": "m", "round": r, "density": d, "form": f, "device": "cpu", "batch": 1, "threads": 1,
    ...          "median_ms": ms, "q1_ms": ms * 0.95, "q3_ms": ms * 1.05}
    ...         for r, d, f, ms in [(0, 1.0, "dense", 1.0), (0, 1.0, "csr", 4.0), (1, 0.3, "dense", 1.0),
    ...                             (1, 0.3, "csr", 1.1), (2, 0.1, "dense", 1.0), (2, 0.1, "csr", 0.5)]]
    >>> entry = crossovers(rows)[0]
    >>> entry["form"], entry["faster_below"], entry["slower_at"], entry["text"]
    ('csr', 0.1, 0.3, 'between 10.0% and 30.0%')
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..core.data import get_data
from ..core.files import atomic_write_files, csv_text, figure_png, json_bytes, read_typed_csv, with_kept_notes
from ..core.models import build_model
from ..errors import LthkitError
from ..export.agreement import TOLERANCES, compare_outputs, paired_difference
from ..export.compact import compact_network
from ..export.forms import FORMS, forms_for, masked_reference, stored_weights
from ..export.sparse import semi_structured_support, two_four_ticket_masks
from ..export.storage import FORMAT_LABELS, FORMATS, file_sizes
from ..export.ticket import prepare_ticket
from ..export.timing import MIN_BLOCKS, time_forward, usable_cores
from ..imp.config import LotteryConfig
from .base import Study

#: The study's networks, each with the preset of its IMP run (:data:`lthkit.runs.presets.PRESETS`).
NETWORKS = {"lenet300_100": "sparsity_lenet", "conv2": "sparsity_conv"}
#: One example's input shape (MNIST).
INPUT_SHAPE = (1, 28, 28)
#: Test images per forward pass of the checks: a CSR convolution unfolds its input (Conv-2's second layer: 1.8 MB
#: an image), so the checks go in small batches.
CHECK_BATCH = 128
#: The command's defaults by mode: batch sizes (1 and a typical batch), thread counts ("all": every usable
#: core) and seconds of repeated blocks per timing.
DEFAULTS = {"full": {"batch_sizes": (1, 64), "threads": (1, "all"), "min_run_time": 0.5},
            "fast": {"batch_sizes": (1, 8), "threads": (1,), "min_run_time": 0.02}}

SPEED_COLUMNS = ("model", "round", "density", "form", "device", "dtype", "batch", "threads", "median_ms", "q1_ms",
                 "q3_ms", "runs")
EXPORT_COLUMNS = ("model", "round", "density", "form", "device", "dtype", "stored_weights", "max_abs_diff", "rtol",
                  "atol", "agrees", "predictions_differ", "test_images", "test_acc")
SIZE_COLUMNS = ("model", "round", "density", "format", "bytes")
STRUCTURE_COLUMNS = ("model", "round", "density", "layer", "kind", "units", "units_kept", "no_outgoing",
                     "no_incoming", "folded", "inputs", "inputs_kept", "weights", "survivors", "compact_weights",
                     "compact_survivors")
TWO_FOUR_COLUMNS = ("model", "round", "density", "density_two_four", "test_images", "test_acc", "test_acc_two_four",
                    "change", "change_low", "change_high")
#: The study's CSVs: file name → columns.
CSV_FILES = {"speed.csv": SPEED_COLUMNS, "exports.csv": EXPORT_COLUMNS, "sizes.csv": SIZE_COLUMNS,
             "structure.csv": STRUCTURE_COLUMNS, "two_four.csv": TWO_FOUR_COLUMNS}
#: Its figures: file name → (the CSV it is drawn from, the function of :mod:`lthkit.reporting.speed_plots`).
FIGURES = {"speed_vs_density.png": ("speed.csv", "latency_vs_density"),
           "size_vs_density.png": ("sizes.csv", "size_vs_density"),
           "structure_vs_density.png": ("structure.csv", "structure_vs_density")}
#: Every file the study writes, as one set.
OUTPUTS = (*CSV_FILES, *FIGURES, "run_info.json", "README.md")
_INTEGERS = {"round", "batch", "threads", "runs", "stored_weights", "predictions_differ", "test_images", "bytes",
             "units", "units_kept", "no_outgoing", "no_incoming", "folded", "inputs", "inputs_kept", "weights",
             "survivors", "compact_weights", "compact_survivors"}
_FLOATS = {"density", "median_ms", "q1_ms", "q3_ms", "max_abs_diff", "rtol", "atol", "test_acc", "density_two_four",
           "test_acc_two_four", "change", "change_low", "change_high"}


def load_average() -> str | None:
    """The 1-, 5- and 15-minute load averages, or ``None`` where the system has none."""
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return None


def resolve_threads(threads) -> list[int]:
    """``(1, "all")`` → ``[1, usable cores]`` (distinct, in order).

    Raises:
        LthkitError: a count that is not a whole number of at least 1, nor ``"all"``.
    """
    resolved = []
    for value in threads:
        if value == "all":
            value = usable_cores()
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LthkitError(f"threads must be whole numbers of at least 1 or 'all', got {value!r}")
        if value not in resolved:
            resolved.append(value)
    return resolved


@dataclass
class SpeedStudy:
    """What :func:`run_speed_study` measured: the rows of each CSV, and the run's record (``run_info.json``)."""

    speed: list = field(default_factory=list)
    exports: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    structure: list = field(default_factory=list)
    two_four: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def rows(self) -> dict[str, list]:
        """``{CSV file name: rows}``."""
        return {"speed.csv": self.speed, "exports.csv": self.exports, "sizes.csv": self.sizes,
                "structure.csv": self.structure, "two_four.csv": self.two_four}


def study_configs(models=tuple(NETWORKS), *, fast: bool = False) -> dict[str, LotteryConfig]:
    """``{network: its IMP run}`` from the presets (full or fast mode).

    Raises:
        LthkitError: a network the study does not know.
    """
    from ..runs.presets import preset_config

    unknown = [model for model in models if model not in NETWORKS]
    if unknown or not models:
        raise LthkitError(f"unknown network {', '.join(map(str, unknown)) or '(none given)'}; choose from "
                          f"{', '.join(NETWORKS)}")
    return {model: preset_config(NETWORKS[model], fast=fast) for model in models}


def ticket_rounds(config: LotteryConfig, *, cache_dir=None):
    """Every round of a cached IMP run as ``(round, trained network, masks)``, from the run cache.

    Raises:
        LthkitError: a round is not in the cache (run the config first).
    """
    from ..runs.cache import DiskStore, cache_entry

    store = DiskStore(cache_entry(config, cache_dir), config)
    for round_index in range(config.rounds + 1):
        record = store.load(round_index)
        if record is None or record.trained_state is None:
            raise LthkitError(f"round {round_index} of {config.model}'s run is not in the cache; run the study again")
        model = build_model(config.model, seed=config.seed)
        model.load_state_dict(record.trained_state)
        yield round_index, model, record.mask


def gpu_forms_note(device, skipped: dict) -> str | None:
    """One line saying why the GPU forms were not measured on ``device`` (``None`` when they were).

    Example:
        >>> gpu_forms_note("cpu", {"two_four": "..."})  # doctest: +ELLIPSIS
        '2:4 semi-structured kernels need a CUDA GPU of compute capability 8.0 or later; ...'
    """
    if torch.device(device).type == "cuda":
        return skipped.get("two_four")
    reason = semi_structured_support("cuda")
    return reason if reason is not None else "this run measured the CPU; --device cuda measures the GPU forms"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def measure_ticket(model_name: str, round_index: int, model, masks, data, *, device: str = "cpu", forms=None,
                   batch_sizes=(1, 64), threads=(1,), min_run_time: float = 0.5, timing: bool = True) -> SpeedStudy:
    """Export one ticket into every form, check each on the test set, measure its structure and files, time each.

    Args:
        model_name: the network's name, for the rows.
        round_index: the IMP round, for the rows.
        model: the trained network.
        masks: its masks (a dict, or a ticket object with ``.masks``).
        data: :class:`~lthkit.core.data.MNISTData` (its test set is used, on the CPU).
        device: where the forms run.
        forms: the forms' names (default: every form that runs on ``device``).
        batch_sizes: the batch sizes timed.
        threads: the thread counts timed (on a GPU only the first is used).
        min_run_time: seconds of repeated blocks per timing.
        timing: time the forms (off: only the exports, checks, structure and files).

    Returns:
        A :class:`SpeedStudy` of this ticket's rows.
    """
    ticket = prepare_ticket(model, masks, INPUT_SHAPE)
    names, _ = forms_for(device, forms)
    density = ticket.density
    base = {"model": model_name, "round": round_index, "density": density}
    test_x, test_y = data.test_x.cpu(), data.test_y.cpu()
    study = SpeedStudy()
    study.structure = [{**base, **row} for row in compact_network(ticket).structure]
    study.sizes = [{**base, "format": name, "bytes": size} for name, size in file_sizes(ticket).items()]
    repruned = two_four_ticket_masks(ticket)
    checked = compare_outputs(ticket.model, masked_reference(ticket, repruned, "cpu"), test_x, test_y,
                              batch_size=CHECK_BATCH)
    change, low, high = paired_difference(checked["correct"], checked["reference_correct"])
    total = sum(mask.numel() for mask in repruned.values())
    study.two_four = [{**base, "density_two_four": sum(int(m.sum()) for m in repruned.values()) / total,
                       "test_images": len(test_y), "test_acc": checked["reference_accuracy"],
                       "test_acc_two_four": checked["accuracy"], "change": change, "change_low": low,
                       "change_high": high}]
    networks = {}
    for name in names:
        form = FORMS[name]
        network, form_masks = form.build(ticket, device)
        reference = masked_reference(ticket, form_masks, device, form.dtype)
        found = compare_outputs(reference, network, test_x, test_y, dtype=form.dtype, batch_size=CHECK_BATCH)
        networks[name] = network
        study.exports.append({**base, "form": name, "device": torch.device(device).type,
                              "dtype": _dtype_name(form.dtype), "stored_weights": stored_weights(network),
                              "max_abs_diff": found["max_abs_diff"], "rtol": found["rtol"], "atol": found["atol"],
                              "agrees": found["agrees"], "predictions_differ": found["predictions_differ"],
                              "test_images": found["examples"], "test_acc": found["accuracy"]})
    if not timing:
        return study
    thread_counts = list(threads) if torch.device(device).type == "cpu" else list(threads)[:1]
    for batch in batch_sizes:
        for count in thread_counts:
            for name in names:  # the forms one after another, so that each ratio is measured under one load
                form = FORMS[name]
                inputs = test_x[:batch].to(device=device, dtype=form.dtype)
                if len(inputs) < batch:  # a test set smaller than the batch: repeat it
                    inputs = inputs.repeat((batch + len(inputs) - 1) // len(inputs), 1, 1, 1)[:batch]
                timing_found = time_forward(networks[name], inputs, threads=count, min_run_time=min_run_time)
                study.speed.append({**base, "form": name, "device": torch.device(device).type,
                                    "dtype": _dtype_name(form.dtype), "batch": batch, "threads": count,
                                    "median_ms": 1000 * timing_found.median_s, "q1_ms": 1000 * timing_found.q1_s,
                                    "q3_ms": 1000 * timing_found.q3_s, "runs": timing_found.runs})
    return study


def run_speed_study(models=tuple(NETWORKS), *, fast: bool = False, configs=None, batch_sizes=None, threads=None,
                    forms=None, min_run_time: float | None = None, device: str = "cpu", train_device: str | None = None,
                    cache_dir=None, data_root=None, progress: bool = True, prepare_only: bool = False,
                    argv=None) -> SpeedStudy:
    """Train (or read from the cache) each network's IMP run, then measure every round's ticket (:func:`measure_ticket`).

    Args:
        models: the networks (names of :data:`NETWORKS`).
        fast: the presets' fast modes and :data:`DEFAULTS` ``["fast"]`` (checks that it works; measures nothing).
        configs: ``{network: LotteryConfig}`` instead of the presets (notebook 9 passes its own).
        batch_sizes, threads, min_run_time: the timing settings (default: the mode's, :data:`DEFAULTS`).
        forms: the forms' names (default: every form that runs on ``device``).
        device: where the forms run and are timed.
        train_device: where the IMP runs train (default: ``device``).
        cache_dir, data_root, progress: as for :func:`lthkit.runs.experiments.run_experiments`.
        prepare_only: train (or read) the runs and stop.
        argv: the command line, for ``run_info.json``.

    Returns:
        A :class:`SpeedStudy` (empty rows when ``prepare_only``).
    """
    from ..reporting.provenance import run_info
    from ..runs.cache import load_cached
    from ..runs.experiments import run_experiments

    began, load_before = time.time(), load_average()
    mode = DEFAULTS["fast" if fast else "full"]
    batch_sizes = list(mode["batch_sizes"] if batch_sizes is None else batch_sizes)
    threads = resolve_threads(mode["threads"] if threads is None else threads)
    min_run_time = mode["min_run_time"] if min_run_time is None else min_run_time
    configs = dict(configs) if configs is not None else study_configs(models, fast=fast)
    for value in batch_sizes:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LthkitError(f"batch sizes must be whole numbers of at least 1, got {value!r}")
    names, skipped = forms_for(device, forms)
    if not names:
        raise LthkitError(f"no form runs on {device}: " + "; ".join(skipped.values()))
    for model, config in configs.items():
        run_experiments([config], cache_dir=cache_dir, device=train_device or device, data_root=data_root,
                        progress=progress)
    study = SpeedStudy()
    if prepare_only:
        return study
    tickets = sum(config.rounds + 1 for config in configs.values())
    bar = tqdm(total=tickets, desc="exporting and timing tickets", unit="ticket", disable=not progress)
    try:
        for model, config in configs.items():
            data = get_data(config.data, "cpu", data_root)
            for round_index, network, masks in ticket_rounds(config, cache_dir=cache_dir):
                bar.set_postfix_str(f"{model} round {round_index}")
                found = measure_ticket(model, round_index, network, masks, data, device=device, forms=names,
                                       batch_sizes=batch_sizes, threads=threads, min_run_time=min_run_time)
                for key, rows in found.rows().items():
                    study.rows()[key].extend(rows)
                bar.update(1)
    finally:
        bar.close()
    seconds = [r.train.seconds for config in configs.values() for r in (load_cached(config, cache_dir).rounds)]
    study.info = run_info(
        "sparsity_speed", argv=argv, device=device, config={model: config.to_dict() for model, config in configs.items()},
        trials=1, trainings=len(seconds), training_seconds=round(sum(seconds), 1),
        wall_seconds=round(time.time() - began, 1), mode="fast" if fast else "full", models=list(configs),
        forms=names, skipped_forms=skipped, not_measured=gpu_forms_note(device, skipped), batch_sizes=batch_sizes, threads=threads,
        usable_cores=usable_cores(), min_run_time=min_run_time, min_blocks=MIN_BLOCKS, warmup_calls=3,
        tolerances={_dtype_name(dtype): {"rtol": rtol, "atol": atol} for dtype, (rtol, atol) in TOLERANCES.items()},
        test_images={model: config.data.test_size or 10_000 for model, config in configs.items()},
        load_average_before=load_before, load_average_after=load_average())
    return study


# --- the analysis -------------------------------------------------------------------------------

def _verdict(form: dict, baseline: dict) -> str:
    """``faster`` when the form's third quartile is below the baseline's first, ``slower`` the other way, else ``tie``."""
    if form["q3_ms"] < baseline["q1_ms"]:
        return "faster"
    if form["q1_ms"] > baseline["q3_ms"]:
        return "slower"
    return "tie"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%" if value >= 0.001 else f"{100 * value:.2f}%"


def _crossover(points: list[tuple[float, bool]]) -> dict:
    """From ``(density, wins)`` pairs: where the run of wins that reaches the sparsest density begins."""
    points = sorted(points, key=lambda point: point[0])  # sparsest first
    wins = 0
    while wins < len(points) and points[wins][1]:
        wins += 1
    if wins == 0:
        return {"faster_below": None, "slower_at": points[0][0] if points else None,
                "text": f"never (not at {_percent(points[0][0])}, the sparsest measured)" if points else "not measured"}
    if wins == len(points):
        return {"faster_below": points[-1][0], "slower_at": None,
                "text": f"at every density measured (up to {_percent(points[-1][0])})"}
    return {"faster_below": points[wins - 1][0], "slower_at": points[wins][0],
            "text": f"between {_percent(points[wins - 1][0])} and {_percent(points[wins][0])}"}


def crossovers(speed_rows) -> list[dict]:
    """The crossover density of every form against its baseline, per network, device, batch size and threads.

    Returns:
        Dicts with ``model``, ``device``, ``form``, ``baseline``, ``batch``, ``threads``,
        ``faster_below`` (the densest density of the winning run, or ``None``), ``slower_at`` (the next
        denser density, where it does not win, or ``None``), ``text``, and ``ratio_sparsest``
        (the form's median over the baseline's at the sparsest density).
    """
    timings = {(row["model"], row["device"], row["form"], row["batch"], row["threads"], row["round"]): row
               for row in speed_rows}
    settings = list(dict.fromkeys((row["model"], row["device"], row["form"], row["batch"], row["threads"])
                                  for row in speed_rows))
    found = []
    for model, device, form, batch, threads in settings:
        baseline = FORMS[form].baseline if form in FORMS else "dense"
        if form == baseline:
            continue
        pairs = [(row, timings.get((model, device, baseline, batch, threads, row["round"]))) for row in speed_rows
                 if (row["model"], row["device"], row["form"], row["batch"], row["threads"]) ==
                 (model, device, form, batch, threads)]
        pairs = [(row, base) for row, base in pairs if base is not None]
        if not pairs:
            continue
        entry = _crossover([(row["density"], _verdict(row, base) == "faster") for row, base in pairs])
        sparsest, base = min(pairs, key=lambda pair: pair[0]["density"])
        found.append({"model": model, "device": device, "form": form, "baseline": baseline, "batch": batch,
                      "threads": threads, **entry, "ratio_sparsest": sparsest["median_ms"] / base["median_ms"],
                      "sparsest": sparsest["density"]})
    return found


def size_crossovers(size_rows) -> list[dict]:
    """Below which density each sparse file is smaller than each dense one, per network.

    Example:
        >>> rows = [{"model": "m", "round": r, "density": d, "format": f, "bytes": b}
        ...         for r, d, f, b in [(0, 1.0, "dense", 100), (0, 1.0, "sparse", 150),
        ...                            (1, 0.5, "dense", 100), (1, 0.5, "sparse", 80)]]
        >>> size_crossovers(rows)[0]["text"]
        'between 50.0% and 100.0%'
    """
    by_key = {(row["model"], row["round"], row["format"]): row for row in size_rows}
    found = []
    for model in dict.fromkeys(row["model"] for row in size_rows):
        rounds = sorted({row["round"] for row in size_rows if row["model"] == model})
        for sparse in ("sparse", "sparse_compressed"):
            for dense in ("dense", "dense_compressed"):
                points = [(by_key[(model, r, sparse)]["density"],
                           by_key[(model, r, sparse)]["bytes"] < by_key[(model, r, dense)]["bytes"])
                          for r in rounds if (model, r, sparse) in by_key and (model, r, dense) in by_key]
                if points:
                    found.append({"model": model, "sparse": sparse, "dense": dense, **_crossover(points)})
    return found


# --- files and the report -----------------------------------------------------------------------

def read_rows(path) -> list[dict]:
    """One of the study's CSVs back, numbers as numbers (``agrees`` as a bool, an empty number as None).

    Raises:
        LthkitError: the file is missing or not such a CSV.
    """
    types = {**{key: int for key in _INTEGERS}, **{key: float for key in _FLOATS}, "agrees": bool}
    return read_typed_csv(path, types, "a results CSV of lthkit.studies.sparsity_speed", blank_is_none=True)


def load_speed_study(folder) -> SpeedStudy | None:
    """A results folder of this study (its CSVs and ``run_info.json``), or ``None`` when it holds no ``speed.csv``."""
    from ..reporting.provenance import read_run_info

    folder = Path(folder)
    if not (folder / "speed.csv").is_file():
        return None
    rows = {name: read_rows(folder / name) if (folder / name).is_file() else [] for name in CSV_FILES}
    return SpeedStudy(speed=rows["speed.csv"], exports=rows["exports.csv"], sizes=rows["sizes.csv"],
                      structure=rows["structure.csv"], two_four=rows["two_four.csv"],
                      info=read_run_info(folder / "run_info.json", "sparsity_speed"))


def study_figures(study: SpeedStudy) -> dict[str, bytes]:
    """The study's figures as PNG bytes, by file name (those whose CSV has rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..reporting import speed_plots

    rows = study.rows()
    pngs = {}
    for name, (source, function) in FIGURES.items():
        if rows[source]:
            figure = getattr(speed_plots, function)(rows[source])
            pngs[name] = figure_png(figure, dpi=110)
            plt.close(figure)
    return pngs


def _machine(info: dict) -> str:
    hardware = info.get("hardware") or {}
    parts = [hardware.get("gpu") or hardware.get("cpu") or "unknown processor",
             f"{hardware.get('cpu_count')} CPUs ({info.get('usable_cores')} usable)", f"torch {hardware.get('torch')}",
             f"Python {hardware.get('python')}", hardware.get("platform", "")]
    return ", ".join(part for part in parts if part)


def _config_line(model: str, config: dict) -> str:
    train, data = config.get("train", {}), config.get("data", {})
    rates = ", ".join(f"{layer} {rate:g}" for layer, rate in config.get("layer_rates") or [])
    return (f"`{model}`: {config.get('rounds')} rounds of IMP, {config.get('scope')}-wise {config.get('prune_rate')} "
            f"a round{f' ({rates})' if rates else ''}, rewinding to {config.get('rewind')}; "
            f"{train.get('optimizer')} lr {train.get('lr')}, {train.get('iterations')} iterations of batch "
            f"{train.get('batch_size')} on {data.get('train_size') or 'all'} training images; tested on "
            f"{data.get('test_size') or 'all 10,000'} test images")


def report_text(study: SpeedStudy) -> str:
    """``README.md`` of a sparsity-speed folder: how it was measured, the crossovers, the checks, the sizes, the structure.

    Every number in it is computed from the study's CSVs and ``run_info.json``.
    """
    info = study.info or {}
    labels = {name: form.label for name, form in FORMS.items()}
    lines = ["# Sparsity is not speed: tickets exported, checked and timed", "",
             "Generated by `python -m lthkit speed` (`python -m lthkit report DIR` rewrites it and the figures from the "
             "CSVs). The command, the machine and the time:", "",
             f"* command: `{info.get('command')}`",
             f"* machine: {info.get('machine')}: {_machine(info)}",
             f"* load average before and after (1, 5, 15 minutes): {info.get('load_average_before')} → "
             f"{info.get('load_average_after')}; timings are only as good as the machine was quiet",
             f"* finished: {info.get('finished')}; {info.get('wall_seconds')} s of wall time; git commit "
             f"{info.get('git_commit')}; code version {info.get('code_version')}",
             f"* mode: {info.get('mode')}" + (" (a check that the command works: its numbers mean nothing)"
                                               if info.get("mode") == "fast" else ""), "",
             "## What was measured", ""]
    for model, config in (info.get("config") or {}).items():
        lines.append(f"* {_config_line(model, config)}.")
    densities = {model: sorted({row["density"] for row in study.exports if row["model"] == model}, reverse=True)
                 for model in dict.fromkeys(row["model"] for row in study.exports)}
    for model, values in densities.items():
        lines.append(f"* `{model}`'s tickets: {len(values)} densities, {', '.join(_percent(v) for v in values)}.")
    lines += [f"* Forms: {', '.join(f'`{name}` ({labels.get(name, name)})' for name in info.get('forms', []))}.",
              f"* Timing: `torch.utils.benchmark.Timer.blocked_autorange` after {info.get('warmup_calls')} warm-up "
              f"calls, {info.get('min_run_time')} s of repeated blocks per timing and at least {info.get('min_blocks')} "
              f"blocks (a slower call repeated alone), median and interquartile range over the blocks; batch sizes {', '.join(map(str, info.get('batch_sizes', [])))}; threads "
              f"{', '.join(map(str, info.get('threads', [])))}; the forms of one density, batch size and thread count "
              "timed one after another.",
              "* A form **beats** the dense network at a density when its third quartile is below the dense network's "
              "first quartile; its **crossover** is where the run of such wins that reaches the sparsest density "
              "begins: between the densest density of that run and the next denser density measured.",
              "* Tolerances, stated before the runs (every output of an export against its reference, "
              "`|a − b| ≤ atol + rtol·|b|`): " + "; ".join(f"{dtype}: rtol {value['rtol']:g}, atol {value['atol']:g}"
                                                            for dtype, value in (info.get("tolerances") or {}).items()
                                                            if dtype in {row["dtype"] for row in study.exports}) + "."]
    if info.get("not_measured"):
        lines += ["", f"**GPU forms not measured** (dense float16, 2:4 semi-structured): {info['not_measured']}. On a "
                  "GPU machine, `python -m lthkit speed --device cuda` measures them."]
    lines += ["", "## Crossover densities: below these, the form beats the dense network", "",
              "| network | form | device | batch | threads | faster below | form ÷ dense at the sparsest |",
              "| --- | --- | --- | ---: | ---: | --- | ---: |"]
    for entry in crossovers(study.speed):
        lines.append(f"| {entry['model']} | {labels.get(entry['form'], entry['form'])} | {entry['device']} | "
                     f"{entry['batch']} | {entry['threads']} | {entry['text']} | {entry['ratio_sparsest']:.2f} at "
                     f"{_percent(entry['sparsest'])} |")
    lines += ["", "Latency of every form at every density: `speed_vs_density.png`, `speed.csv`.", "",
              "## Every export agrees with the masked network", "",
              "| network | form | device | tickets | largest output difference | within tolerance | predictions "
              "that differ | test images |", "| --- | --- | --- | ---: | ---: | --- | ---: | ---: |"]
    groups = {}
    for row in study.exports:
        groups.setdefault((row["model"], row["form"], row["device"]), []).append(row)
    for (model, form, device), rows in groups.items():
        agree = sum(row["agrees"] for row in rows)
        lines.append(f"| {model} | {labels.get(form, form)} | {device} | {len(rows)} | "
                     f"{max(row['max_abs_diff'] for row in rows):.2e} | {agree} of {len(rows)} | "
                     f"{sum(row['predictions_differ'] for row in rows)} | {rows[0]['test_images']:,} each |")
    lines += ["", "## 2:4 re-pruning: what it costs in test accuracy (no retraining)", "",
              "Every fully connected layer re-pruned so that at most 2 of every 4 consecutive weights of a row "
              "survive (the two largest survivors stay), the convolutions unchanged; the change in test accuracy "
              "against the ticket on the same images, with a paired 95% interval.", "",
              "| network | round | weights remaining | after 2:4 | ticket accuracy | 2:4 accuracy | change (points) [95%] |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in study.two_four:
        lines.append(f"| {row['model']} | {row['round']} | {_percent(row['density'])} | "
                     f"{_percent(row['density_two_four'])} | {100 * row['test_acc']:.2f}% | "
                     f"{100 * row['test_acc_two_four']:.2f}% | {100 * row['change']:+.2f} "
                     f"[{100 * row['change_low']:+.2f}, {100 * row['change_high']:+.2f}] |")
    lines += ["", "## What the compact network keeps", "",
              "Units (neurons, channels) of each layer the compact network keeps; the others had no surviving "
              "outgoing weight, or no surviving incoming one (their constant output folded into the next layer's "
              "bias, or zero). `structure_vs_density.png`, `structure.csv`.", "",
              "| network | round | weights remaining | units kept per layer | inputs read | compact weights ÷ dense |",
              "| --- | ---: | ---: | --- | ---: | ---: |"]
    by_ticket = {}
    for row in study.structure:
        by_ticket.setdefault((row["model"], row["round"]), []).append(row)
    for (model, round_index), rows in by_ticket.items():
        kept = ", ".join(f"{row['layer']} {row['units_kept']}/{row['units']}" for row in rows[:-1])
        compact = sum(row["compact_weights"] for row in rows) / sum(row["weights"] for row in rows)
        lines.append(f"| {model} | {round_index} | {_percent(rows[0]['density'])} | {kept} | "
                     f"{rows[0]['inputs_kept']}/{rows[0]['inputs']} | {_percent(compact)} |")
    lines += ["", "## The ticket on disk", "",
              "Bytes of each file (`.npz`; sparse: the survivors' float32 values, their column indices and row starts "
              "in the smallest unsigned type that holds them; compressed: deflate). `size_vs_density.png`, "
              "`sizes.csv`.", "", "| network | sparse file | smaller than | below |", "| --- | --- | --- | --- |"]
    for entry in size_crossovers(study.sizes):
        lines.append(f"| {entry['model']} | {FORMAT_LABELS[entry['sparse']]} | {FORMAT_LABELS[entry['dense']]} | "
                     f"{entry['text']} |")
    lines += ["", "| network | round | weights remaining | " + " | ".join(FORMAT_LABELS[name] for name in FORMATS) + " |",
              "| --- | ---: | ---: | " + " | ".join("---:" for _ in FORMATS) + " |"]
    sizes = {}
    for row in study.sizes:
        sizes.setdefault((row["model"], row["round"], row["density"]), {})[row["format"]] = row["bytes"]
    for (model, round_index, density), by_format in sizes.items():
        lines.append(f"| {model} | {round_index} | {_percent(density)} | " +
                     " | ".join(f"{by_format[name] / 1024:,.1f} KiB" if name in by_format else "" for name in FORMATS)
                     + " |")
    lines += ["", "Files: " + ", ".join(f"`{name}`" for name in OUTPUTS if name != "README.md") + ".", ""]
    return "\n".join(lines)


def study_files(folder, study: SpeedStudy, *, with_rows: bool = True) -> dict[Path, bytes]:
    """Every file of a results folder as bytes: the CSVs and ``run_info.json`` (``with_rows``), the figures, the report."""
    folder = Path(folder)
    files = {}
    if with_rows:
        files.update({folder / name: csv_text(rows, CSV_FILES[name]).encode() for name, rows in study.rows().items()})
        files[folder / "run_info.json"] = json_bytes(study.info)
    files.update({folder / name: png for name, png in study_figures(study).items()})
    files[folder / "README.md"] = with_kept_notes(folder / "README.md", report_text(study)).encode()
    return files


def write_study(folder, study: SpeedStudy) -> None:
    """Write the study's CSVs, figures, ``run_info.json`` and report into ``folder``, as one set."""
    atomic_write_files(study_files(folder, study))


def write_report(folder) -> Path:
    """Rewrite ``folder``'s ``README.md`` and figures from its CSVs and ``run_info.json`` (nothing is measured).

    Raises:
        LthkitError: the folder holds no ``speed.csv``, or a file is malformed.
    """
    study = load_speed_study(folder)
    if study is None:
        raise LthkitError(f"{folder} holds no speed.csv")
    atomic_write_files(study_files(folder, study, with_rows=False))
    return Path(folder) / "README.md"


#: This study, as the registry (lthkit.studies.STUDIES) and the report command see it.
STUDY = Study("sparsity_speed", "when a ticket is really smaller or faster: exports checked and timed against density",
              "python -m lthkit speed", "speed.csv", "model", read_rows, write_report)
