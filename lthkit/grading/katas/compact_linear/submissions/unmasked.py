# mistake: unmasked
# fails: compact_weight, same_function
"""Cuts the rows from the raw weight: the pruned weights come back."""


def compact_linear(weight, bias, mask_in, mask_out):
    keep = mask_out.any(0) & (mask_in.any(1) | (bias > 0))
    return weight[keep], bias[keep], keep
