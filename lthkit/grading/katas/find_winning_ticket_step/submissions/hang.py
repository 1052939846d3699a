# status: timeout
# message: did not finish within
def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    while True:
        pass
