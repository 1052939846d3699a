"""The reference solution of notebook 6's kata ``error_barrier``: the library's own (:func:`lthkit.core.paths.error_barrier`),
which the stability study uses."""

from ....core.paths import error_barrier

__all__ = ["error_barrier"]
