# mistake: global_scope
# fails: layer_wise_magnitude, compounding_rate
# One threshold across all layers.
import copy

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def layers_of(model):
    return [(name, module) for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]


def with_masks(model, masks):
    for name, module in layers_of(model):
        prune.custom_from_mask(module, "weight", masks[name])
    return model


def iterative_magnitude_pruning(new_network, train, rounds, rate, output_rate):
    model = new_network()
    theta0 = copy.deepcopy(model.state_dict())
    layers = layers_of(model)
    results = {"ticket": [train(model)], "reinit": [], "random_prune": []}
    for _ in range(rounds):
        prune.global_unstructured([(module, "weight") for _, module in layers], pruning_method=prune.L1Unstructured,
                                  amount=rate)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                parameter.copy_(theta0[name.replace("_orig", "")])
        masks = {name: module.weight_mask.clone() for name, module in layers}
        results["reinit"].append(train(with_masks(new_network(), masks)))
        random_masks = {}
        for name, mask in masks.items():
            flat = torch.zeros(mask.numel())
            flat[torch.randperm(mask.numel())[:int(mask.sum())]] = 1
            random_masks[name] = flat.view_as(mask)
        at_theta0 = new_network()
        at_theta0.load_state_dict(theta0)
        results["random_prune"].append(train(with_masks(at_theta0, random_masks)))
        results["ticket"].append(train(model))
    return results
