"""A generated class: learners' hand-ins made from a kata's example submissions.

Each example submission of a kata's folder (``lthkit/grading/katas/<kata>/submissions/``) says
in its header what the grader must find (:func:`lthkit.grading.katas.expectation`): a correct
solution (``# mistake: none``), a known mistake, or a hand-in that cannot be graded (it hangs,
crashes, hoards memory, does not parse, ...). :func:`synthetic_class` deals them out to ``count``
learners (each correct example four times as often as the others) and disguises every copy as
a learner would: the header and the comments gone, the local variables and helper functions
renamed, the code re-laid out (``ast.unparse``). So every hand-in made from one example is a
renamed copy of every other made from it, and the grade each must get is known.
It serves the tests and ``benchmarks/grade_class.py``; an instructor can try the commands on it.

Example:
    >>> code = "# mistake: none\\ndef f(model):\\n    total = 0  # the sum\\n    return total\\n"
    >>> print(disguise(code, seed=1, keep=("f",)))
    def f(model):
        item_2 = 0
        return item_2
    <BLANKLINE>
"""

from __future__ import annotations

import ast
import builtins
import json
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..grading.katas import expectation, submissions

#: How often each kind of example is dealt out, relative to the others.
KIND_WEIGHTS = {"correct": 4, "mistake": 1, "hostile": 1}
_FIRST = ("Zoë", "José", "Ana", "Li", "Omar", "Ingrid", "Kwame", "Sofía", "Mateo", "Yuki", "Priya", "Lars", "Amara",
          "Chen", "Fatima", "Noah")
_LAST = ("Núñez", "Okafor", "Schmidt", "Tanaka", "Haddad", "Kowalski", "Silva", "Nguyen", "Dubois", "Ahmed",
         "Larsen", "García", "Rossi", "Kim", "O'Brien", "van der Berg")
_WORDS = ("acc", "buf", "item", "val", "tmp", "res", "part", "piece", "elem", "obj", "entry", "chunk", "data", "thing")


@dataclass(frozen=True)
class HandIn:
    """One generated learner's hand-in.

    Attributes:
        name: the learner's full name.
        lms_id: their number in an LMS (Canvas's user id, Moodle's participant id).
        example: the example submission it was made from (its file name).
        kind: ``correct``, ``mistake`` or ``hostile``.
        expected: what the example's header says the grader must find.
        code: the disguised code.
    """

    name: str
    lms_id: str
    example: str
    kind: str
    expected: dict
    code: str


def example_kind(expected: dict) -> str:
    """``correct``, ``mistake`` or ``hostile`` (cannot be graded, or tries to escape) from a header."""
    if "mistake" in expected:
        return "correct" if expected["mistake"] == "none" else "mistake"
    return "hostile"


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_FunctionDef(self, node):
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef


def _bound_locally(function: ast.FunctionDef) -> list[str]:
    parameters = {arg.arg for arg in ast.walk(function.args) if isinstance(arg, ast.arg)}
    declared = {name for node in ast.walk(function) if isinstance(node, (ast.Global, ast.Nonlocal))
                for name in node.names}
    stored = [node.id for node in ast.walk(function) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)]
    return [name for name in dict.fromkeys(stored) if name not in parameters | declared]


def disguise(code: str, seed: int, keep: tuple[str, ...] = ()) -> str:
    """``code`` as another learner would hand it in: no header or comments, locals and helpers renamed.

    Args:
        code: a submission's source.
        seed: picks the new names.
        keep: top-level functions whose names stay (the kata's function).

    Returns:
        The disguised code; a source that does not parse loses only its header lines.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        lines = code.splitlines(keepends=True)
        while lines and re.match(r"# (mistake|fails|status|message):", lines[0]):
            lines.pop(0)
        return "".join(lines)
    rng = random.Random(seed)
    taken = set(dir(builtins)) | {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} | {
        alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}

    def fresh() -> str:
        while True:
            name = f"{rng.choice(_WORDS)}_{rng.randrange(1, 10)}"
            if name not in taken:
                taken.add(name)
                return name

    helpers = {node.name: fresh() for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in keep}
    _Renamer(helpers).visit(tree)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mapping = {name: fresh() for name in _bound_locally(node)}
            for statement in node.body:
                _Renamer(mapping).visit(statement)
    return ast.unparse(tree) + "\n"


def synthetic_class(kata: str, count: int, seed: int = 0) -> list[HandIn]:
    """``count`` learners' hand-ins of ``kata`` made from its example submissions (see the module's docstring).

    The examples are dealt out in rounds: every round holds each correct example four times and
    every other example once, in a shuffled order; the names are distinct for up to 256 learners.
    """
    examples = [(path, expectation(path)) for path in submissions(kata)]
    deck = [(path, expected) for path, expected in examples
            for _ in range(KIND_WEIGHTS[example_kind(expected)])]
    rng = random.Random(seed)
    dealt = []
    while len(dealt) < count:
        round_ = list(deck)
        rng.shuffle(round_)
        dealt += round_
    names = [f"{first} {last}" for first in _FIRST for last in _LAST]
    random.Random(seed + 1).shuffle(names)
    hand_ins = []
    for index, (path, expected) in enumerate(dealt[:count]):
        name = names[index % len(names)] + (f" {index // len(names) + 1}" if index >= len(names) else "")
        hand_ins.append(HandIn(name, str(10_000 + 37 * index), path.name, example_kind(expected), expected,
                               disguise(path.read_text(encoding="utf-8"), seed * 100_003 + index, keep=(kata,))))
    return hand_ins


def canvas_name(name: str) -> str:
    """Canvas's ``lastfirst`` prefix: the last and first names, lower case, only word characters."""
    first, _, last = name.partition(" ")
    return re.sub(r"\W", "", last + first).lower()


def as_notebook(released_notebook: Path, kata: str, code: str) -> str:
    """A learner's notebook: the released one with the cell that defines ``kata`` replaced by ``code``."""
    notebook = json.loads(Path(released_notebook).read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and re.search(rf"^def {re.escape(kata)}\(", source, re.MULTILINE):
            cell["source"] = code
            break
    else:
        raise ValueError(f"{released_notebook} has no cell that defines {kata}")
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def write_canvas_zip(hand_ins, path: Path, file_name: str, late=()) -> Path:
    """A Canvas "download submissions" zip: ``lastfirst[_late]_userid_submissionid_<file_name>`` per learner."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, hand_in in enumerate(hand_ins):
            mark = "late_" if hand_in.name in late else ""
            archive.writestr(f"{canvas_name(hand_in.name)}_{mark}{hand_in.lms_id}_{500_000 + index}_{file_name}",
                             hand_in.code)
    return path


def write_moodle_zip(hand_ins, path: Path, file_name: str) -> Path:
    """A Moodle "download all submissions" zip, a folder per learner: ``Full Name_id_assignsubmission_file_/``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for hand_in in hand_ins:
            archive.writestr(f"{hand_in.name}_{hand_in.lms_id}_assignsubmission_file_/{file_name}", hand_in.code)
    return path
