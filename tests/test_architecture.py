"""Issue 26: the layers hold, nothing imports in a circle, environment variables are read in one place,
the public facade resolves, and the package root holds a handful of modules beside its subpackages."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp

import lthkit
from lthkit import settings

PACKAGE = Path(lthkit.__file__).parent
REPO = PACKAGE.parent


def test_the_import_contracts_hold():
    """``lint-imports`` checks the layers and rules of pyproject.toml's [tool.importlinter]."""
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (the import cycles)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_lthkit_imports_itself_through_others():
    """Zero import cycles among lthkit's modules, function-level and type-checking imports included."""
    graph = grimp.build_graph("lthkit", cache_dir=None)
    edges = {module: {imported for imported in graph.find_modules_directly_imported_by(module)
                      if imported.startswith("lthkit")} for module in graph.modules if module.startswith("lthkit")}
    assert _strongly_connected(edges) == []


def test_the_cycle_check_sees_a_cycle():
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_root_holds_a_handful_of_modules_beside_its_layers():
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "errors.py", "settings.py"]
    layers = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file())
    assert layers == ["classroom", "cli", "core", "course", "export", "grading", "imp", "reporting", "runs", "studies"]


def test_every_environment_variable_is_read_through_settings():
    """No module but lthkit.settings reads os.environ for an LTHKIT_ variable, and every LTHKIT_ name the code
    mentions is one of the settings (documented in one table)."""
    mentioned = set()
    for path in PACKAGE.rglob("*.py"):
        if "submissions" in path.parts:  # the katas' example submissions: learners' code, not lthkit's
            continue
        source = path.read_text()
        mentioned |= set(re.findall(r"\bLTHKIT_[A-Z_]+\b", source))
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr == "environ" and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                line = source.split("\n")[node.lineno - 1]
                assert "LTHKIT" not in line and not re.search(r"\b[A-Z_]+_ENV\b", line), \
                    f"{path}:{node.lineno} reads {line.strip()}"
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "getenv":
                raise AssertionError(f"{path}:{node.lineno} calls getenv: use lthkit.settings")
    assert mentioned <= set(settings.VARIABLES) | {"LTHKIT_TEST_REQUIRE_BUBBLEWRAP"}, mentioned - set(settings.VARIABLES)


def test_every_public_name_of_the_facade_resolves():
    for name in lthkit.__all__:
        assert getattr(lthkit, name) is not None, name
    assert lthkit.LthkitError.__module__ == "lthkit"


def test_a_new_study_is_added_in_one_place_and_the_report_command_finds_it(tmp_path, capsys):
    """Issue 26: a study is one entry (its rows file, reader, report writer); `lthkit report` dispatches on it."""
    from lthkit.cli import main
    from lthkit.core.files import csv_text
    from lthkit.studies import STUDIES, Study, study_of

    def write_report(folder):
        rows = read_rows(folder / "toy.csv")
        (folder / "README.md").write_text(f"# toy\n\n{len(rows)} rows\n")
        return folder / "README.md"

    def read_rows(path):
        import csv

        with open(path, newline="") as file:
            return list(csv.DictReader(file))

    toy = Study("toy", "a study of nothing", "python -m toy", "toy.csv", "x", read_rows, write_report)
    (tmp_path / "toy.csv").write_text(csv_text([{"x": 1}, {"x": 2}], ["x"]))
    with STUDIES.temporarily(toy):
        assert study_of(tmp_path) is toy
        assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").read_text() == "# toy\n\n2 rows\n"
    assert "rewrote the toy report" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 2  # without its entry, no study holds the folder
    assert "holds no study's rows" in capsys.readouterr().err


def test_every_committed_results_folder_belongs_to_a_study():
    from lthkit.studies import study_of

    folders = {path.parent for name in ("summary.csv", "stability.csv") for path in (REPO / "results").rglob(name)}
    folders = {folder for folder in folders if (folder / "run_info.json").is_file()}
    assert {study_of(folder).name for folder in folders} == {"paper", "stability", "anatomy"}


def test_every_run_record_has_the_one_schema():
    """Issue 26: run_info.json has one schema (lthkit.reporting.provenance.RUN_INFO_KEYS) in every results folder,
    and what a study writes now is in it."""
    import json

    from lthkit.reporting.provenance import RUN_INFO_KEYS, check_run_info, run_info, upgrade_run_info
    from lthkit.studies import STUDIES

    records = sorted((REPO / "results").rglob("run_info.json"))
    assert len(records) >= 6
    for path in records:
        info = json.loads(path.read_text())
        check_run_info(info, str(path))
        assert list(info)[:len(RUN_INFO_KEYS)] == list(RUN_INFO_KEYS), path
        assert info["study"] in {*STUDIES, "notebook"}, path  # a registered study, or a notebook's reference run
    fresh = run_info("paper", argv=["python", "-m", "lthkit", "reproduce"], device="cpu", trials=2)
    assert list(fresh)[:len(RUN_INFO_KEYS)] == list(RUN_INFO_KEYS) and fresh["trials"] == 2
    old = {"command": "x", "base_config": {"rounds": 1}, "wall_seconds_this_call": 3.0, "machine": {"torch": "2"}}
    upgraded = upgrade_run_info(old, "anatomy")
    assert upgraded["config"] == {"rounds": 1} and upgraded["wall_seconds"] == 3.0
    assert upgraded["hardware"] == {"torch": "2"} and upgraded["machine"] is None and upgraded["study"] == "anatomy"
