"""Issue 32: the instructor's week (``python -m lthkit course``): release, collect, grade, feedback,
similarity, export, each on a class folder, and the whole week end to end.

Grading here runs few hand-ins (the sandbox takes seconds each); the class at scale is
``benchmarks/grade_class.py``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from lthkit.classroom import collect as collect_module
from lthkit.classroom import similarity as similarity_module
from lthkit.classroom.autograde import grade_class
from lthkit.classroom.collect import collect, gather
from lthkit.classroom.feedback import feedback_html, feedback_markdown
from lthkit.classroom.gradebook import FORMATS
from lthkit.classroom.layout import ClassFolder, learner_id, open_class
from lthkit.classroom.release import release
from lthkit.classroom.similarity import compare_codes, function_code, similarity_report, starter_code
from lthkit.classroom.synthetic import canvas_name, disguise, synthetic_class, write_canvas_zip, write_moodle_zip
from lthkit.cli import course as course_cli
from lthkit.cli import main
from lthkit.errors import LthkitError
from lthkit.grading.katas import kata_folder
from lthkit.grading.sandbox import Limits

KATA = "find_winning_ticket_step"
SUBMISSIONS = kata_folder(KATA) / "submissions"
LIMITS = Limits(timeout=10, memory_mb=512)  # generous: the machine may be busy


def example(name: str) -> str:
    return (SUBMISSIONS / name).read_text(encoding="utf-8")


@pytest.fixture
def week1(tmp_path) -> ClassFolder:
    """A class folder with notebook 1 released as ``week1``."""
    folder, _, _ = release(tmp_path / "class", "week1", notebooks=["01"])
    return folder


# ------------------------------------------------------------------------------------------------ names

def test_learner_names_are_normalized_and_lms_ids_keep_namesakes_apart():
    assert learner_id("Zoë Núñez") == "zoe-nunez"
    assert learner_id("  O'Brien,  Sofía ") == "o-brien-sofia"
    assert learner_id("Jane Doe", "12") != learner_id("Jane Doe", "13")
    assert re.fullmatch(r"learner-[0-9a-f]{8}", learner_id("王芳"))
    assert learner_id("王芳") != learner_id("李娜")
    assert learner_id("../../etc") == "etc"


def test_the_command_lines_defaults_are_the_modules_own():
    assert course_cli.LAYOUTS == collect_module.LAYOUTS
    assert (course_cli.THRESHOLD, course_cli.MIN_SHARED, course_cli.MAX_PAGES) == (
        similarity_module.THRESHOLD, similarity_module.MIN_SHARED, similarity_module.MAX_PAGES)


# ---------------------------------------------------------------------------------------------- release

def test_release_writes_learner_notebooks_a_readme_and_the_manifest(week1):
    manifest = json.loads(week1.manifest_path.read_text())
    assert [entry["name"] for entry in manifest["katas"]] == [KATA]
    entry = manifest["katas"][0]
    assert entry["notebook"] == "01_one_pruning_step.ipynb" and entry["points"] == entry["max_score"] == 10
    assert sum(check["points"] for check in entry["checks"]) == 10
    notebook = nbformat.read(week1.release / "01_one_pruning_step.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "# YOUR CODE HERE" in code and "### BEGIN SOLUTION" not in code
    assert "layers = {name: module for name, module in model.named_modules()" not in code  # the solution is gone
    assert "Assignment **week1**" in notebook.cells[0].source and "10 points" in notebook.cells[0].source
    assert "find_winning_ticket_step" in (week1.release / "README.md").read_text()
    assert sorted(path.name for path in week1.release.iterdir()) == ["01_one_pruning_step.ipynb", "README.md",
                                                                     "manifest.json"]


def test_release_points_katas_and_notebooks(tmp_path):
    _, manifest, _ = release(tmp_path / "c", "w6", katas=["error_barrier"], points={"error_barrier": 25})
    assert [notebook["file"] for notebook in manifest["notebooks"]] == ["06_stability.ipynb"]
    assert manifest["notebooks"][0] == {"file": "06_stability.ipynb", "katas": ["error_barrier"],
                                        "practice": ["interpolate"]}
    assert manifest["total_points"] == 25
    with pytest.raises(LthkitError, match="taught in 06_stability.ipynb"):
        release(tmp_path / "c", "w7", notebooks=["01"], katas=["error_barrier"])
    with pytest.raises(LthkitError, match="no such course notebook"):
        release(tmp_path / "c", "w7", notebooks=["99"])
    with pytest.raises(LthkitError, match="assignment name"):
        release(tmp_path / "c", "../up", notebooks=["01"])


def test_release_again_is_unchanged_and_a_different_one_needs_force(week1):
    before = week1.manifest_path.read_bytes()
    assert release(week1.root, "week1", notebooks=["01"])[2] is False
    assert week1.manifest_path.read_bytes() == before
    with pytest.raises(LthkitError, match="--force"):
        release(week1.root, "week1", notebooks=["01", "02"])
    _, manifest, changed = release(week1.root, "week1", notebooks=["02"], force=True)
    assert changed and [entry["name"] for entry in manifest["katas"]] == ["global_magnitude_mask",
                                                                          "iterative_magnitude_pruning"]
    assert not (week1.release / "01_one_pruning_step.ipynb").exists()  # what the new release does not hold


# ---------------------------------------------------------------------------------------------- collect

def hostile_zip(path: Path) -> Path:
    """A Canvas download with every kind of entry collect must refuse, beside two good ones."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doejane_101_9001_ticket.py", example("correct_by_hand.py"))
        archive.writestr("smithbo_late_102_9002_ticket.ipynb", json.dumps({"cells": [], "nbformat": 4}))
        archive.writestr("../../../tmp/evil_103_9003_x.py", "print('zip slip')")
        archive.writestr("/abs_104_9004_x.py", "print('absolute')")
        link = zipfile.ZipInfo("linky_105_9005_x.py")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
        archive.writestr("locked_106_9006_x.py", "secret")  # marked encrypted below
        archive.writestr("bomb_107_9007_x.py", b"#" * (3 * 2**20))  # 3 MiB of one byte: a few KiB compressed
        archive.writestr("binary_108_9008_x.py", b"\xff\xfe\x00\x01")
        archive.writestr("notjson_109_9009_x.ipynb", "{not json")
        archive.writestr("nested_110_9010_work.zip", b"PK\x03\x04")
        archive.writestr("twice_111_9011_a.py", "x = 1\n")
        archive.writestr("twice_111_9012_A.py", "x = 2\n")
        archive.writestr("not-canvas-named.py", "x = 1\n")
        archive.writestr("__MACOSX/._doejane_101_9001_ticket.py", b"\x00\x05")
        archive.writestr("doejane_101_9013_notes.pdf", b"%PDF-1.4")
    mark_encrypted(path, "locked_106_9006_x.py")
    return path


