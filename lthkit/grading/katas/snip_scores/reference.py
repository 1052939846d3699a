"""The reference solution of notebook 7's kata ``snip_scores``: the library's own (:func:`lthkit.imp.pai.snip_scores`),
which pruning at initialization uses."""

from ....imp.pai import snip_scores

__all__ = ["snip_scores"]
