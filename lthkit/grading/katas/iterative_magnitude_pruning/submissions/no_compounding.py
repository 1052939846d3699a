# mistake: no_compounding
# fails: compounding_rate, layer_wise_magnitude
# "Starts clean" every round: a fresh copy of θ₀ pruned at rate by the trained magnitudes, so each round prunes
# rate of all the weights (the previous round's zeros first) and the density never falls below 1 - rate.
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune


def layers_of(model):
    return [(name, module) for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]


def iterative_magnitude_pruning(new_network, train, rounds, rate, output_rate):
    model = new_network()
    theta0 = {key: value.clone() for key, value in model.state_dict().items()}
    results = {"ticket": [train(model)], "reinit": [], "random_prune": []}
    for _ in range(rounds):
        trained = {name: module.weight.detach().clone() for name, module in layers_of(model)}
        model = new_network()
        model.load_state_dict(theta0)
        layers = layers_of(model)
        for index, (name, module) in enumerate(layers):
            amount = output_rate if index == len(layers) - 1 else rate
            prune.l1_unstructured(module, "weight", amount=amount, importance_scores=trained[name])
        masks = {name: module.weight_mask.clone() for name, module in layers}
        fresh = new_network()
        for name, module in layers_of(fresh):
            prune.custom_from_mask(module, "weight", masks[name])
        results["reinit"].append(train(fresh))
        shuffled = new_network()
        shuffled.load_state_dict(theta0)
        for name, module in layers_of(shuffled):
            order = torch.randperm(masks[name].numel())
            prune.custom_from_mask(module, "weight", masks[name].flatten()[order].view_as(masks[name]))
        results["random_prune"].append(train(shuffled))
        results["ticket"].append(train(model))
    return results
