# mistake: mutates_initial_state
# fails: initial_state_untouched
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for name, module in layers:
            theta0 = initial_state_dict[f"{name}.weight"]
            theta0.mul_(module.weight_mask)  # masks θ₀ itself, in place
            module.weight_orig.copy_(theta0)
    return model
