# mistake: none
# A correct solution written differently: the global threshold is computed by hand with topk and
# handed to torch.nn.utils.prune as a custom mask (which combines with the existing one).
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

PRUNABLE = (nn.Linear, nn.Conv2d)


def prunable(model):
    return [(name, module) for name, module in model.named_modules() if isinstance(module, PRUNABLE)]


@torch.no_grad()
def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = prunable(model)
    weights, masks = [], []
    for _, module in layers:
        mask = module.weight_mask if hasattr(module, "weight_mask") else torch.ones_like(module.weight)
        weights.append(module.weight.detach().reshape(-1))
        masks.append(mask.reshape(-1))
    flat_weights, flat_masks = torch.cat(weights), torch.cat(masks)
    alive = flat_masks.nonzero().squeeze(1)
    k = round(prune_amount * alive.numel())
    new_mask = torch.ones_like(flat_masks)
    if k:
        smallest = torch.topk(flat_weights[alive].abs(), k, largest=False).indices
        new_mask[alive[smallest]] = 0
    offset = 0
    for name, module in layers:
        size = module.weight.numel()
        prune.custom_from_mask(module, "weight", new_mask[offset:offset + size].view_as(module.weight))
        offset += size
        module.weight_orig.copy_(initial_state_dict[name + ".weight"])
    return model
