# mistake: constant_from_trained
# fails: layer_constant
"""Mistake: the constant is the std of the trained weights."""
import torch


def sign_constant_reinit(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                mask = masks[name].to(initial.dtype)
                parameter.copy_(initial.sign() * parameter.std() * mask)
            else:
                parameter.copy_(initial)
    return model
