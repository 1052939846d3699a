# mistake: pruned_nonzero
# fails: pruned_zero
"""Mistake: pruned weights made non-zero (no mask)."""
import torch


def sign_constant_reinit(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                mask = masks[name].to(initial.dtype)
                parameter.copy_(initial.sign() * initial.std())
            else:
                parameter.copy_(initial)
    return model
