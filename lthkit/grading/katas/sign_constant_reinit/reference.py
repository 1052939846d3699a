"""The reference solution of notebook 7's kata ``sign_constant_reinit``: the library's own
(:func:`lthkit.imp.resets.sign_constant_reinit`), which the anatomy study's ``sign_constant`` branch uses."""

from ....imp.resets import sign_constant_reinit

__all__ = ["sign_constant_reinit"]
