# mistake: none
"""Correct, written differently from the reference: loss.backward() and param.grad, weights found by type."""
import torch
import torch.nn.functional as F
from torch import nn


def snip_scores(model, inputs, targets):
    model.zero_grad()
    F.cross_entropy(model(inputs), targets).backward()
    scores = {}
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            scores[f"{module_name}.weight"] = (module.weight.grad * module.weight).detach().abs()
    model.zero_grad()
    return scores
