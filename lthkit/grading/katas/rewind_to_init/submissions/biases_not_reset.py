# mistake: biases_not_reset
import torch


def rewind_to_init(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in masks:
                parameter.copy_(initial_state_dict[name] * masks[name])
    return model