def mark_encrypted(path: Path, name: str) -> None:
    """Set the "encrypted" flag of a zip entry, in its local and central headers (zipfile writes none)."""
    data = bytearray(path.read_bytes())
    offset = next(info.header_offset for info in zipfile.ZipFile(path).infolist() if info.filename == name)
    data[offset + 6] |= 0x1
    central = data.find(b"PK\x01\x02")
    while central != -1:
        length = int.from_bytes(data[central + 28:central + 30], "little")
        if data[central + 46:central + 46 + length] == name.encode():
            data[central + 8] |= 0x1
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_collect_refuses_each_bad_entry_in_one_line_and_keeps_the_rest(week1, tmp_path):
    folder, got = collect(week1.root, [hostile_zip(tmp_path / "canvas.zip")])
    assert got.layouts == {str(tmp_path / "canvas.zip"): "canvas"}
    refused = "\n".join(got.refused)
    for reason in ("evil_103_9003_x.py: its path leaves the folder (zip slip)", "abs_104_9004_x.py: its path leaves",
                   "linky_105_9005_x.py: a link", "locked_106_9006_x.py: encrypted",
                   "bomb_107_9007_x.py: declares 3,145,728 bytes", "binary_108_9008_x.py: not UTF-8 text",
                   "notjson_109_9009_x.ipynb: not a notebook", "nested_110_9010_work.zip: a zip inside",
                   "twice-111: 2 files named a.py", "not-canvas-named.py: does not follow Canvas's file names"):
        assert reason in refused, (reason, got.refused)
    assert len(got.refused) == 10 and all("\n" not in line for line in got.refused)
    assert got.skipped == ["canvas.zip:doejane_101_9013_notes.pdf: not a .py or .ipynb file"]
    assert sorted(got.learners["doejane-101"]) == ["files", "late", "lms", "lms_id", "name", "refused", "skipped",
                                                   "submission_id"]
    assert got.learners["doejane-101"]["lms_id"] == "101" and got.learners["smithbo-102"]["late"] is True
    assert [item["name"] for item in got.learners["doejane-101"]["files"]] == ["ticket.py"]
    assert (folder.submitted("doejane-101") / "ticket.py").read_text() == example("correct_by_hand.py")
    assert not list((folder.root / "submitted").glob("twice-111/*/*"))  # duplicates: neither kept
    assert not (tmp_path / "tmp" / "evil_103_9003_x.py").exists() and not Path("/tmp/evil_103_9003_x.py").exists()
    roster = json.loads(folder.roster_path.read_text())
    assert set(roster["learners"]) == set(got.learners) and roster["refused"] == got.refused


