"""The compact_linear kata: ``spec`` (cases, checks, judges; the grader's process), ``run`` (the sandbox's
side) and ``reference`` (the reference solution)."""
