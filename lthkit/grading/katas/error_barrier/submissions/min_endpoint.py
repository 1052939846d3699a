# mistake: min_endpoint
"""Measures the barrier from the better endpoint."""


def error_barrier(errors):
    return max(errors) - min(errors[0], errors[-1])
