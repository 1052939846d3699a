# mistake: no_rewind
# fails: rewinds_weight_orig, effective_weights
import torch.nn as nn
import torch.nn.utils.prune as prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    parameters = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=prune_amount)
    return model  # forgot to rewind the survivors to θ₀