def test_collect_reads_moodle_folders_learner_folders_and_one_file_each(week1, tmp_path):
    hand_ins = synthetic_class(KATA, 3, seed=5)
    moodle = write_moodle_zip(hand_ins, tmp_path / "moodle.zip", "ticket.py")
    with zipfile.ZipFile(moodle, "a") as archive:
        archive.writestr(f"{hand_ins[0].name}_{hand_ins[0].lms_id}_assignsubmission_onlinetext_onlinetext.html",
                         "<p>see file</p>")
    with zipfile.ZipFile(tmp_path / "moodle4.zip", "w") as archive:  # Moodle 4: no "_" after the folder's name
        archive.writestr("Kim Li_77_assignsubmission_file/sub/ticket.py", "x = 1\n")
        archive.writestr("Kim Li_77_assignsubmission_onlinetext/onlinetext.html", "<p>hi</p>")
    collected, files = gather([tmp_path / "moodle4.zip"])
    assert files == {"kim-li-77": {"ticket.py": b"x = 1\n"}} and len(collected.skipped) == 1
    collected, files = gather([moodle])
    assert set(collected.layouts.values()) == {"moodle"}
    assert sorted(collected.learners) == sorted(learner_id(h.name, h.lms_id) for h in hand_ins)
    assert all(record["lms"] == "moodle" for record in collected.learners.values())
    assert len(collected.skipped) == 1 and "onlinetext" in collected.skipped[0] and not collected.refused

    tree = tmp_path / "by-learner"
    (tree / "Zoë Núñez" / "work").mkdir(parents=True)
    (tree / "Zoë Núñez" / "work" / "ticket.py").write_text("x = 1\n")
    (tree / "Bo Smith").mkdir()
    (tree / "Bo Smith" / "ticket.ipynb").write_text(json.dumps({"cells": []}))
    (tree / "Bo Smith" / "link.py").symlink_to("/etc/passwd")
    collected, files = gather([tree])
    assert collected.layouts == {str(tree): "folders"}
    assert sorted(collected.learners) == ["bo-smith", "zoe-nunez"]
    assert files["zoe-nunez"] == {"ticket.py": b"x = 1\n"}
    assert collected.refused == ["by-learner/Bo Smith/link.py: a link"]

    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "alice.py").write_text("x = 1\n")
    (flat / "Alice.PY").write_text("x = 2\n")
    (flat / "bob.ipynb").write_text(json.dumps({"cells": []}))
    collected, files = gather([flat])
    assert collected.layouts == {str(flat): "files"}
    assert sorted(files) == ["alice", "bob"] and files["alice"] == {}  # two alice.py: neither kept
    assert collected.refused == [f"alice: 2 files named alice.py ({'flat/Alice.PY'}, {'flat/alice.py'}): "
                                 f"duplicates, neither kept"]


