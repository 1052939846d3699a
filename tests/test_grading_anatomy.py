"""The notebook-7 katas (snip_scores, sign_constant_reinit) graded end to end in real sandboxes.

A correct solution written as a learner would gets full marks (the references are graded in
test_grading.py); every deliberately wrong one in tests/kata_submissions/<kata>/
scores below full marks, with the hint of its own mistake.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lthkit.grading import grade_file
from lthkit.grading.grader import single_threaded_torch
from lthkit.grading.katas import get_kata, kata_names
from lthkit.grading.sandbox import Limits

SUBMISSIONS = Path(__file__).parent / "kata_submissions"
LIMITS = Limits(timeout=20, memory_mb=768)  # generous: the machine may be busy
KATAS = ("snip_scores", "sign_constant_reinit")

#: Each wrong submission, the mistake it must be diagnosed with, and the checks it must fail.
WRONG = {
    "snip_scores": {
        "wrong_sign.py": ("wrong_sign", {"snip_values", "non_negative"}),
        "no_abs.py": ("no_abs", {"snip_values", "non_negative"}),
        "scores_biases.py": ("scores_biases", {"returns_scores"}),
        "gradient_only.py": ("gradient_only", {"snip_values"}),
        "sum_loss.py": ("sum_loss", {"snip_values"}),
        "changes_model.py": ("changes_model", {"model_unchanged"}),
    },
    "sign_constant_reinit": {
        "constant_from_trained.py": ("constant_from_trained", {"layer_constant"}),
        "constant_from_survivors.py": ("constant_from_survivors", {"layer_constant"}),
        "one_constant.py": ("one_constant", {"layer_constant"}),
        "keeps_magnitudes.py": ("keeps_magnitudes", {"layer_constant"}),
        "pruned_nonzero.py": ("pruned_nonzero", {"pruned_zero"}),
        "signs_from_trained.py": ("signs_from_trained", {"keeps_signs"}),
        "biases_not_reset.py": ("biases_not_reset", {"other_parameters"}),
    },
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    jobs = [(path, kata) for kata in KATAS for path in sorted((SUBMISSIONS / kata).glob("*.py"))]
    with single_threaded_torch(), ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda job: grade_file(job[0], job[1], LIMITS), jobs))
    results = {kata: {} for kata in KATAS}
    for (path, kata), report in zip(jobs, reports):
        results[kata][path.name] = report
    return results


def test_the_katas_are_registered():
    assert set(KATAS) <= set(kata_names())


@pytest.mark.parametrize("kata", KATAS)
def test_references_and_correct_solutions_get_full_marks(graded, kata):
    correct = {name: report for name, report in graded[kata].items() if name.startswith("correct_")}
    assert correct, "a correct solution written as a learner would (the reference is graded in process)"
    for name, report in correct.items():
        assert report.status == "graded", (name, report.message)
        assert report.passed and report.score == report.max_score == get_kata(kata).max_score, report.to_text()


@pytest.mark.parametrize("kata,name", [(kata, name) for kata in KATAS for name in sorted(WRONG[kata])])
def test_each_listed_mistake_scores_below_full_marks_with_its_hint(graded, kata, name):
    report = graded[kata][name]
    spec = get_kata(kata)
    mistake, checks = WRONG[kata][name]
    assert report.status == "graded", report.to_text()
    assert report.score < report.max_score, report.to_text()
    failed = {check.name for check in report.checks if check.status != "pass"}
    assert checks <= failed, report.to_text()
    for check in report.checks:
        if check.name in checks:
            assert check.mistake == mistake and check.hint == spec.hint(mistake), (check.name, report.to_text())


@pytest.mark.parametrize("kata", KATAS)
def test_every_mistake_has_its_own_hint_and_a_submission(kata):
    spec = get_kata(kata)
    hints = [mistake.hint for mistake in spec.mistakes]
    assert len(set(hints)) == len(hints)
    named = {mistake for mistake, _ in WRONG[kata].values()}
    assert named <= {mistake.name for mistake in spec.mistakes}
    wanted = {"snip_scores": {"wrong_sign", "scores_biases"},
              "sign_constant_reinit": {"constant_from_trained", "pruned_nonzero"}}[kata]
    assert wanted <= named  # the examples
