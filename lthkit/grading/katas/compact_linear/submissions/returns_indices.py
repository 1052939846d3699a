# mistake: returns_wrong_type
"""Returns the kept neurons' indices instead of a boolean keep."""


def compact_linear(weight, bias, mask_in, mask_out):
    keep = mask_out.any(0) & (mask_in.any(1) | (bias > 0))
    rows = keep.nonzero().flatten()
    return (weight * mask_in)[rows], bias[rows], rows
