"""The course: notebook modes and reference runs, the learner versions of the notebooks, the dashboard and the explorers, and the Voilà app.
"""
