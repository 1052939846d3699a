# Issue 12, problem 11: a correct solution whose constant is built by a call (it used to be
# skipped silently: 0/10 with a misleading hint).
import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE = tuple([nn.Linear, nn.Conv2d])
DEVICE = torch.device("cpu")


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, PRUNABLE)]
    prune.global_unstructured([(module, "weight") for _, module in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for name, module in layers:
            module.weight_orig.copy_(initial_state_dict[name + ".weight"].to(DEVICE))
    return model
