# Issue 12, problem 11: a correct solution saved with a UTF-8 BOM (some Windows editors write one).
import torch
from torch import nn
from torch.nn.utils import prune

def _solve(model, initial_state_dict, prune_amount):
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured([(module, "weight") for _, module in layers], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for name, module in layers:
            module.weight_orig.copy_(initial_state_dict[name + ".weight"])
    return model


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    return _solve(model, initial_state_dict, prune_amount)
