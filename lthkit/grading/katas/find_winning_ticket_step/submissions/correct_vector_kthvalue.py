# mistake: none
# A correct solution written differently: every weight of the network in one vector
# (parameters_to_vector), the already-pruned ones set to infinity so that they never count, the
# k-th smallest magnitude as the threshold, and the vector cut back into per-layer masks that
# are multiplied into the existing weight_mask buffers by prune.custom_from_mask.
import math

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    modules, names = [], []
    for qualified, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            modules.append(module)
            names.append(qualified)
    magnitudes = parameters_to_vector([m.weight.detach().abs() for m in modules])
    existing = parameters_to_vector([getattr(m, "weight_mask", torch.ones_like(m.weight)) for m in modules])
    magnitudes[existing == 0] = math.inf
    remaining = int(existing.sum().item())
    count = round(prune_amount * remaining)
    pruned = torch.zeros_like(magnitudes, dtype=torch.bool)
    if count > 0:
        threshold = torch.kthvalue(magnitudes, count).values
        pruned = magnitudes <= threshold
    start = 0
    for module, qualified in zip(modules, names):
        size = module.weight.numel()
        piece = ~pruned[start:start + size]
        start += size
        prune.custom_from_mask(module, "weight", piece.reshape(module.weight.shape))
        theta0 = initial_state_dict[f"{qualified}.weight"]
        with torch.no_grad():
            module.weight_orig.copy_(theta0)
            module.weight = module.weight_orig * module.weight_mask
    return model
