# mistake: pruned_revived
"""Interpolates every tensor but never applies the masks."""


def interpolate(state_a, state_b, alpha, masks):
    return {name: (1 - alpha) * a + alpha * state_b[name] for name, a in state_a.items()}
