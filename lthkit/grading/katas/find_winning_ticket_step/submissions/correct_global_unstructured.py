# mistake: none
# A correct solution as the kata's text describes it: one prune.global_unstructured call with
# prune.L1Unstructured over every (layer, "weight") pair, then θ₀ written into weight_orig.
import torch
from torch import nn
from torch.nn.utils import prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    targets = []
    for layer_name, layer in model.named_modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            targets.append((layer_name, layer))
    prune.global_unstructured([(layer, "weight") for _, layer in targets],
                              pruning_method=prune.L1Unstructured, amount=prune_amount)
    with torch.no_grad():
        for layer_name, layer in targets:
            layer.weight_orig.copy_(initial_state_dict[layer_name + ".weight"])
    return model
