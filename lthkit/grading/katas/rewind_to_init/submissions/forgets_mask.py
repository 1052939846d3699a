# mistake: forgets_mask
import torch


def rewind_to_init(model, initial_state_dict, masks):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(initial_state_dict[name])
    return model
