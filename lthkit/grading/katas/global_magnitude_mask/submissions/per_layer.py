# mistake: per_layer
import torch


def global_magnitude_mask(weights, masks, amount):
    new = {}
    for name, weight in weights.items():
        alive = weight.abs()[masks[name]]
        n_prune = round(amount * alive.numel())
        threshold = torch.kthvalue(alive, n_prune).values if n_prune else -1
        new[name] = masks[name] & (weight.abs() > threshold)
    return new
