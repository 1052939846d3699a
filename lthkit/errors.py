"""The one error type of lthkit: a problem with the input, described in one line."""


class LthkitError(ValueError):
    """A problem with the input to an lthkit function, described in one line.

    Raised for bad arguments, missing data or broken files. It subclasses :class:`ValueError`
    so that callers that already catch ``ValueError`` keep working.
    """


LthkitError.__module__ = "lthkit"  # its public name: lthkit.LthkitError, whichever module raised it
