# mistake: sum_loss
# fails: snip_values
"""Mistake: the loss summed over the batch."""
import torch
import torch.nn.functional as F
from torch import nn


def snip_scores(model, inputs, targets):
    names = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    params = dict(model.named_parameters())
    loss = F.cross_entropy(model(inputs), targets, reduction="sum")
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return {n: (g * params[n]).detach().abs() for n, g in zip(names, grads)}
