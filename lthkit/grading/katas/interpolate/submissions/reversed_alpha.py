# mistake: reversed_alpha
"""alpha weighs state_a instead of state_b."""


def interpolate(state_a, state_b, alpha, masks):
    point = {}
    for name, a in state_a.items():
        value = alpha * a + (1 - alpha) * state_b[name]
        point[name] = value * masks[name] if name in masks else value
    return point
