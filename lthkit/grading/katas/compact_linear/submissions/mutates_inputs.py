# mistake: mutates_inputs
"""Masks the ticket's weight in place before cutting its rows."""


def compact_linear(weight, bias, mask_in, mask_out):
    weight.mul_(mask_in)
    keep = mask_out.any(0) & (mask_in.any(1) | (bias > 0))
    return weight[keep], bias[keep], keep
