"""Getting started (issue 27): the notebook output filter, `make mywork`, and the README's first screen."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True, timeout=60).stdout


def _notebook(source: str, outputs: list, count) -> str:
    cell = {"cell_type": "code", "execution_count": count, "id": "a1", "metadata": {"tags": ["x"]},
            "outputs": outputs, "source": source}
    return json.dumps({"cells": [cell], "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
                       "nbformat_minor": 5}, indent=1) + "\n"


@pytest.fixture
def checkout(tmp_path):
    """A git repository with the kit's .gitattributes and filter (configured as make setup does), one notebook."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / ".gitattributes", tmp_path / ".gitattributes")
    shutil.copy(REPO / "scripts" / "notebook_filter.py", tmp_path / "scripts" / "notebook_filter.py")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    # What scripts/setup_env.sh writes, with this interpreter instead of .venv/bin/python.
    setup = (REPO / "scripts" / "setup_env.sh").read_text()
    assert 'git config filter.lthkit-notebook.clean "$venv/bin/python scripts/notebook_filter.py %f"' in setup
    _git(tmp_path, "config", "filter.lthkit-notebook.clean", f"{sys.executable} scripts/notebook_filter.py %f")
    _git(tmp_path, "config", "filter.lthkit-notebook.smudge", "cat")
    committed = _notebook("print(1)", [{"name": "stdout", "output_type": "stream", "text": "1\n"}], 1)
    (tmp_path / "notebooks" / "01_x.ipynb").write_text(committed)
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    return tmp_path, committed


def _lab_config():
    """scripts/jupyter_lab_config.py as make lab loads it (traitlets' get_config stood in for)."""
    import types

    config = types.SimpleNamespace(FileContentsManager=types.SimpleNamespace())
    namespace = {"get_config": lambda: config, "__file__": str(REPO / "scripts" / "jupyter_lab_config.py")}
    exec(compile((REPO / "scripts" / "jupyter_lab_config.py").read_text(), "jupyter_lab_config.py", "exec"), namespace)
    assert "--config=scripts/jupyter_lab_config.py" in (REPO / "Makefile").read_text(), "make lab must load it"
    return config.FileContentsManager.post_save_hook


def test_running_a_notebook_leaves_git_status_clean_and_keeps_the_committed_outputs(checkout):
    folder, committed = checkout
    path = folder / "notebooks" / "01_x.ipynb"
    ran = _notebook("print(1)", [{"name": "stdout", "output_type": "stream", "text": "1\nmore\n"}], 7)
    path.write_text(ran.replace('"python3"', '"python3", "display_name": "Python 3"'))
    assert _git(folder, "diff") == "", "the filter: a run's outputs are not a change"
    # JupyterLab saved it (make lab's post-save hook): git learns the new size, nothing is staged.
    _lab_config()({"type": "notebook"}, str(path), None)
    assert _git(folder, "status", "--porcelain") == "", "a run alone made the notebook look modified"
    assert _git(folder, "diff", "--cached") == ""
    _git(folder, "add", "-A")
    assert _git(folder, "show", ":notebooks/01_x.ipynb") == committed, "the committed outputs must stay"
    # An edited cell is a change, outputs and all, and the hook leaves it alone.
    path.write_text(_notebook("print(2)", [], None))
    _lab_config()({"type": "notebook"}, str(path), None)
    assert _git(folder, "status", "--porcelain").strip() == "M notebooks/01_x.ipynb"
    # A deliberate rerun's outputs can still be committed, bypassing the filter.
    path.write_text(ran)
    _git(folder, "-c", "filter.lthkit-notebook.clean=cat", "add", "notebooks/01_x.ipynb")
    assert _git(folder, "show", ":notebooks/01_x.ipynb") == ran


def test_the_kits_notebooks_carry_the_filter():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [str(path.relative_to(REPO)) for path in sorted((REPO / "notebooks").glob("*.ipynb"))]
    paths += [str(path.relative_to(REPO)) for path in sorted((REPO / "notebooks" / "exercises").glob("*.ipynb"))]
    attributes = _git(REPO, "check-attr", "filter", "--", *paths)
    assert attributes.count("filter: lthkit-notebook") == len(paths), attributes


def test_make_mywork_copies_the_exercises_where_the_lab_shows_them_and_keeps_a_learners_work(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    shutil.copytree(REPO / "notebooks" / "exercises", tmp_path / "notebooks" / "exercises")
    first = subprocess.run(["make", "-s", "mywork"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           check=True)
    copied = sorted(path.name for path in (tmp_path / "notebooks" / "mywork").glob("*.ipynb"))
    assert copied == sorted(path.name for path in (REPO / "notebooks" / "exercises").glob("*.ipynb"))
    assert "make lab" in first.stdout
    mine = tmp_path / "notebooks" / "mywork" / copied[0]
    mine.write_text("my work")
    second = subprocess.run(["make", "-s", "mywork"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            check=True)
    assert mine.read_text() == "my work" and f"kept notebooks/mywork/{copied[0]} (yours)" in second.stdout
    assert "/notebooks/mywork/" in (REPO / ".gitignore").read_text().split()


def test_the_readme_first_screen_has_the_set_up_steps():
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:24])
    for words in ("make lab", "make test", "make setup", "make mywork", "git status", "disk"):
        assert words.lower() in first_screen.lower(), f"the README's first screen does not say {words!r}"
