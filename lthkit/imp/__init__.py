"""The IMP engine: the run's config, its records and stores, the one driver, the branches (what a round trains), mask criteria, pruning at initialization and resets. No cache, no Dask, no plotting.
"""
