"""Reproducing Frankle & Carbin's LeNet-300-100 results (ICLR 2019 version, §2 and Appendix G).

:func:`reproduce` runs the ``paper`` preset for several trials and all three controls through the
cache (so it resumes after an interrupt), and after every finished run rewrites, in its output
folder:

* ``summary.csv``: one row per (control, trial, round), the columns of
  :data:`lthkit.experiments.SUMMARY_COLUMNS` (accuracies as fractions);
* ``accuracy_vs_density.png`` and ``early_stop_vs_density.png``: the paper's Figure 3 and 4
  layouts (log P_m axis, min/max bands over trials, ticket vs re-init vs random pruning);
* ``run_info.json``: what was run, on what hardware, with which code, and how long it took.

The committed full-protocol output lives in ``results/paper-lenet300/``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from . import __version__
from .experiments import code_version, preset, run_experiment, write_summary_csv
from .files import atomic_write_json
from .lottery import CONTROLS

#: The paper's percent of weights remaining (P_m) after each round of LeNet-300-100 IMP.
PAPER_PM = (100, 80.0, 64.1, 51.3, 41.1, 32.9, 26.3, 21.1, 16.9, 13.5, 10.8, 8.7, 7.0, 5.6, 4.5, 3.6, 2.9, 2.3,
            1.9, 1.5, 1.2)


def hardware_description(device: str) -> dict:
    """The machine a run happened on, for the record."""
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        if models:
            info["cpu"] = models[0]
    except OSError:
        pass
    return info


def git_commit() -> str | None:
    """The commit of the checkout lthkit runs from, if it is a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def write_figures(out: Path, runs) -> None:
    """Figure 3 (test accuracy at early stop) and Figure 4 (early-stop iteration) against P_m."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import accuracy_vs_density, early_stop_vs_density

    for name, plot, title in (
            ("accuracy_vs_density.png", accuracy_vs_density, "LeNet-300-100 on MNIST: test accuracy at early stop"),
            ("early_stop_vs_density.png", early_stop_vs_density, "LeNet-300-100 on MNIST: early-stop iteration")):
        figure = plot(runs, title=title)
        figure.savefig(out / name, dpi=130)
        plt.close(figure)


def reproduce(out, *, base=None, trials: int = 5, rounds: int = 20, controls=CONTROLS, first_seed: int = 0,
              device: str = "cpu", cache_dir=None, data_root=None, progress: bool = True, argv=None) -> list:
    """Run the paper's protocol trial by trial and keep ``out`` up to date after every run.

    Args:
        out: the output folder.
        base: the config to run (default: ``preset("paper", rounds=rounds)``).
        trials: independent trials (seeds ``first_seed`` ... ``first_seed + trials - 1``).
        rounds: pruning rounds when ``base`` is not given (20 reaches P_m = 1.2%).
        controls: which of ticket, reinit and random_prune to run, in that order.
        first_seed: the seed of the first trial.
        device: ``"cpu"`` or ``"cuda"``.
        cache_dir, data_root: see :func:`lthkit.experiments.run_experiment`.
        progress: show progress bars.
        argv: the command line, recorded in ``run_info.json``.

    Returns:
        The :class:`~lthkit.lottery.LotteryResult` of every run.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = base or preset("paper", rounds=rounds)
    began = time.time()
    info = {"command": " ".join(argv) if argv else None, "lthkit_version": __version__,
            "code_version": code_version(), "git_commit": git_commit(), "config": base.to_dict(),
            "trials": trials, "controls": list(controls), "hardware": hardware_description(device), "runs": []}
    results = []
    for trial in range(first_seed, first_seed + trials):
        for control in controls:
            run_began = time.time()
            result = run_experiment(base.replace(control=control, seed=trial), cache_dir=cache_dir, device=device,
                                    data_root=data_root, progress=progress)
            results.append(result)
            info["runs"].append({"control": control, "trial": trial, "rounds": len(result.rounds),
                                 "training_seconds": round(sum(r.train.seconds for r in result.rounds), 1),
                                 "wall_seconds_this_invocation": round(time.time() - run_began, 1),
                                 "iterations_trained": sum(r.train.iterations - r.train.start_iteration
                                                           for r in result.rounds),
                                 "runs_stopped_by_patience": sum(r.train.stopped_by_patience for r in result.rounds)})
            info["wall_seconds_this_invocation"] = round(time.time() - began, 1)
            write_summary_csv(out / "summary.csv", results)
            write_figures(out, results)
            atomic_write_json(out / "run_info.json", info)
            print(f"[{time.strftime('%H:%M:%S')}] {control} trial {trial}: {len(result.rounds)} rounds done; "
                  f"outputs updated in {out}", file=sys.stderr, flush=True)
    return results
