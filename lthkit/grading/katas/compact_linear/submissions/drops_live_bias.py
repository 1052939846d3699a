# mistake: drops_live_bias
# fails: keeps_right_neurons, same_function
"""Removes every neuron without an incoming weight, even one whose positive bias still reaches the next layer."""


def compact_linear(weight, bias, mask_in, mask_out):
    keep = mask_in.any(1) & mask_out.any(0)
    return (weight * mask_in)[keep], bias[keep], keep
