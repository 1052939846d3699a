# mistake: none
"""Correct, written differently from the reference: the population std, torch.where, load_state_dict first."""
import torch


def sign_constant_reinit(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            initial = initial_state_dict[name]
            if name in masks:
                sigma = initial.std(unbiased=False)
                parameter.copy_(torch.where(masks[name].bool(), initial.sign() * sigma, torch.zeros_like(initial)))
            else:
                parameter.copy_(initial)
    return model
