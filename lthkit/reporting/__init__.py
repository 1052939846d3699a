"""Summaries (the one CSV format of IMP runs), figures and provenance of the results.
"""
