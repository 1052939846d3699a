# status: missing
# message: iterative_magnitude_pruning is not written yet: it raises NotImplementedError
"""The learner notebook's placeholder, before the learner writes anything."""


def iterative_magnitude_pruning(new_network, train, rounds, rate, output_rate):
    # YOUR CODE HERE
    raise NotImplementedError
