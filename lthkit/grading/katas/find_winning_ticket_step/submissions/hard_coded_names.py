# mistake: hard_coded_names
# fails: runs_on_any_model
import torch
import torch.nn.utils.prune as prune


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    layers = {"fc1": model.fc1, "fc2": model.fc2, "fc3": model.fc3}  # only the notebook's LeNet has these
    prune.global_unstructured([(m, "weight") for m in layers.values()], pruning_method=prune.L1Unstructured,
                              amount=prune_amount)
    with torch.no_grad():
        for name, module in layers.items():
            module.weight_orig.copy_(initial_state_dict[f"{name}.weight"])
    return model
