# status: syntax
# message: SyntaxError in syntax_error.py, line 6
import torch


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2)
    return model
