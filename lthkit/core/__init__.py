"""The headless core: config fields, atomic files, MNIST in memory, the networks, masks, masked training and its fast path, batched runs, and linear paths between networks. It imports nothing above it.
"""
