# mistake: mutates_inputs
"""Masks state_a in place before interpolating."""


def interpolate(state_a, state_b, alpha, masks):
    point = {}
    for name, a in state_a.items():
        if name in masks:
            a.mul_(masks[name])
        point[name] = (1 - alpha) * a + alpha * (state_b[name] * masks[name] if name in masks else state_b[name])
    return point
