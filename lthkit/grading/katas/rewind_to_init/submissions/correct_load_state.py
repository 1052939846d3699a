# mistake: none
import torch


def rewind_to_init(model, initial_state_dict, masks):
    state = {key: value * masks[key] if key in masks else value.clone() for key, value in initial_state_dict.items()}
    model.load_state_dict(state)  # copies into the existing parameters
    return model
