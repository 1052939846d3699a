# mistake: changes_model
# fails: model_unchanged
"""Mistake: takes an optimizer step while scoring."""
import torch
import torch.nn.functional as F
from torch import nn


def snip_scores(model, inputs, targets):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    F.cross_entropy(model(inputs), targets).backward()
    scores = {f"{n}.weight": (m.weight.grad * m.weight).detach().abs()
              for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    optimizer.step()
    return scores
