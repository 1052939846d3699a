# mistake: none
# A correct solution written differently: the surviving magnitudes of all layers are sorted, the
# threshold is read off the sorted list, and each layer's new mask (old mask and above the
# threshold) is handed to torch.nn.utils.prune; a dict keyed by layer name throughout.
import torch
import torch.nn.utils.prune as prune
from torch.nn import Conv2d, Linear


def weight_layers(net):
    return {key: sub for key, sub in net.named_modules() if isinstance(sub, (Linear, Conv2d))}


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = weight_layers(model)
    old_masks = {}
    for key, sub in layers.items():
        if hasattr(sub, "weight_mask"):
            old_masks[key] = sub.weight_mask.bool()
        else:
            old_masks[key] = torch.ones_like(sub.weight, dtype=torch.bool)
    alive = torch.cat([sub.weight.detach().abs()[old_masks[key]] for key, sub in layers.items()])
    how_many = int(round(prune_amount * alive.numel()))
    cutoff = torch.sort(alive).values[how_many - 1] if how_many > 0 else None
    for key, sub in layers.items():
        keep = old_masks[key].clone()
        if cutoff is not None:
            keep &= sub.weight.detach().abs() > cutoff
        prune.custom_from_mask(sub, name="weight", mask=keep)
        with torch.no_grad():
            sub.weight_orig.data = initial_state_dict[key + ".weight"].clone()
    return model
