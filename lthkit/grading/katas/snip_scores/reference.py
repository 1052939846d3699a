"""The reference solution of notebook 7's kata ``snip_scores``: the library's own (:func:`lthkit.pai.snip_scores`),
which pruning at initialization uses."""

from ....pai import snip_scores

__all__ = ["snip_scores"]
