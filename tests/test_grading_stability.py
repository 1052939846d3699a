"""Notebook 6's katas (interpolate, error_barrier) graded end to end in real sandboxes.

A correct solution written as a learner would gets full marks (the references are graded in
test_grading.py); each deliberately wrong solution in tests/kata_submissions/<kata>/ scores
below full with its own mistake's hint.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from lthkit.grading import grade_file
from lthkit.grading.grader import single_threaded_torch
from lthkit.grading.katas import get_kata, kata_names
from lthkit.grading.sandbox import Limits

SUBMISSIONS = Path(__file__).parent / "kata_submissions"
LIMITS = Limits(timeout=20, memory_mb=768)  # generous: the machine may be busy
KATAS = ("interpolate", "error_barrier")
WRONG = {
    "interpolate": {"pruned_revived.py": "pruned_revived", "biases_forgotten.py": "biases_forgotten",
                    "reversed_alpha.py": "reversed_alpha", "mutates_inputs.py": "mutates_inputs"},
    "error_barrier": {"min_endpoint.py": "min_endpoint", "middle_only.py": "middle_only",
                      "interior_only.py": "interior_only", "mutates_inputs.py": "mutates_inputs"},
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
    for kata in KATAS:
        hints = [mistake.hint for mistake in get_kata(kata).mistakes]
        assert len(set(hints)) == len(hints), "every mistake has its own hint"


@pytest.mark.parametrize("kata", KATAS)
def test_references_and_correct_solutions_get_full_marks(graded, kata):
    correct = {name: report for name, report in graded[kata].items() if name.startswith("correct_")}
    assert correct, "a correct solution written as a learner would (the reference is graded in process)"
    for name, report in correct.items():
        assert report.status == "graded", (name, report.message)
        assert report.passed and report.score == report.max_score == get_kata(kata).max_score, report.to_text()


@pytest.mark.parametrize("kata,name", [(kata, name) for kata in KATAS for name in sorted(WRONG[kata])])
def test_each_listed_mistake_scores_below_full_with_its_hint(graded, kata, name):
    report, spec, mistake = graded[kata][name], get_kata(kata), WRONG[kata][name]
    assert report.status == "graded", report.message
    assert report.score < report.max_score, report.to_text()
    diagnosed = [check for check in report.checks if check.mistake == mistake]
    assert diagnosed, f"{name}: no check names the mistake {mistake}\n{report.to_text()}"
    assert all(check.hint == spec.hint(mistake) for check in diagnosed)


def test_the_issues_mistakes_have_wrong_solutions():
    assert {"pruned_revived", "biases_forgotten"} <= set(WRONG["interpolate"].values())
    assert "min_endpoint" in WRONG["error_barrier"].values()


def test_the_oracle_is_plain_torch_lerp():
    """The grader's expected point is torch.lerp over the state dicts, masked (not the kit's interpolate)."""
    from lthkit.core.paths import interpolate
    from lthkit.grading.katas.interpolate.spec import CASES, Evidence, prepare

    for case in CASES:
        inputs = prepare(case)
        expected = Evidence(case, inputs, {}, None).oracle()
        ours = interpolate(inputs["state_a"], inputs["state_b"], case.amount, inputs["masks"])
        assert all(torch.allclose(ours[n].double(), expected[n], atol=1e-6) for n in expected)
