# Issue 25, a door to the answer: attribute access on the package (lthkit's public face, lthkit.interpolate).
import lthkit


def interpolate(state_a, state_b, alpha, masks):
    return lthkit.interpolate(state_a, state_b, alpha, masks)
