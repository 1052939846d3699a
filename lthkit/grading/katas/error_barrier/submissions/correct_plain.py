# mistake: none
def error_barrier(errors):
    return max(errors) - (errors[0] + errors[-1]) / 2
