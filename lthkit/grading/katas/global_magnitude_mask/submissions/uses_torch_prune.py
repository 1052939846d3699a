# mistake: uses_torch_prune
import torch
from torch import nn
from torch.nn.utils import prune


def global_magnitude_mask(weights, masks, amount):
    holders = {}
    for name, weight in weights.items():
        holder = nn.Module()
        holder.weight = nn.Parameter(weight.clone())
        prune.custom_from_mask(holder, "weight", masks[name])
        holders[name] = holder
    prune.global_unstructured([(h, "weight") for h in holders.values()], prune.L1Unstructured, amount=amount)
    return {name: h.weight_mask.bool() for name, h in holders.items()}
