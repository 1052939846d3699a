# mistake: biases_not_reset
# fails: other_parameters
"""Mistake: biases keep their trained values."""
import torch


def sign_constant_reinit(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                mask = masks[name].to(initial.dtype)
                parameter.copy_(initial.sign() * initial.std() * mask)
            else:
                pass
    return model
