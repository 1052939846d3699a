# mistake: bias_forgotten
"""Cuts the weight's rows but returns the whole bias."""


def compact_linear(weight, bias, mask_in, mask_out):
    keep = mask_out.any(0) & (mask_in.any(1) | (bias > 0))
    return (weight * mask_in)[keep], bias, keep
