# mistake: unseeded
"""The batch order comes from torch's global random state, whatever the seed says."""
import torch
import torch.nn.functional as F


def train_loop(model, images, labels, epochs=1, batch_size=64, lr=1e-3, seed=0):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels)).split(batch_size):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
