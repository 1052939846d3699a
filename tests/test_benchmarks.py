"""Benchmarks cannot rot: every script in benchmarks/ runs to its end in ``--smoke`` mode.

``--smoke`` is each script's every section at tiny sizes (a few hundred images, tens of
iterations, one repeat), in seconds; its numbers mean nothing, so these tests check only that the
script exits 0 and prints its usual lines, ending with its characteristic last line. ``make
bench`` runs the scripts in full.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
#: Seconds one smoke run may take (they take seconds to a minute on a busy 2-core machine).
TIMEOUT = 300
NUMBER = r"(-?[\d.]+|nan|inf)"

#: script -> (the last line of its output, other lines that must be printed: one per section).
EXPECTED = {
    "batched_runs.py": (
        rf"  for scale, K=2 one by one on \d+ vs \d+ threads: \|dw\| median .*; max \|d val acc\| {NUMBER}",
        [r"^  K  sequential   batched  speedup", r"^  1 .*one by one", r"^  2 ",
         r"^batched results against the same runs trained one by one:", r"^  K=2: batched vs one by one: "]),
    "fastpath.py": (
        rf"fast_path: {NUMBER}% faster than public -> .*",
        [r"^public .* µs/step  ratio to public 1\.000", r"^direct_adam .* ratio to public", r"^lenet_pass .* ratio",
         r"^fast_path .* ratio", r"^direct_adam: .*faster than public", r"^lenet_pass: .*faster than public"]),
    "grade_class.py": (
        rf"seconds_per_handin={NUMBER} grade_wall_s={NUMBER} wall_over_ideal={NUMBER} peak_grader_mib={NUMBER} "
        rf"peak_sandbox_mib={NUMBER} graded_as_expected=(?P<graded>\d+)/(?P=graded) timeouts=1 "
        r"copies_flagged=(?P<copies>\d+)/(?P=copies) "
        r"independent_flagged=0/\d+",
        [r"^class: 8 hand-ins of find_winning_ticket_step", r"^phases: release .* collect .* grade .* feedback .* "
                                                          r"similarity .* export ",
         r"^grade: 8 hand-ins in .* per hand-in", r"^  timeout +1 hand-ins", r"^  crash +1 hand-ins",
         r"^graded as their example's header says: 8 of 8", r"^timeouts: 1 hung hand-ins, each stopped at its timeout",
         r"^memory: grading process peak RSS .*; largest sandbox \d+ MiB", r"^similarity: \d+ pairs flagged"]),
    "kernel_threads.py": (
        rf"quiet: \d+ threads / 1 thread: {NUMBER}x",
        [r"^load +threads +wall s", r"^quiet +\d+ ", r"^busy +1 ", r"^busy / quiet, \d+ threads: ",
         r"^busy: \d+ threads / 1 thread: "]),
    "paper_protocol.py": (
        rf"wall time {NUMBER} s = {NUMBER} min; goal for the full protocol on one H100: 15 min -> (met|not met) "
        r"\(not the full protocol\)",
        [r"^protocol: 1 trials x 3 controls x 1 rounds", r"^  round  0 done at", r"^  round  1 done at",
         r"^MNIST into memory: .*; 6 networks trained"]),
    "sparsity_speed.py": (
        rf"lenet_csr_ratio_sparsest={NUMBER} lenet_compact_ratio_sparsest={NUMBER} load_average=.*",
        [r"^lenet300_100, batch 1, 1 thread\(s\): latency / dense", r"^conv2, batch 8, 1 thread\(s\): latency / dense",
         r"^  density   dense ms ", r"^crossovers \(below this density", r"^  lenet300_100 csr batch 1 x 1 thread",
         r"^exports checked against the masked network: \d+, outside tolerance: 0$", r"^wrote the study into "]),
    "startup.py": (
        rf"median_startup_s={NUMBER} load_average=.*",
        [r"^run 1: first training step after", r"^import lthkit\.cli .* s, MNIST from the tensor cache .* s, "
                                              r"first optimizer .*; torchvision's parser"]),
    "sweep.py": (
        rf"ratio_workers2={NUMBER} ratio_scheduler={NUMBER} ratio_two_processes={NUMBER} load_average=.*",
        [r"^--workers 1: ", r"^--workers 2: ", r"^--scheduler \(2 workers started beforehand\): ",
         r"^two --workers 1 commands at once"]),
    "train_throughput.py": (
        rf"speedup_vs_dataloader={NUMBER} flop_bound_ratio={NUMBER}",
        [r"^== 1\. One epoch", r"^matrix-multiply throughput", r"^batch 60: ", r"^batch 128: ", r"^  \(a\) lthkit",
         r"^  \(b\) DataLoader", r"^  \(c\) FLOP bound", r"^== 2\. Fast preset, 2-round IMP curve",
         r"^  outside training steps", r"^    pruning ", r"^    cache I/O ", r"^== 3\. Memory across the rounds",
         r"^  after round 2 ", r"networks or optimizers left alive: "]),
    "worker_malloc.py": (
        rf"ratio_nanny_setting={NUMBER} ratio_prepared={NUMBER}",
        [r"^repeat 0 in-process ", r"^repeat 0 worker, nanny's setting ", r"^repeat 0 worker, prepare_worker ",
         r"^fastest in-process "]),
}


def test_every_benchmark_script_has_a_smoke_test():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")} - {"common.py"}
    assert scripts == set(EXPECTED)


def smoke_environment() -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("LTHKIT_WORKERS", "LTHKIT_SCHEDULER", "LTHKIT_DATA", "LTHKIT_CACHE", "LTHKIT_FAST")}
    # `import lthkit` from this checkout and `import common` (the benchmarks' shared module).
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(BENCHMARKS), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_smoke(script: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(Path("benchmarks") / script), "--smoke"]
    # A session of its own, so that a timeout ends the script's children too (Dask workers, `run` commands).
    process = subprocess.Popen(command, cwd=REPO, env=smoke_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{script} --smoke ran past {TIMEOUT} s\nstdout:\n{stdout[-3000:]}\nstderr:\n{stderr[-3000:]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_runs_to_its_end_in_smoke_mode(script):
    done = run_smoke(script)
    report = (f"{script} --smoke exited {done.returncode}\nstdout:\n{done.stdout[-3000:]}\n"
              f"stderr:\n{done.stderr[-3000:]}")
    assert done.returncode == 0, report
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, report
    last, sections = EXPECTED[script]
    assert re.fullmatch(last, lines[-1]), f"last line {lines[-1]!r} is not {last!r}\n{report}"
    assert "--smoke: tiny sizes" in done.stdout, report
    missing = [pattern for pattern in sections if not re.search(pattern, done.stdout, re.MULTILINE)]
    assert not missing, f"lines not printed: {missing}\n{report}"
