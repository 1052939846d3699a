"""The reference solution of notebook 6's kata ``interpolate``: the library's own (:func:`lthkit.stability.interpolate`),
which the stability study uses."""

from ....stability import interpolate

__all__ = ["interpolate"]
