"""The course: notebook modes and reference runs, the dashboard and the explorers, and the Voilà app (the learner
versions of the notebooks are made by :mod:`lthkit.classroom.exercises`).
"""
