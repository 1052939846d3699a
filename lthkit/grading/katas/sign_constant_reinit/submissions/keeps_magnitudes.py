# mistake: keeps_magnitudes
# fails: layer_constant
"""Mistake: rewinds to θ₀ (the ticket) instead of the signed constant."""
import torch


def sign_constant_reinit(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                mask = masks[name].to(initial.dtype)
                parameter.copy_(initial * mask)
            else:
                parameter.copy_(initial)
    return model
