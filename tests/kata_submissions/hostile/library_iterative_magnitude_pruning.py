# A door to the answer: the kit's own IMP pieces (layer-wise magnitude masks, random masks with the same counts),
# reached by a plain import of the library.
import copy

import torch
import torch.nn.utils.prune as prune

from lthkit.core.masks import magnitude_masks, prunable_layers, random_masks_like


def iterative_magnitude_pruning(new_network, train, rounds, rate, output_rate):
    model = new_network()
    theta0 = copy.deepcopy(model.state_dict())
    layers = prunable_layers(model)
    results = {"ticket": [train(model)], "reinit": [], "random_prune": []}
    masks = {f"{name}.weight": torch.ones_like(module.weight, dtype=torch.bool) for name, module in layers.items()}
    for _ in range(rounds):
        weights = {f"{name}.weight": module.weight.detach() for name, module in layers.items()}
        masks = magnitude_masks(weights, masks, rate, scope="layer", layer_rates={"output": output_rate})
        for name, module in layers.items():
            prune.custom_from_mask(module, "weight", masks[f"{name}.weight"])
        results["random_prune"].append(random_masks_like(masks, torch.Generator()))
        results["ticket"].append(train(model))
    return results
