"""Every measured number a notebook's prose states comes from a committed reference run.

A number in a "What we measured" cell is written ``96.25%<!--ref ticket_dense-->``: the HTML comment
(invisible in the rendered notebook) names the fact, and ``scripts/notebook_references.py``
computes each fact from the committed files (``results/notebooks/<notebook>/``). The tests check
that the committed ``facts.json`` follows from those files, that every tagged number equals its
fact, and that no decimal number in those cells goes untagged.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from lthkit.studies.paper import PAPER_PM

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("notebook_references", ROOT / "scripts" / "notebook_references.py")
references = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(references)

#: A tagged number: the number, then the fact's name in an HTML comment.
TAG = re.compile(r"([−-]?\d[\d.,]*%?)<!--ref (\w+)-->")
#: A number that reads as a measurement: decimals (accuracies, points, minutes).
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+")
#: What holds numbers that are not measurements: code spans (settings, ``lr 5e-3``), links, arXiv ids.
NOT_MEASURED = re.compile(r"`[^`]*`|\]\([^)]*\)|arXiv:\S+")


#: Numbers a notebook cites that are not measurements of ours: notebook 5 quotes the paper's protocol
#: (learning rate 1.2e-3, its schedule of weights remaining P_m), the paper's own values ("more than 0.3
#: percentage points", "2.51x faster") and the claims' tolerances (± 0.2).
CITED = {"05_paper_results": {f"{pm:.1f}" for pm in PAPER_PM} | {"1.2", "98.0", "0.2", "0.3", "2.51"},
         "06_stability": {"0.2"},  # notebook 6 defines matching: at most 0.2 points below the dense network
         "09_sparsity_is_not_speed": {"8.0"}}  # notebook 9 names NVIDIA's compute capability 8.0 (Ampere)


def prose(notebook: str) -> list[str]:
    """The markdown cells of ``notebooks/<notebook>.ipynb``."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]


def untagged_numbers(text: str) -> list[str]:
    return DECIMAL.findall(NOT_MEASURED.sub("", TAG.sub("", text)))


@pytest.mark.parametrize("notebook", list(references.FACTS))
def test_the_committed_facts_follow_from_the_committed_runs(notebook):
    folder = references.REFERENCE_ROOT / notebook
    committed = json.loads((folder / "facts.json").read_text())
    assert committed == references.FACTS[notebook](folder), "rerun scripts/notebook_references.py --facts-only"


@pytest.mark.parametrize("notebook", list(references.FACTS))
def test_every_measured_number_in_the_prose_is_a_committed_fact(notebook):
    facts = json.loads((references.REFERENCE_ROOT / notebook / "facts.json").read_text())
    cells = prose(notebook)
    tagged = 0
    for text in cells:
        for value, name in TAG.findall(text):
            assert name in facts, f"{notebook}: the prose cites a fact {name!r} that facts.json lacks"
            assert value == facts[name], f"{notebook}: the prose says {value} for {name}, the reference run {facts[name]}"
            tagged += 1
        untagged = [number for number in untagged_numbers(text) if number not in CITED.get(notebook, ())]
        assert not untagged, f"{notebook}: measured numbers {untagged} have no committed source (tag them)"
    # A notebook that states more than its run time cites at least five of its facts.
    assert tagged >= (5 if set(facts) - {"wall_minutes", "wall_seconds"} else 1)


def test_every_notebook_is_covered_and_its_opening_cell_states_its_measured_run_time():
    notebooks = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(references.FACTS) == notebooks  # each is executed for its run time, and checked
    for notebook in notebooks:
        names = {name for _, name in TAG.findall(prose(notebook)[0])}
        assert names & {"wall_minutes", "wall_seconds"}, f"{notebook}: the opening cell states no measured run time"
        info = json.loads((references.REFERENCE_ROOT / notebook / "run_info.json").read_text())
        assert info["mode"] == "full" and info["notebook"] == f"notebooks/{notebook}.ipynb"


def test_the_checks_catch_a_wrong_or_untagged_number():
    text = "dense 95.46%<!--ref ticket_dense-->, pruned 96.10%, `lr 1.2e-3`, [x](a/1.5.md), arXiv:1803.03635"
    assert TAG.findall(text) == [("95.46%", "ticket_dense")]
    assert untagged_numbers(text) == ["96.10"]
