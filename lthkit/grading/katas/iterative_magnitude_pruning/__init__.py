"""The iterative_magnitude_pruning kata: ``spec`` (cases, checks, judges; the grader's process), ``run`` (the
sandbox's side) and ``reference`` (the reference solution)."""
