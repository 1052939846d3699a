# mistake: none
import torch


def interpolate(state_a, state_b, alpha, masks):
    point = {}
    for name, a in state_a.items():
        value = torch.lerp(a, state_b[name], alpha)
        if name in masks:
            value = value * masks[name]
        point[name] = value
    return point
