"""Every kata is one folder (spec, run, reference, submissions), found by the registry and checked here.

Each example submission's header says what the grader must find (``lthkit.grading.katas.expectation``):
a known mistake diagnosed with its own hint (and the listed checks failing), full marks for a correct
solution written as a learner would, or a status and message for one that cannot be graded. Adding a
kata is adding its folder: this file parametrizes over the registry.
"""

from __future__ import annotations

import pytest

from lthkit.grading.grader import grade_in_process
from lthkit.grading.katas import expectation, get_kata, get_reference, kata_names, submissions

CASES = [(kata, path.name) for kata in kata_names() for path in submissions(kata)]


def test_every_kata_has_a_folder_of_its_own_with_every_piece():
    for kata in kata_names():
        spec = get_kata(kata)
        assert spec.name == kata and callable(get_reference(kata))
        files = submissions(kata)
        headers = [expectation(path) for path in files]
        assert any(header.get("mistake") == "none" for header in headers), f"{kata}: no correct submission"
        diagnosed = {header["mistake"] for header in headers if header.get("mistake") not in (None, "none")}
        assert diagnosed <= {mistake.name for mistake in spec.mistakes}, kata
        hints = [mistake.hint for mistake in spec.mistakes]
        assert len(set(hints)) == len(hints), f"{kata}: every mistake has its own hint"


def test_the_issues_mistakes_each_have_a_wrong_submission():
    wanted = {"find_winning_ticket_step": {"no_rewind", "per_layer", "ranks_theta0", "prunes_biases", "writes_weight",
                                           "no_compounding", "hard_coded_names", "random_pruning", "reinitializes",
                                           "mutates_initial_state", "linear_only"},
              "iterative_magnitude_pruning": {"no_compounding", "one_rate", "global_scope", "writes_weight",
                                              "masks_not_enforced", "random_counts", "reinit_other_mask",
                                              "reinit_theta0"},
              "interpolate": {"pruned_revived", "biases_forgotten"}, "error_barrier": {"min_endpoint"},
              "snip_scores": {"wrong_sign", "scores_biases"},
              "sign_constant_reinit": {"constant_from_trained", "pruned_nonzero"}}
    for kata, mistakes in wanted.items():
        assert mistakes <= {expectation(path).get("mistake") for path in submissions(kata)}, kata


@pytest.mark.parametrize("kata", kata_names())
def test_the_reference_passes_every_check(kata):
    """Each kata's reference solution, graded in process as trusted code, gets full marks."""
    report = grade_in_process(get_reference(kata), kata)
    assert report.passed and report.score == report.max_score, report.to_text()


@pytest.mark.parametrize("kata,name", CASES)
def test_each_submission_gets_what_its_header_says(graded_submissions, kata, name):
    report = graded_submissions[kata][name]
    expected = expectation(next(path for path in submissions(kata) if path.name == name))
    spec = get_kata(kata)
    if expected.get("mistake") == "none":
        assert report.status == "graded" and report.passed and report.score == spec.max_score, report.to_text()
    elif "mistake" in expected:
        mistake = expected["mistake"]
        assert report.status == "graded", report.to_text()
        assert not report.passed and report.score < report.max_score, report.to_text()
        assert mistake in report.mistakes, report.to_text()
        diagnosed = [check for check in report.checks if check.mistake == mistake]
        assert all(check.hint == spec.hint(mistake) for check in diagnosed)
        failed = {check.name for check in report.checks if check.status != "pass"}
        assert set(expected.get("fails", ())) <= failed, report.to_text()
    else:
        assert report.status == expected["status"], report.to_text()
        if report.status != "graded":
            assert report.score == 0 and not report.passed and "\n" not in report.message
        assert expected.get("message", "") in report.message, report.message


def test_the_interpolate_oracle_is_plain_torch_lerp():
    """The grader's expected point is torch.lerp over the state dicts, masked (not the kit's interpolate)."""
    import torch

    from lthkit.core.paths import interpolate
    from lthkit.grading.katas.interpolate.spec import CASES, Evidence, prepare

    for case in CASES:
        inputs = prepare(case)
        expected = Evidence(case, inputs, {}, None).oracle()
        ours = interpolate(inputs["state_a"], inputs["state_b"], case.amount, inputs["masks"])
        assert all(torch.allclose(ours[n].double(), expected[n], atol=1e-6) for n in expected)


TOY_SPEC = '''
from ...spec import PASS, Case, Check, KataSpec, Mistake, fail
from .run import run

CASES = (Case("none", 0, 3.0, "x = 3", about="-"), Case("none", 1, -2.5, "x = -2.5", about="-"))
MISTAKES = (Mistake("adds", "Doubling is x * 2, not x + 2."),)


class Evidence:
    def __init__(self, case, inputs, outputs, error):
        self.case, self.outputs = case, outputs


def judge(ev):
    if "returned" not in ev.outputs:
        return None
    value, expected = ev.outputs["returned"], 2 * ev.case.amount
    if value == expected:
        return PASS
    return fail(f"returned {value}, not {expected}", "adds" if value == ev.case.amount + 2 else None)


SPEC = KataSpec(name="double_it", title="double_it: twice the number", cases=CASES, mistakes=MISTAKES,
                prepare=lambda case: {}, run=run, context=Evidence,
                checks=(Check("doubles", "returns twice its argument", 2, "Return x * 2.", judge, mistakes=("adds",)),))
'''
TOY_RUN = '''
def run(function, case, inputs, outputs):
    returned = function(case.amount)
    outputs["returned"] = float(returned) if isinstance(returned, (int, float)) else None
'''


def test_a_new_kata_is_one_folder_and_everything_finds_it(tmp_path, capsys):
    """Issue 26: a kata added as one folder (here in a folder of a course's own katas) is a choice of `grade
    --kata`, runs in the sandbox (its run.py joins the sandbox's copy), and its submissions' headers hold."""
    from lthkit.cli import main
    from lthkit.grading import gate, katas

    folder = tmp_path / "course_katas" / "double_it"
    (folder / "submissions").mkdir(parents=True)
    (folder / "__init__.py").write_text('"""A toy kata."""\n')
    (folder / "spec.py").write_text(TOY_SPEC)
    (folder / "run.py").write_text(TOY_RUN)
    (folder / "reference.py").write_text("def double_it(x):\n    return 2 * x\n")
    (folder / "submissions" / "correct.py").write_text("# mistake: none\ndef double_it(x):\n    return x + x\n")
    (folder / "submissions" / "adds.py").write_text("# mistake: adds\ndef double_it(x):\n    return x + 2\n")
    katas.__path__.append(str(folder.parent))
    gate.sandbox_tree.cache_clear()
    try:
        assert "double_it" in katas.kata_names()
        assert grade_in_process(get_reference("double_it"), "double_it").passed
        for path in submissions("double_it"):
            expected = expectation(path)
            status = main(["grade", str(path), "--kata", "double_it", "--json", "--no-progress"])
            report = __import__("json").loads(capsys.readouterr().out)["submissions"][0]["katas"][0]
            assert report["status"] == "graded", report
            if expected["mistake"] == "none":
                assert status == 0 and report["score"] == report["max_score"] == 2
            else:
                assert status == 1 and report["checks"][0]["mistake"] == expected["mistake"], report
    finally:
        katas.__path__.remove(str(folder.parent))
        gate.sandbox_tree.cache_clear()
    assert "double_it" not in katas.kata_names()
