# mistake: middle_only
"""Looks only at the middle of the path."""


def error_barrier(errors):
    return errors[len(errors) // 2] - (errors[0] + errors[-1]) / 2
