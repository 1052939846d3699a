# mistake: writes_weight
# fails: rewinds_weight_orig, effective_weights
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for name, module in layers:
            module.weight.copy_(initial_state_dict[f"{name}.weight"] * module.weight_mask)  # lost at the next forward
    return model
