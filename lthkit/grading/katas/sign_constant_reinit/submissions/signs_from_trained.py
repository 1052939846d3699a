# mistake: signs_from_trained
# fails: keeps_signs
"""Mistake: signs of the trained weights."""
import torch


def sign_constant_reinit(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                mask = masks[name].to(initial.dtype)
                parameter.copy_(parameter.sign() * initial.std() * mask)
            else:
                parameter.copy_(initial)
    return model
