# mistake: mutates_inputs
"""Sorts the list in place to find the maximum (and so reads the wrong endpoints)."""


def error_barrier(errors):
    first, last = errors[0], errors[-1]
    errors.sort()
    return errors[-1] - (first + last) / 2
