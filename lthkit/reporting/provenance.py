"""Where, with what and how long results were computed: ``run_info.json``, one schema for every study.

Every results folder holds a ``run_info.json`` written by :func:`run_info`: the keys of
:data:`RUN_INFO_KEYS` (what ran, with which code, on what machine, how long it took), then the
study's own fields. :func:`read_run_info` reads one back, upgrading the records earlier versions
of lthkit wrote (their drifted key names: ``wall_seconds_this_invocation``, ``base_config`` ...).

Example:
    >>> info = run_info("toy", argv=["python", "-m", "lthkit", "run"], device="cpu", config={"rounds": 1})
    >>> list(info)[:4]
    ['study', 'command', 'lthkit_version', 'code_version']
    >>> check_run_info(info) is info
    True
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from .. import __version__
from ..core.files import read_json_record
from ..errors import LthkitError
from ..runs.cache import code_version

#: The keys every ``run_info.json`` has, in this order (``None`` where a record cannot know one).
RUN_INFO_KEYS = ("study", "command", "lthkit_version", "code_version", "git_commit", "hardware", "machine", "config",
                 "trials", "trainings", "training_seconds", "wall_seconds", "finished")
#: Names earlier records used for keys of the schema.
_OLD_NAMES = {"wall_seconds_this_invocation": "wall_seconds", "wall_seconds_this_call": "wall_seconds",
              "base_config": "config", "training_seconds_recorded": "training_seconds"}


def hardware_description(device: str) -> dict:
    """The machine a run happened on, for the record."""
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


def run_info(study: str, *, argv=None, device: str | None = "cpu", **fields) -> dict:
    """A ``run_info.json`` record: the schema's keys (:data:`RUN_INFO_KEYS`), then ``fields``.

    Args:
        study: the study's name (``"paper"``, ``"stability"``, ``"anatomy"``, ``"notebook"``).
        argv: the command line (a list, or a string).
        device: where it trained (``None`` when the record describes several machines, as a merge does).
        **fields: values of the schema's other keys (``config``, ``trials``, ``wall_seconds`` ...) and the
            study's own fields.
    """
    command = " ".join(argv) if isinstance(argv, (list, tuple)) else argv
    info = {"study": study, "command": command, "lthkit_version": __version__, "code_version": code_version(),
            "git_commit": git_commit(), "hardware": None if device is None else hardware_description(device),
            "machine": platform.node(), "config": None, "trials": None, "trainings": None, "training_seconds": None,
            "wall_seconds": None, "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    info.update(fields)
    return info


def upgrade_run_info(info: dict, study: str) -> dict:
    """An earlier record in the schema: old key names renamed, missing keys ``None``, the schema's keys first."""
    info = {_OLD_NAMES.get(key, key): value for key, value in info.items()}
    if isinstance(info.get("machine"), dict) and "hardware" not in info:  # an early anatomy record's "machine"
        info["hardware"], info["machine"] = info["machine"], None
    if "merged_from" in info and isinstance(info["merged_from"], list):
        info["merged_from"] = [upgrade_run_info(part, study) if isinstance(part, dict) else part
                               for part in info["merged_from"]]
    info.setdefault("study", study)
    return {**{key: info.get(key) for key in RUN_INFO_KEYS}, **{k: v for k, v in info.items() if k not in RUN_INFO_KEYS}}


def check_run_info(info: dict, where: str = "run_info.json") -> dict:
    """``info`` if it has every key of :data:`RUN_INFO_KEYS`.

    Raises:
        LthkitError: it is not a dict, or lacks a key (named).
    """
    if not isinstance(info, dict):
        raise LthkitError(f"{where} is not a run record (a JSON object)")
    missing = [key for key in RUN_INFO_KEYS if key not in info]
    if missing:
        raise LthkitError(f"{where} lacks {', '.join(missing)} (see lthkit.reporting.provenance.RUN_INFO_KEYS)")
    return info


def read_run_info(path, study: str, *, required: bool = False) -> dict:
    """A folder's ``run_info.json``, upgraded to the schema (``{}`` when absent and not ``required``).

    Raises:
        LthkitError: the file is broken, or absent when ``required``.
    """
    info = read_json_record(path, required=required)
    return check_run_info(upgrade_run_info(info, study), str(path)) if info else {}
