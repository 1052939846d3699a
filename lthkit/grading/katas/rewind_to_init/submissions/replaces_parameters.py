# mistake: replaces_parameters
import torch
from torch import nn


def rewind_to_init(model, initial_state_dict, masks):
    for key, value in initial_state_dict.items():
        module_name, _, name = key.rpartition(".")
        module = model.get_submodule(module_name)
        new = value * masks[key] if key in masks else value.clone()
        setattr(module, name, nn.Parameter(new))
    return model