def test_collect_needs_a_release_and_readable_sources(tmp_path, week1):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LthkitError, match="no hand-ins found"):
        collect(week1.root, [tmp_path / "empty"])
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(LthkitError, match="no such file or folder|not a folder or a zip"):
        collect(week1.root, [tmp_path / "broken.zip"])
    with pytest.raises(LthkitError, match="no such file or folder"):
        collect(week1.root, [tmp_path / "missing"])
    (tmp_path / "other").mkdir()
    with pytest.raises(LthkitError, match="release the assignment first"):
        collect(tmp_path / "other", [tmp_path / "empty"], "week1")


# ------------------------------------------------------------------------------------------------ grade

def test_a_hung_or_crashing_hand_in_never_delays_the_others_past_its_own_timeout(week1, tmp_path):
    hand_ins = tmp_path / "hand-ins"
    hand_ins.mkdir()
    for learner, name in (("aaa-hangs", "hang.py"), ("exits", "exits.py"), ("hoards", "memory_hog.py"),
                          ("right", "correct_by_hand.py"), ("wrong", "per_layer.py")):
        (hand_ins / f"{learner}.py").write_text(example(name))
    collect(week1.root, [hand_ins])
    limits = Limits(timeout=8, memory_mb=512)
    started, finished = time.monotonic(), {}
    result = grade_class(week1, limits, workers=2,
                         on_learner=lambda learner, record: finished.setdefault(learner, time.monotonic() - started))
    reports = {learner: record["reports"][0] for learner, record in result["records"].items()}
    assert {learner: report["status"] for learner, report in reports.items()} == {
        "aaa-hangs": "timeout", "exits": "crash", "hoards": "memory", "right": "graded", "wrong": "graded"}
    assert reports["right"]["score"] == 10 and reports["wrong"]["score"] == 8
    # The hung one holds one worker until its own timeout (counted from the sandbox's start), no longer ...
    assert reports["aaa-hangs"]["seconds"] < limits.startup_timeout + limits.timeout + 10
    # ... and the others go on in the other worker: each is done within the time of the hand-ins graded before it
    # and itself (their own seconds), not after the hung one.
    others = sorted((learner for learner in reports if learner != "aaa-hangs"), key=finished.get)
    spent = 0.0
    for learner in others:
        spent += reports[learner]["seconds"]
        assert finished[learner] <= spent + 5.0, (learner, finished, {k: r["seconds"] for k, r in reports.items()})


def test_grading_resumes_and_regrades_only_what_changed(week1, tmp_path):
    hand_ins = tmp_path / "hand-ins"
    hand_ins.mkdir()
    (hand_ins / "ann.py").write_text(example("syntax_error.py"))  # graded without a sandbox: fast
    (hand_ins / "ben.py").write_text("def something_else():\n    pass\n")
    collect(week1.root, [hand_ins])
    first = grade_class(week1, LIMITS)
    assert first["graded"] == ["ann", "ben"] and first["kept"] == []
    assert first["records"]["ben"]["reports"][0]["status"] == "missing"
    stamp = week1.autograded("ann").read_bytes()
    second = grade_class(week1, LIMITS)
    assert second["graded"] == [] and second["kept"] == ["ann", "ben"]
    assert week1.autograded("ann").read_bytes() == stamp
    assert grade_class(week1, Limits(timeout=11, memory_mb=512))["graded"] == ["ann", "ben"]  # other limits
    (week1.submitted("ben") / "ben.py").write_text(example("syntax_error.py"))
    assert grade_class(week1, Limits(timeout=11, memory_mb=512))["graded"] == ["ben"]  # a changed file
    rows = list(csv.DictReader(io.StringIO((week1.reports / "grades.csv").read_text())))
    assert [(row["learner"], row["status"]) for row in rows] == [("ann", "syntax"), ("ben", "syntax")]


