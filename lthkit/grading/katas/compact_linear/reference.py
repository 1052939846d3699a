"""The reference solution of notebook 9's kata ``compact_linear``: the library's own
(:func:`lthkit.export.compact.compact_linear`), one hidden layer's part of the compact network."""

from ....export.compact import compact_linear

__all__ = ["compact_linear"]
