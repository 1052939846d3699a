# mistake: cuts_inputs
"""Also removes the columns of the inputs no weight reads (the previous layer's business)."""


def compact_linear(weight, bias, mask_in, mask_out):
    keep = mask_out.any(0) & (mask_in.any(1) | (bias > 0))
    columns = mask_in.any(0)
    return (weight * mask_in)[keep][:, columns], bias[keep], keep
