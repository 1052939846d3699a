# mistake: scores_biases
# fails: returns_scores
"""Mistake: every parameter gets a score, biases included."""
import torch
import torch.nn.functional as F


def snip_scores(model, inputs, targets):
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(inputs), targets), list(params.values()))
    return {n: (g * p).detach().abs() for (n, p), g in zip(params.items(), grads)}
