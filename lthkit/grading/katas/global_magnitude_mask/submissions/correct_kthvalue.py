# mistake: none
import torch


def global_magnitude_mask(weights, masks, amount):
    alive = torch.cat([w.abs()[m] for w, m in zip(weights.values(), masks.values())])
    n_prune = round(amount * alive.numel())
    if n_prune == 0:
        return {name: mask.clone() for name, mask in masks.items()}
    threshold = torch.kthvalue(alive, n_prune).values
    return {name: masks[name] & (weights[name].abs() > threshold) for name in weights}
