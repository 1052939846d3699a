"""How long a forward pass takes, measured with ``torch.utils.benchmark``.

:func:`time_forward` warms the network up (thread pools, kernel choices, caches), then lets
:class:`torch.utils.benchmark.Timer` pick how many calls make a block of measurable length and
repeat blocks until ``min_run_time`` seconds have passed, and at least :data:`MIN_BLOCKS` blocks (a
call slower than that is repeated alone), at a fixed number of threads. It reports the median time
per call and the interquartile range over the blocks (a block's time is its mean per call), so a
measurement carries its own noise. The timer waits for a GPU at both ends.

:func:`usable_cores` is "all cores": the CPUs this process may run on.

Example:
    >>> from torch import nn
    >>> timing = time_forward(nn.Linear(8, 4), torch.zeros(2, 8), threads=1, min_run_time=0.01)
    >>> timing.q1_s <= timing.median_s <= timing.q3_s, timing.runs > 0
    (True, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import LthkitError

#: The fewest timed blocks of one measurement (slow calls are repeated one by one to reach it).
MIN_BLOCKS = 5


@dataclass(frozen=True)
class Timing:
    """One measurement: seconds per forward pass (median, first and third quartile over blocks) and how many calls."""

    median_s: float
    q1_s: float
    q3_s: float
    runs: int
    threads: int


def usable_cores() -> int:
    """The number of CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_forward(network, inputs: torch.Tensor, *, threads: int = 1, min_run_time: float = 0.5,
                 warmup: int = 3, min_blocks: int = MIN_BLOCKS) -> Timing:
    """Seconds per ``network(inputs)`` under ``torch.no_grad()``, at ``threads`` threads.

    Args:
        network: the network (in eval mode).
        inputs: one batch, on the network's device.
        threads: torch's intra-op threads during the measurement.
        min_run_time: seconds of repeated blocks to measure (more: a steadier median).
        warmup: calls before timing.
        min_blocks: the fewest timed blocks: a call slower than ``min_run_time`` is repeated alone
            until there are this many.

    Returns:
        A :class:`Timing`.

    Raises:
        LthkitError: ``threads`` or ``min_run_time`` out of range.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise LthkitError(f"threads must be a whole number of at least 1, got {threads!r}")
    if not isinstance(min_run_time, (int, float)) or isinstance(min_run_time, bool) or not 0 < min_run_time <= 600:
        raise LthkitError(f"min_run_time must be a number of seconds in (0, 600], got {min_run_time!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            for _ in range(warmup):
                network(inputs)
        from torch.utils import benchmark  # here, not at import: it pulls in setuptools and warns without CUDA

        timer = benchmark.Timer(stmt="with torch.no_grad():\n    network(inputs)",
                                globals={"network": network, "inputs": inputs, "torch": torch}, num_threads=threads)
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
        times, runs = list(measurement.times), int(measurement.number_per_run * len(measurement.times))
        while len(times) < min_blocks:  # a slow call fills min_run_time alone: repeat it, so the quartiles mean something
            times.append(timer.timeit(number=1).times[0])
            runs += 1
    finally:
        torch.set_num_threads(previous)
    return Timing(median_s=_quantile(times, 0.5), q1_s=_quantile(times, 0.25), q3_s=_quantile(times, 0.75),
                  runs=runs, threads=threads)
