"""The reference solution of notebook 6's kata ``interpolate``: the library's own (:func:`lthkit.core.paths.interpolate`),
which the stability study uses."""

from ....core.paths import interpolate

__all__ = ["interpolate"]
