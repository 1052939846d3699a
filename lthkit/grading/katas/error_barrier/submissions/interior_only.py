# mistake: interior_only
"""Takes the maximum over the inner points only."""


def error_barrier(errors):
    inner = errors[1:-1] or errors
    return max(inner) - (errors[0] + errors[-1]) / 2
