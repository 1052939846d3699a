# mistake: revives_pruned
import torch


def global_magnitude_mask(weights, masks, amount):
    alive = torch.cat([w.abs()[m] for w, m in zip(weights.values(), masks.values())])
    threshold = torch.kthvalue(alive, round(amount * alive.numel())).values
    return {name: weights[name].abs() > threshold for name in weights}  # forgets "& masks[name]"
