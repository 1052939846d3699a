# Issue 25, a door to the answer: attribute access on the package (lthkit.stability is never imported by name).
import lthkit


def interpolate(state_a, state_b, alpha, masks):
    return lthkit.stability.interpolate(state_a, state_b, alpha, masks)
