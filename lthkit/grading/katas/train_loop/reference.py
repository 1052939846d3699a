"""The reference solution of notebook 8's kata: a plain PyTorch training loop that ``find_ticket`` can prune under.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def train_loop(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int = 1, batch_size: int = 64,
               lr: float = 1e-3, seed: int = 0) -> None:
    """Train ``model`` in place with Adam on ``(images, labels)``: ``epochs`` passes in seeded random batches.

    What makes it a loop ``lthkit.find_ticket`` can prune under: it trains the model it is given
    (the optimizer is built here, over ``model.parameters()``), starts from the weights it is given,
    changes them only through ``optimizer.step()`` (so the masks lthkit enforces through the
    optimizer hold), switches training mode on (an evaluation may have left the model in eval
    mode), sees every example once per epoch (the last batch may be smaller), and draws its batch
    order from its own generator seeded by ``seed`` (every round sees the same batches).

    Args:
        model: the network (trained in place).
        images, labels: the training set (only read).
        epochs: passes over the training set.
        batch_size: examples per optimizer step.
        lr: Adam's learning rate.
        seed: seed of the batch order.

    Returns:
        ``None``.

    Example:
        >>> net = nn.Linear(4, 2)
        >>> x, y = torch.randn(10, 4), torch.tensor([0, 1] * 5)
        >>> train_loop(net, x, y, epochs=2, batch_size=4, lr=0.1)
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(batch_size):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
