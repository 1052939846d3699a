"""The reference solution of notebook 7's kata ``snip_scores``: the library's own (:func:`lthkit.imp.scorers.snip_scores`),
which pruning at initialization uses."""

from ....imp.scorers import snip_scores

__all__ = ["snip_scores"]
