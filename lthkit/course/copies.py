"""The two copies of an instability measurement, for a notebook to look at (and check) without the cache's machinery.

Instability analysis trains one network twice from θ_k, on two batch orders: the run (copy A) and its twin
(copy B). :func:`the_two_copies` reads both of one :class:`~lthkit.studies.stability.Pair` back from the run cache,
so that notebook 6 can check, in plain ``assert``\\ s, that the copies started from the same θ_k with the same mask
and ended at different weights.

Example:
    >>> same_tensors({"w": torch.ones(2)}, {"w": torch.ones(2)}), same_tensors({"w": torch.ones(2)}, {"w": torch.zeros(2)})
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import LthkitError


@dataclass(frozen=True)
class Copy:
    """One copy of a pair: where it started (θ_k), its mask, and where training took it.

    Attributes:
        start: the weights at θ_k (``{name: tensor}``), captured during the dense round of its run.
        mask: the mask of the round measured (``{weight name: bool tensor}``).
        trained: the trained weights of that round (pruned weights 0).
    """

    start: dict
    mask: dict
    trained: dict


@dataclass(frozen=True)
class Copies:
    """Copy A (the run) and copy B (its twin) of one instability measurement."""

    a: Copy
    b: Copy


def same_tensors(first: dict, second: dict) -> bool:
    """Whether two ``{name: tensor}`` dicts hold the same names and exactly the same values."""
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def the_two_copies(pair, cache_dir=None) -> Copies:
    """Copy A and copy B of ``pair`` (a :class:`~lthkit.studies.stability.Pair`), read from the run cache.

    Args:
        pair: one measurement of :func:`~lthkit.studies.stability.stability_pairs` (its runs trained already).
        cache_dir: the run cache (default: ``$LTHKIT_CACHE`` or ``cache/``).

    Returns:
        :class:`Copies`.

    Raises:
        LthkitError: a round of the pair is not in the cache (run the study first).
    """
    from ..runs.cache import DiskStore, cache_entry

    copies = []
    for config in (pair.source, pair.twin):
        store = DiskStore(cache_entry(config, cache_dir), config)
        dense, measured = store.load(0), store.load(pair.round)
        if dense is None or measured is None:
            raise LthkitError(f"{pair.kind} at k={pair.k} (trial {pair.trial}, {config.control}) is not in the "
                              "cache: run the study first")
        copies.append(Copy(start=dense.rewind_state, mask=measured.mask, trained=measured.trained_state))
    return Copies(*copies)
