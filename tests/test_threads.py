"""One torch thread per training in a notebook kernel (issue 27, item 6): lthkit.runs.threads."""

from __future__ import annotations

import pytest
import torch

import lthkit.runs.threads as threads
from lthkit.core.train import TrainConfig
from lthkit.errors import LthkitError
from lthkit.imp.config import LotteryConfig
from lthkit.runs.experiments import run_experiments


def test_a_kernel_trains_on_one_thread_and_torch_is_restored(monkeypatch):
    monkeypatch.delenv("LTHKIT_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads.training_threads(kernel=True) as used:
            assert used == 1 == torch.get_num_threads()
        assert torch.get_num_threads() == 2
        with threads.training_threads(kernel=False) as used:
            assert used == 2  # outside a kernel: torch's own setting
    finally:
        torch.set_num_threads(before)


def test_lthkit_threads_sets_it_everywhere_and_is_checked(monkeypatch):
    monkeypatch.setenv("LTHKIT_THREADS", "3")
    assert threads.chosen_threads(kernel=False) == 3 and threads.chosen_threads(kernel=True) == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("LTHKIT_THREADS", bad)
        with pytest.raises(LthkitError, match="LTHKIT_THREADS must be a positive whole number"):
            threads.chosen_threads()


def test_run_experiments_trains_on_the_chosen_threads(tiny_data, tmp_path, monkeypatch):
    monkeypatch.delenv("LTHKIT_THREADS", raising=False)
    monkeypatch.setattr(threads, "in_kernel", lambda: True)  # as in a Jupyter kernel
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []
    try:
        config = LotteryConfig(rounds=1, prune_rate=0.5, train=TrainConfig(iterations=10, eval_every=5, batch_size=16))
        run_experiments([config], cache_dir=tmp_path, data=tiny_data, progress=False,
                        on_round=lambda *_: seen.append(torch.get_num_threads()))
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_outside_a_kernel_nothing_says_kernel():
    assert threads.in_kernel() is False
