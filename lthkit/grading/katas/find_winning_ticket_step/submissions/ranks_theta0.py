# mistake: ranks_theta0
# fails: global_magnitude
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():  # rewinds first, so the pruning ranks θ₀
        for name, module in layers:
            target = module.weight_orig if hasattr(module, "weight_orig") else module.weight
            target.copy_(initial_state_dict[f"{name}.weight"])
    prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    return model
