#!/usr/bin/env python
"""A class at scale: the instructor's week on 200 generated hand-ins, with --workers sandboxes at once.

The class (:func:`lthkit.classroom.synthetic.synthetic_class`) is dealt out from a kata's example
submissions: each correct solution (written four different ways) four times as often as each known
mistake and each hostile hand-in (one that hangs, exits, hoards memory, does not parse, imports a
name that does not exist, is not written, tries to escape). Every hand-in is a disguised copy
(comments gone, locals and helpers renamed), so the grade each must get is its example's header.

The week runs as an instructor would run it, timed phase by phase: ``release`` (notebook 1),
``collect`` (a Canvas download zip), ``grade`` (``--workers`` sandboxes at once, the course
command's limits), ``feedback``, ``similarity``, ``export``. It prints

* the grading's wall time, the time per hand-in (wall / hand-ins) and the hand-ins' own sandbox
  seconds (median, 90th percentile, max) by outcome;
* whether every hand-in got what its example's header says;
* that the hung ones were stopped at their timeout, and how close the wall time came to the
  hand-ins' own seconds divided among the workers (a hung hand-in holding up the others would show
  as a wall time well above that);
* the peak memory of the grading process (its resident set's high-water mark over the phase) and of
  the sandboxes (each one's ``VmHWM``, sampled from ``/proc``: :class:`SandboxMemory`);
* the similarity report against the truth: of the pairs made from one example (renamed copies),
  how many it flagged, and of the pairs of correct solutions written differently, how many (it
  should be none).

The last line: ``seconds_per_handin=X grade_wall_s=Y wall_over_ideal=R peak_grader_mib=Z
peak_sandbox_mib=W graded_as_expected=A/N timeouts=H copies_flagged=C/D independent_flagged=E/F``;
the exit status is 1 when a hand-in was not graded as its example says or two independent
solutions were flagged.

Run it on a quiet machine (it fills the cores): ``python benchmarks/grade_class.py --workers 2``;
``--smoke`` runs every phase on 8 hand-ins in under a minute (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import PeakMemory, add_smoke_argument, load_average, mib

from lthkit.classroom.autograde import grade_class
from lthkit.classroom.collect import collect
from lthkit.classroom.feedback import write_feedback
from lthkit.classroom.gradebook import export
from lthkit.classroom.layout import learner_id
from lthkit.classroom.release import release
from lthkit.classroom.similarity import similarity_report
from lthkit.classroom.synthetic import canvas_name, synthetic_class, write_canvas_zip
from lthkit.grading.grader import single_threaded_torch
from lthkit.grading.sandbox import Limits
from lthkit.reporting.provenance import hardware_description


def as_expected(report: dict, expected: dict) -> bool:
    """Whether a hand-in's report is what its example's header says (``tests/test_katas.py``'s rule, the status
    messages aside: they name the example's own file and lines)."""
    if expected.get("mistake") == "none":
        return report["passed"]
    if "mistake" in expected:
        failed = {check["name"] for check in report["checks"] if check["status"] != "pass"}
        mistakes = {check.get("mistake") for check in report["checks"]}
        return (report["status"] == "graded" and not report["passed"] and expected["mistake"] in mistakes
                and set(expected.get("fails", ())) <= failed)
    return report["status"] == expected["status"]


class SandboxMemory:
    """The memory high-water marks (``VmHWM``) of this process's sandboxes, sampled from ``/proc``.

    ``getrusage(RUSAGE_CHILDREN)`` cannot tell: a child forked from the grader carries the grader's
    resident set as its own high-water mark from before its ``exec``. ``VmHWM`` belongs to the
    sandbox's own program. Every ``interval`` seconds the descendants of this process that run
    ``lthkit.grading.sandbox`` are read; a sandbox's figure is its VmHWM at the last sample before it
    ended (it never decreases while the process lives).
    """

    def __init__(self, interval: float = 0.2):
        self.interval, self.peaks, self._stop = interval, {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _status(pid: str) -> dict:
        try:
            with open(f"/proc/{pid}/status") as file:
                return dict(line.split(":", 1) for line in file if ":" in line)
        except OSError:
            return {}

    def _sample(self) -> None:
        me, parents, statuses = str(os.getpid()), {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                statuses[entry] = self._status(entry)
                parents[entry] = statuses[entry].get("PPid", "").strip()
        for pid, status in statuses.items():
            ancestor, hops = parents.get(pid), 0
            while ancestor and ancestor not in (me, "0", "1") and hops < 8:
                ancestor, hops = parents.get(ancestor), hops + 1
            if ancestor != me or "VmHWM" not in status or status.get("Name", "").strip().startswith("bwrap"):
                continue  # not ours, or bubblewrap itself (its command line names the sandbox too)
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    if b"lthkit.grading.sandbox" not in file.read():
                        continue
            except OSError:
                continue
            kib = int(status["VmHWM"].split()[0])
            key = (pid, status.get("Name", "").strip())
            self.peaks[key] = max(self.peaks.get(key, 0), kib)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def describe(self) -> str:
        if not self.peaks:
            return "no sandbox sampled"
        values = sorted(self.peaks.values())
        return (f"largest sandbox {mib(values[-1] * 1024)}, median {mib(statistics.median(values) * 1024)} "
                f"({len(values)} sandbox processes sampled every {self.interval:g} s)")


def percentile(values, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200, help="hand-ins in the class (default: 200)")
    parser.add_argument("--workers", type=int, default=None, help="sandboxes at once (default: the cores, at most 4)")
    parser.add_argument("--kata", default="find_winning_ticket_step", help="the kata (default: find_winning_ticket_"
                                                                            "step, notebook 1's)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per hand-in (default: 20, the course "
                                                                     "command's)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="MiB per hand-in (default: 2048)")
    parser.add_argument("--seed", type=int, default=0, help="how the class is dealt out")
    parser.add_argument("--keep", type=Path, help="keep the class folder here (default: a temporary folder)")
    add_smoke_argument(parser)
    args = parser.parse_args()
    if args.smoke:
        args.learners, args.timeout, args.memory_mb = 8, 6.0, 512
    workers = args.workers or min(4, os.cpu_count() or 1)
    info = hardware_description("cpu")
    print(f"machine: {info.get('cpu', 'unknown CPU')}, {info['cpu_count']} cores; load average {load_average()}")
    print(f"command: python {' '.join(sys.argv)}")
    if args.smoke:
        print("--smoke: tiny sizes, every section once; the numbers below mean nothing")

    hand_ins = synthetic_class(args.kata, args.learners, seed=args.seed)
    if args.smoke:  # every kind of outcome in a few hand-ins: a hang, a crash, a mistake, correct ones
        pool = synthetic_class(args.kata, 72, seed=args.seed)
        wanted = ["hang.py", "exits.py", "per_layer.py", "syntax_error.py"]
        chosen = [next(h for h in pool if h.example == name) for name in wanted]
        correct = [h for h in pool if h.kind == "correct"]
        chosen += [correct[0], next(h for h in correct[1:] if h.example == correct[0].example)]
        chosen += [h for h in correct if h.example != correct[0].example][:2]
        hand_ins = chosen[:args.learners]
    kinds = {kind: sum(1 for h in hand_ins if h.kind == kind) for kind in ("correct", "mistake", "hostile")}
    hostile = {}
    for h in hand_ins:
        if h.kind == "hostile":
            hostile[h.example.removesuffix(".py")] = hostile.get(h.example.removesuffix(".py"), 0) + 1
    print(f"class: {len(hand_ins)} hand-ins of {args.kata} from {len({h.example for h in hand_ins})} example "
          f"submissions: {kinds['correct']} correct ({len({h.example for h in hand_ins if h.kind == 'correct'})} "
          f"ways), {kinds['mistake']} with a known mistake, {kinds['hostile']} hostile "
          f"({', '.join(f'{name} x{count}' for name, count in sorted(hostile.items()))})")

    root = args.keep or Path(tempfile.mkdtemp(prefix="lthkit-class-"))
    try:
        phases = {}

        def phase(name, function):
            began = time.perf_counter()
            result = function()
            phases[name] = time.perf_counter() - began
            return result

        folder, _, _ = phase("release", lambda: release(root / "class", "week1", katas=[args.kata], force=True))
        download = write_canvas_zip(hand_ins, root / "canvas-download.zip", f"{args.kata}.py")
        _, collected = phase("collect", lambda: collect(folder.root, [download]))
        assert len(collected.learners) == len(hand_ins) and not collected.refused, collected.refused
        limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
        with single_threaded_torch(), PeakMemory("cpu") as peak, SandboxMemory() as sandboxes:
            result = phase("grade", lambda: grade_class(folder, limits, workers=workers, regrade=True))
        phase("feedback", lambda: write_feedback(folder))
        pairs = phase("similarity", lambda: similarity_report(folder))[args.kata]
        phase("export", lambda: export(folder))

        by_id = {learner_id(canvas_name(h.name), h.lms_id): h for h in hand_ins}
        reports = {learner: record["reports"][0] for learner, record in result["records"].items()}
        wall = phases["grade"]
        print(f"phases: {', '.join(f'{name} {seconds:.2f} s' for name, seconds in phases.items())}")
        seconds = [report["seconds"] for report in reports.values()]
        print(f"grade: {len(reports)} hand-ins in {wall:.1f} s with --workers {workers}: {wall / len(reports):.3f} s "
              f"per hand-in (wall / hand-ins); a hand-in's own seconds: median {statistics.median(seconds):.2f}, "
              f"90th percentile {percentile(seconds, 0.9):.2f}, max {max(seconds):.2f}")
        outcomes: dict[str, list[float]] = {}
        for report in reports.values():
            key = "pass" if report["passed"] else ("fail" if report["status"] == "graded" else report["status"])
            outcomes.setdefault(key, []).append(report["seconds"])
        for key, values in sorted(outcomes.items()):
            print(f"  {key:<8} {len(values):>4} hand-ins, own seconds median {statistics.median(values):.2f}, max "
                  f"{max(values):.2f}")
        wrong = [learner for learner, report in reports.items() if not as_expected(report, by_id[learner].expected)]
        print(f"graded as their example's header says: {len(reports) - len(wrong)} of {len(reports)}"
              + (f"; not: {', '.join(f'{w} ({by_id[w].example})' for w in wrong[:10])}" if wrong else ""))
        hung = [report["seconds"] for report in reports.values() if report["status"] == "timeout"]
        others = [report["seconds"] for report in reports.values() if report["status"] != "timeout"]
        ideal = sum(seconds) / workers
        print(f"timeouts: {len(hung)} hung hand-ins, each stopped at its timeout ({args.timeout:g} s from the "
              f"sandbox's start; {min(hung, default=0):.1f}-{max(hung, default=0):.1f} s with the start-up); the other "
              f"{len(others)} took at most {max(others, default=0):.1f} s each, start-up included; wall {wall:.1f} s = "
              f"{wall / ideal:.2f} x (the hand-ins' own seconds / workers = {ideal:.1f} s): a hung hand-in holds one "
              f"worker, the others go on")
        print(f"memory: grading process {peak.describe()}; {sandboxes.describe()}; each sandbox may allocate "
              f"{args.memory_mb} MiB of address space beyond what it holds after importing torch")
        sandbox_peak = max(sandboxes.peaks.values(), default=0) / 1024

        flagged = {(pair.learner_a, pair.learner_b) for pair in pairs if pair.flagged}
        learners = sorted(by_id)
        copies = [(a, b) for a, b in itertools.combinations(learners, 2)
                  if by_id[a].example == by_id[b].example and by_id[a].kind != "hostile"]
        independent = [(a, b) for a, b in itertools.combinations(learners, 2)
                       if by_id[a].kind == by_id[b].kind == "correct" and by_id[a].example != by_id[b].example]
        found = sum(1 for pair in copies if pair in flagged)
        wrongly = sum(1 for pair in independent if pair in flagged)
        others_flagged = len(flagged) - found - wrongly
        print(f"similarity: {len(flagged)} pairs flagged of {len(learners) * (len(learners) - 1) // 2}; renamed "
              f"copies (two hand-ins from one correct or mistaken example): {found} of {len(copies)} flagged; "
              f"correct solutions written differently: {wrongly} of {len(independent)} flagged; other flagged pairs "
              f"(different examples, at least one a mistake: the kata folder writes its mistakes as small edits of "
              f"one skeleton): {others_flagged}")
        print(f"seconds_per_handin={wall / len(reports):.3f} grade_wall_s={wall:.1f} "
              f"wall_over_ideal={wall / ideal:.2f} peak_grader_mib={peak.peak / 2**20:.0f} "
              f"peak_sandbox_mib={sandbox_peak:.0f} "
              f"graded_as_expected={len(reports) - len(wrong)}/{len(reports)} timeouts={len(hung)} "
              f"copies_flagged={found}/{len(copies)} independent_flagged={wrongly}/{len(independent)}")
        return 0 if not wrong and not wrongly else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
