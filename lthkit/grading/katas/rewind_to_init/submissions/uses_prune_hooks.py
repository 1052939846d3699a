# mistake: uses_prune_hooks
import torch
from torch.nn.utils import prune


def rewind_to_init(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(initial_state_dict[name])
    for name, mask in masks.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        prune.custom_from_mask(module, "weight", mask)
    return model
