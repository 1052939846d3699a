# mistake: returns_other
# fails: returns_model
# Tries to fool a grader that compares with ==: returns an object equal to everything, and makes
# torch's own comparisons in this process always say "equal". The grader compares in its own process.
import torch


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


torch.equal = lambda *args, **kwargs: True
torch.allclose = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    return AlwaysEqual()
