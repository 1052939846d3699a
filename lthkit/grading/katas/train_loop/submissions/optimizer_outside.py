# mistake: optimizer_outside
"""Builds the optimizer once, on the first call, and keeps it: find_ticket hands over a new copy of the network
every round, whose parameters that optimizer never steps."""
import torch
import torch.nn.functional as F


def train_loop(model, images, labels, epochs=1, batch_size=64, lr=1e-3, seed=0):
    if not hasattr(train_loop, "optimizer"):
        train_loop.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    optimizer = train_loop.optimizer
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(batch_size):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
