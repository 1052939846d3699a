"""Runs on disk and on workers: the versioned cache, cached and resumable experiments, Dask sweeps, and every named preset.
"""
