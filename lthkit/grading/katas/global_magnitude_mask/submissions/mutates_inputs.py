# mistake: mutates_inputs
import torch


def global_magnitude_mask(weights, masks, amount):
    alive = torch.cat([w.abs()[m] for w, m in zip(weights.values(), masks.values())])
    threshold = torch.kthvalue(alive, round(amount * alive.numel())).values
    for name in masks:
        masks[name] &= weights[name].abs() > threshold  # changes the caller's masks
    return masks
