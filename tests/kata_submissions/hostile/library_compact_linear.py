# Issue 30, a door to the answer: the export layer's own compact_linear, through importlib.
import importlib


def compact_linear(weight, bias, mask_in, mask_out):
    return importlib.import_module("lthkit.export.compact").compact_linear(weight, bias, mask_in, mask_out)
