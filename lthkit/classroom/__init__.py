"""The instructor's week: release an assignment, collect the hand-ins, grade them, give feedback, look for
copies, and export the gradebook (``python -m lthkit course ...``).

* :mod:`.layout`     the class folder and its paths (nbgrader's folder names), learners' normalized names
* :mod:`.exercises`  the learner versions of the course notebooks (``scripts/make_exercises.py``)
* :mod:`.release`    the hand-out of an assignment and its manifest (what is graded, the points)
* :mod:`.collect`    hand-ins from folders and LMS zips (Canvas, Moodle) into one folder per learner
* :mod:`.autograde`  every learner on every kata, in the grader's sandboxes, resumably
* :mod:`.feedback`   a self-contained HTML and a Markdown feedback file per learner
* :mod:`.similarity` pairs of hand-ins whose code is suspiciously alike (copydetect), for a human to look at
* :mod:`.gradebook`  the grades as CSV for Canvas, Moodle and nbgrader
* :mod:`.synthetic`  a generated class from the katas' example submissions (tests, the scale benchmark)

It stands beside the grader and uses it; the grader never imports it (pyproject.toml's import contracts).
"""
