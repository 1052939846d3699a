# mistake: one_constant
# fails: layer_constant
"""Mistake: one constant for every layer."""
import torch


def sign_constant_reinit(model, initial_state_dict, masks):
    sigma = torch.cat([initial_state_dict[name].reshape(-1) for name in masks]).std()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                parameter.copy_(initial.sign() * sigma * masks[name].to(initial.dtype))
            else:
                parameter.copy_(initial)
    return model
