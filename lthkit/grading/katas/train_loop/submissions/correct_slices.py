# mistake: none
"""Correct, written differently from the reference: slices of one permutation, zero_grad first, an accuracy
printed after each epoch under no_grad (evaluation is not training)."""
import torch
import torch.nn.functional as F


def train_loop(model, images, labels, epochs=1, batch_size=64, lr=1e-3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    count = len(labels)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(count, generator=generator)
        for start in range(0, count, batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(images[index]), labels[index]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(images).argmax(1) == labels).float().mean().item()
        print(f"epoch {epoch}: training accuracy {accuracy:.3f}")
