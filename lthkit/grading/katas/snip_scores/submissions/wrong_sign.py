# mistake: wrong_sign
# fails: snip_values, non_negative
"""Mistake: the gradient of the wrong sign, and no magnitude (-g * w)."""
import torch
import torch.nn.functional as F
from torch import nn


def snip_scores(model, inputs, targets):
    names = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(inputs), targets), [params[n] for n in names])
    return {n: -(g * params[n]).detach() for n, g in zip(names, grads)}
