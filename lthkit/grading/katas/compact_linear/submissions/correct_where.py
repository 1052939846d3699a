# mistake: none
"""Vectorized, with torch.where for the pruned weights and index_select for the rows."""
import torch


def compact_linear(weight, bias, mask_in, mask_out):
    alive = mask_in.sum(dim=1) > 0
    reached = mask_out.sum(dim=0) > 0
    keep = reached & (alive | (bias > 0))
    rows = keep.nonzero().flatten()
    masked = torch.where(mask_in, weight, torch.zeros_like(weight))
    return masked.index_select(0, rows), bias.index_select(0, rows), keep
