# Issue 25: an honest notebook's set-up imports (data, runs, plots, the grader's check) stay importable in the
# grader; only calling them would be refused. build_model (lthkit.core.models) is really available: the
# function uses it.
import torch
from torch import nn
from torch.nn.utils import prune

from lthkit import build_model, get_data, notebook_preset, run_experiment
from lthkit.grading import check
from lthkit.reporting.plots import accuracy_vs_density

PRESET = "one_step"


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    assert isinstance(build_model("lenet300_100", seed=0), nn.Module)  # a set-up helper that really runs
    layers = {name: module for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))}
    prune.global_unstructured([(module, "weight") for module in layers.values()],
                              pruning_method=prune.L1Unstructured, amount=prune_amount)
    with torch.no_grad():
        for name, module in layers.items():
            module.weight_orig.copy_(initial_state_dict[f"{name}.weight"])
        for name, parameter in model.named_parameters():
            if name in initial_state_dict:
                parameter.copy_(initial_state_dict[name])
    return model
