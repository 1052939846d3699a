# mistake: per_layer
# fails: global_magnitude
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            prune.l1_unstructured(module, "weight", amount=prune_amount)  # one threshold per layer
            with torch.no_grad():
                module.weight_orig.copy_(initial_state_dict[f"{name}.weight"])
    return model