# --------------------------------------------------------------------------------------------- feedback

HOSTILE = "<script>window.pwned=1</script><img src=x onerror=alert(1)> | `tick` *star* [link](http://x.example)"


def record_with(status: str = "graded", checks=None, name: str = "Eve <b>") -> dict:
    checks = checks if checks is not None else [
        {"name": "runs", "title": "runs on any model", "status": "fail", "score": 0, "max_score": 1,
         "message": f"the function raised ValueError: {HOSTILE}", "hint": "Find the layers by type.", "mistake": None},
        {"name": "global", "title": "one global threshold", "status": "pass", "score": 2, "max_score": 2,
         "message": "", "hint": "", "mistake": None},
        {"name": "later", "title": "compounds", "status": "not_run", "score": 0, "max_score": 1,
         "message": "not run: the first call raised", "hint": "", "mistake": None}]
    report = {"kata": KATA, "submission": "eve/ticket.py", "status": status, "message": HOSTILE if status != "graded"
              else "", "score": 2, "max_score": 4, "passed": False, "seconds": 1.0, "notes": [f"note {HOSTILE}"],
              "sandbox": "bubblewrap (bwrap 0.11; uid 65534; /usr/bin/bwrap)", "checks": checks, "file": "ticket.py",
              "points": 20, "earned": 10.0}
    return {"learner": "eve", "name": name, "assignment": "week1", "graded_at": "2026-12-07T10:00:00+00:00",
            "lthkit_version": "0.1.0", "key": {"limits": {"timeout": 20.0, "memory_mb": 2048}},
            "reports": [report], "points": 10.0, "max_points": 20}


def test_feedback_html_is_self_contained_and_escapes_everything():
    page = feedback_html(record_with())
    assert "<script" not in page and "<img" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;",
                                                                                                  "")
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page and "Eve &lt;b&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # no external asset
    assert "default-src 'none'" in page
    assert "NOT RUN" in page and "10 / 20 points" in page and "Find the layers by type." in page
    assert "bubblewrap" in page and "uid 65534" not in page and "/usr/bin/bwrap" not in page  # instructor's details
    assert "time limit 20 s and memory limit 2048 MiB" in page
    ungraded = feedback_html(record_with(status="timeout"))
    assert "TIMEOUT" in ungraded and "did not finish in time" in ungraded and "<script" not in ungraded


def test_feedback_markdown_shows_submission_text_literally():
    text = feedback_markdown(record_with())
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "\\| \\`tick\\` \\*star\\* \\[link\\](http://x.example)" in text
    assert "| runs on any model | FAIL | 0 / 1 |" in text and "| compounds | NOT RUN | 0 / 1 |" in text
    assert "*Hint:* Find the layers by type." in text
    assert all("\n" not in line for line in text.splitlines())


# ------------------------------------------------------------------------------------------- similarity

def test_function_code_takes_the_function_and_the_helpers_it_calls():
    code = ("import torch\nLAYERS = 3\n\ndef unused():\n    return 0\n\n@torch.no_grad()\ndef helper(x):\n"
            "    return x\n\nclass Box:\n    pass\n\ndef f(model):\n    return helper(Box())\n")
    assert function_code(code, "f") == ("@torch.no_grad()\ndef helper(x):\n    return x\nclass Box:\n    pass\n"
                                        "def f(model):\n    return helper(Box())")
    assert function_code(code, "g") is None and function_code("def f(:", "f") is None


