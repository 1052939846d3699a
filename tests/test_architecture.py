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
    assert layers == ["cli", "core", "course", "grading", "imp", "reporting", "runs", "studies"]


def test_every_environment_variable_is_read_through_settings():
    """No module but lthkit.settings reads os.environ for an LTHKIT_ variable, and every LTHKIT_ name the code
    mentions is one of the settings (documented in one table)."""
    mentioned = set()
    for path in PACKAGE.rglob("*.py"):
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
