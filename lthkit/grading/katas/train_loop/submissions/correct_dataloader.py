# mistake: none
"""Correct with torch.utils.data: a DataLoader over a TensorDataset, shuffled by a seeded generator, SGD with
momentum."""
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def train_loop(model, images, labels, epochs=1, batch_size=64, lr=1e-3, seed=0):
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=5 * lr, momentum=0.9)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
