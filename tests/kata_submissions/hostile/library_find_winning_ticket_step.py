# Issue 25, a door to the answer: the kata's reference solution, loaded by importlib from the grader's own package.
import importlib


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    reference = importlib.import_module("lthkit.grading.katas.find_winning_ticket_step.reference")
    return reference.find_winning_ticket_step(model, initial_state_dict, prune_amount)
