# mistake: outgoing_only
"""Looks only at the outgoing weights: keeps neurons that always output 0."""


def compact_linear(weight, bias, mask_in, mask_out):
    keep = mask_out.any(0)
    return (weight * mask_in)[keep], bias[keep], keep
