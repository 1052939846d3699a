"""Shared fixtures: tiny synthetic data sets and MNIST-format files for the real loader."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest
import torch

from lthkit.core.data import MNISTData, normalize_images

# The tests train tiny models, for which one thread is as fast as two; more threads than free
# cores make OpenMP spin-wait, which slows a busy machine (CI or a laptop) by an order of magnitude.
torch.set_num_threads(1)
# The command line's default is a Dask sweep on every core; tests train in-process unless they ask
# for workers (tests/test_sweep.py), and so do the commands they start.
os.environ["LTHKIT_WORKERS"] = "1"
os.environ.pop("LTHKIT_SCHEDULER", None)


def synthetic_images(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 28x28 images of 10 learnable classes: a class prototype plus noise."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(10, 28, 28, generator=torch.Generator().manual_seed(1234)) * 200
    labels = torch.randint(0, 10, (count,), generator=generator)
    noise = torch.rand(count, 28, 28, generator=generator) * 120
    return (prototypes[labels] * 0.6 + noise).clamp(0, 255).to(torch.uint8), labels


def write_idx(raw: Path, prefix: str, images: torch.Tensor, labels: torch.Tensor, *, compress: bool) -> None:
    """Write images and labels in MNIST's idx format (big-endian header + uint8 payload)."""
    image_bytes = struct.pack(">IIII", 2051, len(images), 28, 28) + images.numpy().tobytes()
    label_bytes = struct.pack(">II", 2049, len(labels)) + labels.to(torch.uint8).numpy().tobytes()
    for name, payload in ((f"{prefix}-images-idx3-ubyte", image_bytes), (f"{prefix}-labels-idx1-ubyte", label_bytes)):
        if compress:
            (raw / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (raw / name).write_bytes(payload)


@pytest.fixture
def mnist_root(tmp_path) -> Path:
    """A data root holding small, already-extracted MNIST-format files (1,200 train, 300 test)."""
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", *synthetic_images(1200, seed=1), compress=False)
    write_idx(raw, "t10k", *synthetic_images(300, seed=2), compress=False)
    return tmp_path / "mnist"


def make_tiny_data(train: int = 600, val: int = 200, test: int = 250, seed: int = 0) -> MNISTData:
    images, labels = synthetic_images(train + val + test, seed=seed)
    x = normalize_images(images)
    return MNISTData(x[:train], labels[:train], x[train:train + val], labels[train:train + val],
                     x[train + val:], labels[train + val:])


@pytest.fixture(scope="session")
def tiny_data() -> MNISTData:
    """600 training, 200 validation and 250 test images of a learnable synthetic task."""
    return make_tiny_data()


@pytest.fixture(scope="session")
def graded_submissions():
    """kata → {file name: report}: every kata folder's example submission graded once per session, two sandboxes
    at a time (lthkit.grading.katas.submissions), the slowest (the hanging one) first."""
    from concurrent.futures import ThreadPoolExecutor

    from lthkit.grading import grade_file
    from lthkit.grading.grader import single_threaded_torch
    from lthkit.grading.katas import kata_names, submissions
    from lthkit.grading.sandbox import Limits

    limits = Limits(timeout=10, memory_mb=512)  # generous: the machine may be busy
    jobs = [(path, kata) for kata in kata_names() for path in submissions(kata)]
    jobs.sort(key=lambda job: job[0].name != "hang.py")
    with single_threaded_torch(), ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda job: grade_file(job[0], job[1], limits), jobs))
    graded = {kata: {} for kata in kata_names()}
    for (path, kata), report in zip(jobs, reports):
        graded[kata][path.name] = report
    return graded
