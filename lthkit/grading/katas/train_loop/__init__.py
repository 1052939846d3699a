"""The train_loop kata (notebook 8): ``spec`` (cases, checks, judges; the grader's process), ``run`` (the sandbox's
side) and ``reference`` (the reference solution)."""
