# mistake: writes_weights
# fails: masks_kept
"""Adds a little weight noise after every step (a regularizer), outside the optimizer: pruned weights come back."""
import torch
import torch.nn.functional as F


def train_loop(model, images, labels, epochs=1, batch_size=64, lr=1e-3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(batch_size):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.add_(1e-4 * torch.randn(parameter.shape, generator=generator))
