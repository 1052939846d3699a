# Issue 25, a door to the answer: two library calls (apply_masks_ after load_state_dict), reached through __import__.
masks_module = __import__("lthkit.core.masks", fromlist=["apply_masks_"])


def rewind_to_init(model, initial_state_dict, masks):
    model.load_state_dict(initial_state_dict)
    return masks_module.apply_masks_(model, masks)