def test_renamed_copies_are_found_and_independent_solutions_are_not(week1, tmp_path):
    """The Done-when: among a generated class, every renamed copy of a correct solution is flagged, and no pair
    of correct solutions written independently (the kata folder's four) is."""
    hand_ins = synthetic_class(KATA, 36, seed=0)  # one round: each correct example four times, each other once
    collect(week1.root, [write_canvas_zip(hand_ins, tmp_path / "canvas.zip", "ticket.py")])
    results = similarity_report(week1)
    by_id = {learner_id(canvas_name(hand_in.name), hand_in.lms_id): hand_in for hand_in in hand_ins}
    flagged = {(pair.learner_a, pair.learner_b) for pair in results[KATA] if pair.flagged}
    correct = sorted(learner for learner, hand_in in by_id.items() if hand_in.kind == "correct")
    assert len({by_id[learner].example for learner in correct}) == 4
    copies = [(a, b) for a, b in itertools.combinations(correct, 2) if by_id[a].example == by_id[b].example]
    independent = [(a, b) for a, b in itertools.combinations(correct, 2) if by_id[a].example != by_id[b].example]
    assert len(copies) == 24 and len(independent) == 96
    assert all(pair in flagged for pair in copies), [pair for pair in copies if pair not in flagged]
    assert not [pair for pair in independent if pair in flagged]
    index = (week1.similarity / "index.html").read_text()
    assert "never changes a grade" in index and all(re.search(rf"{a}.*{b}", index) for a, b in copies[:3])
    rows = list(csv.DictReader(io.StringIO((week1.similarity / "similarity.csv").read_text())))
    assert {(row["learner_a"], row["learner_b"]) for row in rows if row["flagged"] == "1"} == flagged


def test_the_starter_code_and_short_obvious_code_are_never_evidence(week1):
    starter = starter_code(week1, "01_one_pruning_step.ipynb")
    stub = function_code(starter, KATA)
    assert "raise NotImplementedError" in stub
    # Two learners who hand in the starter unchanged share all of it, and none of it counts.
    pairs, _ = compare_codes({"a": stub, "b": stub}, starter, KATA)
    assert not [pair for pair in pairs if pair.flagged]
    # The same short body written twice is below min_shared; the same long one, renamed, is not.
    short = {"a": disguise(example("hang.py"), 1, keep=(KATA,)), "b": disguise(example("hang.py"), 2, keep=(KATA,))}
    assert not [pair for pair in compare_codes(short, starter, KATA)[0] if pair.flagged]
    renamed = {learner: function_code(disguise(example("correct_by_hand.py"), seed, keep=(KATA,)), KATA)
               for learner, seed in (("a", 1), ("b", 2))}
    assert renamed["a"] != renamed["b"]
    assert [pair.flagged for pair in compare_codes(renamed, starter, KATA)[0]] == [True]


# --------------------------------------------------------------------------------------------- gradebook

