# mistake: reinitializes
# fails: rewinds_weight_orig, effective_weights
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for module in layers:
            nn.init.xavier_normal_(module.weight_orig)  # a fresh random init, not θ₀
    return model
