# status: import
# message: cannot import name 'prunning'
import torch
from torch.nn.utils import prunning  # a typo


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    return model
