# mistake: none
"""A learner's loop over the neurons."""
import torch


def compact_linear(weight, bias, mask_in, mask_out):
    keep = torch.zeros(weight.shape[0], dtype=torch.bool)
    for neuron in range(weight.shape[0]):
        feeds_something = bool(mask_out[:, neuron].any())
        outputs_something = bool(mask_in[neuron].any()) or float(bias[neuron]) > 0
        keep[neuron] = feeds_something and outputs_something
    return (weight * mask_in)[keep], bias[keep], keep
