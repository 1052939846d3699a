"""The IMP engine: the run's config, its records and stores, the one driver (`drive`: the kit's runs and `find_ticket` on any network), the branches (what a round trains), mask criteria, pruning at initialization, resets, and winning tickets as files. No cache, no Dask, no plotting.
"""