def test_gradebook_formats_follow_their_lms_conventions(week1, tmp_path):
    hand_ins = tmp_path / "moodle.zip"
    with zipfile.ZipFile(hand_ins, "w") as archive:
        archive.writestr("=HYPERLINK(1) Doe_4242_assignsubmission_file_/ticket.py", example("syntax_error.py"))
        archive.writestr("Ann Lee_4243_assignsubmission_file_/ticket.py", "def f():\n    pass\n")
    collect(week1.root, [hand_ins])
    grade_class(week1, LIMITS)
    from lthkit.classroom.gradebook import export

    written, warnings = export(week1, title="Week 1 (77)")
    assert sorted(path.name for path in written) == sorted(format.file for format in FORMATS.values())
    canvas = list(csv.reader(io.StringIO((week1.exports / "canvas.csv").read_text())))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Week 1 (77)"]
    assert canvas[1] == ["    Points Possible", "", "", "", "", "10"]
    assert any("no Canvas user id" in line for line in warnings)
    moodle = {row["Identifier"]: row for row in csv.DictReader(io.StringIO((week1.exports / "moodle.csv").read_text()))}
    assert sorted(moodle) == ["Participant 4242", "Participant 4243"]
    doe = moodle["Participant 4242"]
    assert doe["Full name"].startswith("'=HYPERLINK")  # no formula for a spreadsheet to run
    assert doe["Grade"] == "0" and doe["Maximum Grade"] == "10" and doe["Last modified (grade)"]
    assert "(syntax)" in doe["Feedback comments"] and "(missing)" in moodle["Participant 4243"]["Feedback comments"]
    text = (week1.exports / "nbgrader.csv").read_text()
    assert text.splitlines()[0] == ("assignment,duedate,timestamp,student_id,last_name,first_name,email,raw_score,"
                                    "late_submission_penalty,score,max_score")
    nbgrader = {row["student_id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert nbgrader["ann-lee-4243"]["last_name"] == "Lee" and nbgrader["ann-lee-4243"]["first_name"] == "Ann"
    plain = {row["learner"]: row for row in csv.DictReader(io.StringIO((week1.exports / "grades.csv").read_text()))}
    assert plain["ann-lee-4243"][KATA] == "0" and plain["ann-lee-4243"]["max_total"] == "10"
    assert plain["ann-lee-4243"]["lms"] == "moodle" and plain["ann-lee-4243"]["lms_id"] == "4243"


# ------------------------------------------------------------------------------------------- end to end

def tree_digest(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def test_the_instructors_week_end_to_end(tmp_path, capsys):
    """release → collect (a Canvas-style zip) → grade → feedback → similarity → export, through the CLI."""
    root = tmp_path / "class"
    assert main(["course", "release", str(root), "--assignment", "week1", "--notebooks", "01"]) == 0
    assert "graded: find_winning_ticket_step (10)" in capsys.readouterr().out
    folder = open_class(root)
    notebook = folder.release / "01_one_pruning_step.ipynb"

    # Four learners: a notebook with a correct solution, a renamed copy of it as a .py, a mistake, a syntax error;
    # and entries collect must refuse.
    from lthkit.classroom.synthetic import as_notebook

    solution = disguise(example("correct_sorted_threshold.py"), 1, keep=(KATA,))
    copy = disguise(example("correct_sorted_threshold.py"), 2, keep=(KATA,))
    download = tmp_path / "submissions.zip"
    with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("submissions/nunezzoe_201_7001_01_one_pruning_step.ipynb",
                         as_notebook(notebook, KATA, solution))
        archive.writestr("submissions/okaforkwame_late_202_7002_ticket.py", copy)
        archive.writestr("submissions/silvaana_203_7003_ticket.py", disguise(example("per_layer.py"), 3,
                                                                             keep=(KATA,)))
        archive.writestr("submissions/kimli_204_7004_ticket.py", example("syntax_error.py"))
        archive.writestr("submissions/../../escape_205_7005_x.py", "print('out')")
    assert main(["course", "collect", str(root), str(download)]) == 1  # something was refused
    out = capsys.readouterr().out
    assert "refused: submissions.zip:submissions/../../escape_205_7005_x.py: its path leaves the folder" in out
    assert "collected 4 files of 4 learners (" in out and "as canvas" in out
    learners = ["kimli-204", "nunezzoe-201", "okaforkwame-202", "silvaana-203"]
    assert sorted(json.loads(folder.roster_path.read_text())["learners"]) == learners

    assert main(["course", "grade", str(root), "--workers", "2", "--timeout", "10", "--memory-mb", "512",
                 "--no-progress"]) == 0
    assert "graded 4 learners" in capsys.readouterr().out
    grades = folder.grades()
    assert {learner: record["points"] for learner, record in grades.items()} == {
        "kimli-204": 0, "nunezzoe-201": 10, "okaforkwame-202": 10, "silvaana-203": 8}
    assert grades["okaforkwame-202"]["late"] is True
    assert grades["nunezzoe-201"]["reports"][0]["file"] == "01_one_pruning_step.ipynb"

    assert main(["course", "feedback", str(root)]) == 0
    capsys.readouterr()
    for learner in learners:
        page = (folder.feedback(learner) / "feedback.html").read_text()
        assert "<script" not in page and f"{grades[learner]['points']:g} / 10 points" in page
        assert (folder.feedback(learner) / "feedback.md").is_file()
    assert r"Every layer lost exactly prune\_amount" in (folder.feedback("silvaana-203") / "feedback.md").read_text()
    assert "SYNTAX" in (folder.feedback("kimli-204") / "feedback.html").read_text()

    graded_before = tree_digest(root / "autograded", root / "feedback") + (folder.reports / "grades.csv").read_text()
    assert main(["course", "similarity", str(root)]) == 0
    assert "find_winning_ticket_step: 1 pairs flagged, in 1 groups (largest: 2 learners)" in capsys.readouterr().out
    assert (folder.similarity / "pairs" / KATA / "nunezzoe-201--okaforkwame-202.html").is_file()
    assert graded_before == tree_digest(root / "autograded", root / "feedback") + (
        folder.reports / "grades.csv").read_text()  # never changes a grade

    assert main(["course", "export", str(root), "--format", "canvas,nbgrader"]) == 0
    assert "wrote" in capsys.readouterr().out
    canvas = list(csv.DictReader(io.StringIO((folder.exports / "canvas.csv").read_text())))
    assert [(row["ID"], row["week1"]) for row in canvas] == [("", "10"), ("204", "0"), ("201", "10"), ("202", "10"),
                                                            ("203", "8")]
    assert not (folder.exports / "moodle.csv").exists()


def test_course_command_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["course"]) == 2
    capsys.readouterr()
    assert main(["course", "grade", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip() == f"lthkit course: error: no such class folder: {tmp_path / 'nowhere'}"
    (tmp_path / "empty").mkdir()
    assert main(["course", "feedback", str(tmp_path / "empty")]) == 2
    assert "name the assignment with --assignment (none is released there yet)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["course", "similarity", str(tmp_path), "--threshold", "1.5"])
    assert stop.value.code == 2
    assert main(["course", "release", str(tmp_path / "c"), "-a", "w", "--points", "nope=3"]) == 2
    assert "--points 'nope=3'" in capsys.readouterr().err


def test_a_released_notebook_handed_in_whole_is_graded_on_its_functions_not_its_set_up(week1):
    """The learner notebook's set-up calls lthkit (``config = notebook_preset(...)``): the grader skips it with a
    note instead of running it (where calling the kit's library would make the hand-in a 'reference' one)."""
    from lthkit.grading.source import load_submission

    submission = load_submission(week1.release / "01_one_pruning_step.ipynb", KATA)
    assert submission.error is None and submission.guarded == ()
    code = "\n".join(source for _, source in submission.chunks)
    assert "notebook_preset(" not in code and f"def {KATA}(" in code
    assert "`config = notebook_preset(\"kata\")`: it calls notebook_preset, from lthkit's library" in \
        submission.notes[0]


# -------------------------------------------------------------------------------------------- properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NAME_PARTS = st.sampled_from(["..", ".", "", "/", "\\", "C:", "a", "Zoë", "_1_2_", "evil", "x.py", "~"])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120), st.one_of(st.none(), st.text(max_size=12)))
def test_a_learner_name_is_always_a_safe_folder_name(name, lms_id):
    folder = learner_id(name, lms_id)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", folder) and len(folder) <= 80
    assert learner_id(name, lms_id) == folder  # the same name, the same folder


@settings(max_examples=200, deadline=None)
@given(st.lists(NAME_PARTS, min_size=1, max_size=6).map("/".join).filter(bool))
def test_a_zip_entry_never_lands_outside_the_folder(tmp_path_factory, name):
    path = tmp_path_factory.mktemp("zips") / "download.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name), "x = 1\n")
    entries, refused = collect_module.zip_entries(path, [collect_module.MAX_TOTAL_BYTES])
    for entry in entries:
        assert entry.parts and all(part not in ("", ".", "..") and "/" not in part and "\\" not in part
                                   for part in entry.parts)
        assert not any(re.match(r"^[A-Za-z]:", part) for part in entry.parts)  # no drive letter
        stored = collect_module._file_name(entry.parts[-1])
        assert "/" not in stored and not stored.startswith(".") and re.fullmatch(r"[A-Za-z0-9._-]+", stored)
    if ".." in re.split(r"[/\\]", name) or name.startswith(("/", "\\")):
        assert refused and not entries
