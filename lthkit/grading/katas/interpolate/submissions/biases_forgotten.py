# mistake: biases_forgotten
"""Interpolates only the masked weights; the biases keep state_a's values."""


def interpolate(state_a, state_b, alpha, masks):
    point = {name: value.clone() for name, value in state_a.items()}
    for name, mask in masks.items():
        point[name] = ((1 - alpha) * state_a[name] + alpha * state_b[name]) * mask
    return point
