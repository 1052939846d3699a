"""What code of a submission the sandbox runs: from a ``.py`` file, a notebook, or a live function.

**Files.** Of a ``.py`` file or an ``.ipynb`` notebook the sandbox runs only the *definitions*
at the top level: imports, ``def`` and ``class`` statements, and assignments whose value calls
nothing (``AMOUNT = 0.2``, ``LAYERS = (nn.Linear, nn.Conv2d)``); a constant assignment built by
calls to builtins or imported names (``LAYERS = tuple([nn.Linear, nn.Conv2d])``,
``DEVICE = torch.device("cpu")``) runs too, guarded: if it fails or takes more than a moment it is
skipped with a note; one that calls lthkit itself (a notebook's set-up, ``config =
notebook_preset(...)``) is skipped, since graded code cannot use the kit's library. Everything
else (loading MNIST, training, plotting, ``check(...)`` calls) is skipped, and the report's notes
say which line and why: it is slow, it is not what is graded, and it would run the grader inside
the grader. Files are read as ``utf-8-sig`` (a BOM is fine).
A notebook's IPython magics
(``%matplotlib``, ``!pip``) are skipped too; a cell that does not parse is skipped with a note,
unless it is the cell that defines the graded function. Line numbers are kept, so an error names
the cell and the line the learner sees.

**Functions.** ``check(find_winning_ticket_step)`` in a notebook hands the grader a function
object that lives in the learner's kernel. It cannot cross to another process as an object
(pickle stores a notebook function by name, and a fresh process has no such name), so the grader
sends its *source*: IPython keeps every cell's source, so :func:`inspect.getsource` works for a
function defined in a cell. What the function needs from the notebook's globals comes along,
rebuilt: modules as ``import`` lines, functions and classes defined in the notebook as their
source (recursively), functions and classes from importable modules as ``from ... import``
lines, and constants (numbers, strings, tuples of them, dtypes, devices) as literals. Anything
else (a trained model, a tensor) is not sent: the function should not depend on it, and if it
does, the sandbox's ``NameError`` comes with a note naming it. A function from an importable
module (such as a kata's reference solution, or a function of lthkit's library) is sent as an import.

Example:
    >>> submission = submission_from_text("import torch\\nmodel = Net()\\ndef f(x):\\n    return x\\n",
    ...                                   name="solution.py")
    >>> print(submission.chunks[0][1])
    import torch
    <BLANKLINE>
    def f(x):
        return x
    <BLANKLINE>
    >>> print(submission.notes[0])  # doctest: +ELLIPSIS
    solution.py: skipped (only definitions run in the grader): line 2 `model = Net()`: it calls Net, ...
"""

from __future__ import annotations

import ast
import builtins
import dis
import importlib
import inspect
import json
import linecache
import re
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path

#: Submissions larger than this are refused rather than parsed.
MAX_SOURCE_BYTES = 2_000_000
SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class Submission:
    """Code to grade, as labelled chunks run in order in one namespace.

    Attributes:
        name: what reports call it (a path, or ``"find_winning_ticket_step (notebook)"``).
        chunks: ``(label, source)`` pairs; the label is the file name errors show (``"cell 4"``).
        notes: remarks for the report (skipped cells, globals not sent).
        error: ``(status, message)`` when the submission cannot be run at all.
        guarded: indices of the chunks that are one guarded constant assignment each (see
            :func:`definitions_segments`): a failure there skips it with a note.
    """

    name: str
    chunks: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    error: tuple[str, str] | None = None
    guarded: tuple[int, ...] = ()


# ------------------------------------------------------------------------------------- files

def _calls_something(node: ast.AST) -> bool:
    """Whether evaluating ``node`` would call code (lambda bodies do not run when defined)."""
    if isinstance(node, ast.Lambda):
        return False
    if isinstance(node, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
        return True
    return any(_calls_something(child) for child in ast.iter_child_nodes(node))


def _bound_names(statement: ast.stmt) -> set[str]:
    """The names a kept top-level statement binds."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, ast.AnnAssign) else []
    names = {node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)}
    if isinstance(statement, ast.Try):
        for body in [statement.body, statement.orelse, statement.finalbody] + [h.body for h in statement.handlers]:
            for inner in body:
                names |= _bound_names(inner)
    return names


def _reads_only(node: ast.AST, defined: set[str]) -> bool:
    """Whether an expression reads only names already defined (kept definitions or builtins)."""
    return all(child.id in defined or hasattr(builtins, child.id)
               for child in ast.walk(node) if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load))


def _is_definition(statement: ast.stmt, defined: set[str]) -> bool:
    """Imports, def/class, and assignments of values that call nothing and read only definitions."""
    if isinstance(statement, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                              ast.Pass)):
        return True
    if isinstance(statement, (ast.Assign, ast.AnnAssign)):
        return _plain_targets(statement) and not _calls_something(statement.value) \
            and _reads_only(statement.value, defined)
    if isinstance(statement, ast.Try):  # try: import x / except ImportError: ...
        bodies = [statement.body, statement.orelse, statement.finalbody] + [h.body for h in statement.handlers]
        return all(_is_definition(inner, defined | _bound_names(statement)) for body in bodies for inner in body)
    return False


def _plain_targets(statement: ast.stmt) -> bool:
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    return statement.value is not None and all(isinstance(t, (ast.Name, ast.Tuple)) for t in targets)


def _callee_root(node: ast.AST) -> str | None:
    """``torch`` for ``torch.nn.Linear``, ``tuple`` for ``tuple``; None for anything else."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _why_not_constant(statement: ast.stmt, defined: set[str], imported: set[str], kit: frozenset[str] = frozenset()
                      ) -> str | None:
    """None when ``statement`` is a constant assignment built by calls to builtins or imported names
    (``LAYERS = tuple([nn.Linear, nn.Conv2d])``, ``DEVICE = torch.device("cpu")``); else why not.

    A call to a name imported from lthkit itself (a notebook's set-up: ``config = notebook_preset(...)``)
    is not run: graded code cannot use the kit's library, and the notebook's state is not the function's.
    """
    if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or not _plain_targets(statement):
        return f"a{'n' if type(statement).__name__[0] in 'AEIOU' else ''} {type(statement).__name__} statement, " \
               "not a definition"
    for node in ast.walk(statement.value):
        if isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return "not a constant"
        if isinstance(node, ast.Call):
            root = _callee_root(node.func)
            if root in kit:
                return f"it calls {ast.unparse(node.func)[:40]}, from lthkit's library, which graded code cannot use"
            if root is None or not (root in imported or (root not in defined and hasattr(builtins, root))):
                return f"it calls {ast.unparse(node.func)[:40]}, which is neither a builtin nor an imported name"
    missing = [child.id for child in ast.walk(statement.value) if isinstance(child, ast.Name)
               and isinstance(child.ctx, ast.Load) and child.id not in defined and not hasattr(builtins, child.id)]
    return f"it reads {missing[0]}, which no definition before it binds" if missing else None


def _imported_names(statement: ast.stmt) -> set[str]:
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return _bound_names(statement)
    if isinstance(statement, ast.Try):
        return {name for body in [statement.body, statement.orelse] for inner in body
                for name in _imported_names(inner)}
    return set()


def _kit_names(statement: ast.stmt) -> set[str]:
    """The names an import binds to lthkit's own modules (``import lthkit``, ``from lthkit.x import y``)."""
    if isinstance(statement, ast.Import):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names
                if alias.name.split(".")[0] == "lthkit"}
    if isinstance(statement, ast.ImportFrom):
        if statement.level == 0 and (statement.module or "").split(".")[0] == "lthkit":
            return {alias.asname or alias.name for alias in statement.names}
        return set()
    if isinstance(statement, ast.Try):
        return {name for body in [statement.body, statement.orelse] for inner in body for name in _kit_names(inner)}
    return set()


def _segment(lines: list[str], statement: ast.stmt) -> tuple[int, int, list[str]]:
    """The source lines of a top-level statement (first, last, text), decorators included."""
    first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
    last = statement.end_lineno
    # Column offsets are UTF-8 byte offsets; they matter only around a ';' on the same line.
    segment = [line.encode() for line in lines[first - 1:last]]
    start = statement.col_offset if first == statement.lineno else 0
    segment[-1] = segment[-1][:statement.end_col_offset]
    segment[0] = segment[0][start:]
    return first, last, [line.decode(errors="replace") for line in segment]


def definitions_segments(text: str, label: str, defined: set[str] | None = None, imported: set[str] | None = None,
                         kit: set[str] | None = None) -> tuple[list[tuple[str, bool]], list[str]]:
    """The code of ``text`` the sandbox runs, in order, and what it skips.

    Definitions (imports, ``def``, ``class``, assignments that call nothing) are kept as they
    are; a top-level constant assignment built by calls to builtins or imported names
    (``LAYERS = tuple([nn.Linear, nn.Conv2d])``) is kept as a *guarded* segment of its own: the
    sandbox runs it with a short time limit and skips it, with a note, if it fails. Every segment
    has all the lines of ``text`` (blank where it has no code), so line numbers stay the same.

    Args:
        text: Python source.
        label: its name in error messages.
        defined: names bound by earlier kept code (a notebook's earlier cells); updated in place.
        imported: the subset of them bound by imports; updated in place.
        kit: the subset of those bound to lthkit's own modules; updated in place.

    Returns:
        ``([(segment_text, guarded)], skipped)``: ``skipped`` says, for each top-level statement
        that does not run, its line and why (``"line 3 `train(model)`: an Expr statement ..."``).

    Raises:
        SyntaxError: ``text`` does not parse (its ``filename`` is ``label``).
    """
    defined = set() if defined is None else defined
    imported = set() if imported is None else imported
    kit = set() if kit is None else kit
    tree = ast.parse(text, filename=label)
    lines = re.split(r"\r\n|\r|\n", text)  # the line breaks the parser counts (not splitlines')
    segments: list[tuple[list[str], bool]] = []
    skipped, guarded_names = [], set()
    for statement in tree.body:
        reads_guarded = any(isinstance(node, ast.Name) and node.id in guarded_names
                            for node in ast.walk(statement)) and isinstance(statement, (ast.Assign, ast.AnnAssign))
        if _is_definition(statement, defined) and not reads_guarded:
            guarded = False
        elif (why := _why_not_constant(statement, defined, imported, frozenset(kit))) is None:
            guarded = True
            guarded_names |= _bound_names(statement)
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring (or a bare `...`): nothing to run, nothing to say
        else:
            code = ast.get_source_segment(text, statement) or ""
            code = " ".join(code.split())
            skipped.append(f"line {statement.lineno} `{code[:50]}{'...' if len(code) > 50 else ''}`: {why}")
            continue
        defined |= _bound_names(statement)
        imported |= _imported_names(statement)
        kit -= _imported_names(statement) - _kit_names(statement)  # rebound to something else
        kit |= _kit_names(statement)
        first, last, segment = _segment(lines, statement)
        if guarded or not segments or segments[-1][1]:
            segments.append(([""] * len(lines), guarded))
        segments[-1][0][first - 1:last] = segment
    return [("\n".join(kept), guarded) for kept, guarded in segments], skipped


def definitions_only(text: str, label: str, defined: set[str] | None = None) -> str:
    """``text`` with every top-level statement the sandbox does not run blanked out (line numbers
    kept): the segments of :func:`definitions_segments` merged into one text.

    Raises:
        SyntaxError: ``text`` does not parse (its ``filename`` is ``label``).
    """
    segments, _ = definitions_segments(text, label, defined)
    return merge_sources([segment for segment, _ in segments]) if segments else \
        "\n".join([""] * len(re.split(r"\r\n|\r|\n", text)))


def merge_sources(texts: list[str]) -> str:
    """Texts of the same lines, blank where they have no code, merged line by line."""
    rows = [text.split("\n") for text in texts]
    return "\n".join(next((line for line in column if line), "") for column in zip(*rows))


def _skipped_note(label: str, skipped: list[str], limit: int = 6) -> str | None:
    if not skipped:
        return None
    shown = "; ".join(skipped[:limit]) + (f"; and {len(skipped) - limit} more" if len(skipped) > limit else "")
    return f"{label}: skipped (only definitions run in the grader): {shown}"


_MAGIC = re.compile(r"^\s*(%|!|\?)|^\s*\w[\w.]*\?{1,2}\s*$")


def _without_magics(cell: str) -> str:
    """IPython-only lines (``%magic``, ``!shell``, ``obj?``) become blank lines."""
    return "\n".join("" if _MAGIC.match(line) else line for line in cell.splitlines())


def _with_segments(label: str, segments, chunks: list, guarded: list) -> None:
    for text, is_guarded in segments:
        if is_guarded:
            guarded.append(len(chunks))
        chunks.append((label, text))


def submission_from_text(text: str, name: str, function: str | None = None) -> Submission:
    """The definitions of one Python source text (a ``.py`` file's content)."""
    label = Path(name).name
    try:
        segments, skipped = definitions_segments(text.removeprefix("\ufeff"), label)
        chunks, guarded = [], []
        _with_segments(label, segments, chunks, guarded)
        note = _skipped_note(label, skipped)
        return Submission(name, tuple(chunks), (note,) if note else (), guarded=tuple(guarded))
    except SyntaxError as error:
        return Submission(name, error=("syntax", _syntax_message(error, Path(name).name)))
    except (ValueError, RecursionError, MemoryError) as error:
        return Submission(name, error=("syntax", f"{Path(name).name} cannot be parsed: {error}"))


def _syntax_message(error: SyntaxError, label: str) -> str:
    where = f"{label}, line {error.lineno}" if error.lineno else label
    text = f": {error.text.strip()}" if error.text and error.text.strip() else ""
    return f"SyntaxError in {where}: {error.msg}{text}"


def submission_from_notebook(text: str, name: str, function: str | None = None) -> Submission:
    """The definitions of every code cell of a notebook (JSON text), in order.

    A cell that does not parse is skipped with a note, unless it mentions ``def <function>``:
    then the function cannot be defined and the submission is a syntax error.
    """
    try:
        notebook = json.loads(text)
        cells = notebook["cells"]
        if not isinstance(cells, list):
            raise TypeError("'cells' is not a list")
    except RecursionError:
        return Submission(name, error=("error", f"{Path(name).name} is not a Jupyter notebook (its JSON is nested "
                                                "too deeply)"))
    except (ValueError, KeyError, TypeError, MemoryError) as error:
        return Submission(name, error=("error", f"{Path(name).name} is not a Jupyter notebook "
                                                f"({type(error).__name__}: {str(error)[:200]})"))
    chunks, notes, guarded, skipped = [], [], [], []
    defined: set[str] = set()  # names the kept cells bind, in order
    imported: set[str] = set()
    kit: set[str] = set()
    code_number = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code_number += 1
        source = cell.get("source", "")
        label = f"cell {code_number}"
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        elif not isinstance(source, str):
            notes.append(f"skipped {label}: its source is a {type(source).__name__} of "
                         f"{'non-text items' if isinstance(source, list) else 'something else'}, not text")
            continue
        if source.lstrip().startswith("%%"):
            continue  # a cell magic: the whole cell is not Python
        try:
            segments, cell_skipped = definitions_segments(_without_magics(source), label, defined, imported, kit)
            _with_segments(label, segments, chunks, guarded)
            skipped += [f"{label} {item}" for item in cell_skipped]
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            message = _syntax_message(error, label) if isinstance(error, SyntaxError) else f"{label}: {error}"
            if function and re.search(rf"\bdef\s+{re.escape(function)}\b", source):
                return Submission(name, error=("syntax", message))
            notes.append(f"skipped {label}, which does not parse ({message})")
    note = _skipped_note(Path(name).name, skipped)
    return Submission(name, tuple(chunks), tuple(notes) + ((note,) if note else ()), guarded=tuple(guarded))


def load_submission(path, function: str | None = None) -> Submission:
    """Read a ``.py`` or ``.ipynb`` submission; a broken file gives a :class:`Submission` with ``error``."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return Submission(str(path), error=("error", f"{path.name} is larger than {MAX_SOURCE_BYTES:,} bytes"))
        text = path.read_bytes().decode("utf-8-sig")  # a BOM (some Windows editors write one) is not code
    except UnicodeDecodeError:
        return Submission(str(path), error=("error", f"{path.name} is not UTF-8 text"))
    except OSError as error:
        return Submission(str(path), error=("error", f"cannot read {path}: {error.strerror}"))
    if path.suffix == ".ipynb":
        return submission_from_notebook(text, str(path), function)
    return submission_from_text(text, str(path), function)


# -------------------------------------------------------------------------- function objects

_CO_FUTURE_ANNOTATIONS = 0x1000000


def _global_names(function) -> list[str]:
    """Names a function reads from its globals: in its code (nested code too), its decorators,
    default values and annotations."""
    names = []

    def visit(code):
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                names.append(instruction.argval)
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                visit(constant)

    visit(inspect.unwrap(function).__code__)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        definition = tree.body[0]
        outer = list(getattr(definition, "decorator_list", []))
        if isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
            outer += definition.args.defaults + [d for d in definition.args.kw_defaults if d is not None]
            outer += [a.annotation for a in definition.args.args + definition.args.kwonlyargs if a.annotation]
            outer += [definition.returns] if definition.returns else []
        names += [node.id for expression in outer for node in ast.walk(expression) if isinstance(node, ast.Name)]
    except (OSError, TypeError, SyntaxError, IndexError):
        pass
    return list(dict.fromkeys(names))


def _importable(obj) -> str | None:
    """``module:qualname`` when ``obj`` can be imported again by that name in a fresh process."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # noqa: BLE001 - not importable, then
        return None
    return f"{module}:{qualname}" if found is obj else None


def _expression(value, imports: list[str], depth: int = 0) -> str | None:
    """Source text that rebuilds a constant-like ``value`` (adding the imports it needs), or None.

    Constants are literals, dtypes, devices, modules, importable functions and classes, and
    tuples, lists and dicts of those (``(nn.Linear, nn.Conv2d)`` is a common one).
    """
    import torch

    if depth > 4:
        return None
    if isinstance(value, torch.dtype):
        imports.append("import torch")
        return str(value)
    if isinstance(value, torch.device):
        imports.append("import torch")
        return f"torch.device({str(value)!r})"
    if isinstance(value, types.ModuleType):
        imports.append(f"import {value.__name__}")
        return value.__name__
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
        where = _importable(value)
        if where is None:
            return None
        module, qualname = where.split(":")
        if module == "builtins":
            return qualname
        imports.append(f"import {module}")
        return f"{module}.{qualname}"
    if isinstance(value, (tuple, list)) and type(value) in (tuple, list):
        parts = [_expression(item, imports, depth + 1) for item in value]
        if any(part is None for part in parts):
            return None
        inner = ", ".join(parts) + ("," if isinstance(value, tuple) and len(parts) == 1 else "")
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if type(value) is dict:
        parts = [(_expression(k, imports, depth + 1), _expression(v, imports, depth + 1)) for k, v in value.items()]
        if any(k is None or v is None for k, v in parts):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in parts) + "}"
    if isinstance(value, (int, float, complex, str, bytes, bool, type(None), set, frozenset)):
        text = repr(value)
        try:
            if ast.literal_eval(text) == value:
                return text
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return None


def _source_of(obj) -> str:
    """The source of a function or class, also for a class defined in a notebook cell.

    On Python < 3.13 :func:`inspect.getsource` finds a class through its module's file, which a
    notebook's ``__main__`` does not have; the class's methods know their cell, so the class is
    looked up there.
    """
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        if not inspect.isclass(obj):
            raise
    for method in _functions_of(obj):
        code = method.__code__
        lines = linecache.getlines(code.co_filename)
        try:
            tree = ast.parse("".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == obj.__name__ \
                    and node.lineno <= code.co_firstlineno <= node.end_lineno:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                return textwrap.dedent("".join(lines[first - 1:node.end_lineno]))
    raise OSError(f"cannot find the source of class {obj.__name__}")


def _functions_of(obj) -> list:
    """The plain functions whose globals ``obj`` reads: itself, or a class's methods."""
    if inspect.isclass(obj):
        found = []
        for value in vars(obj).values():
            value = getattr(value, "__func__", value)
            if inspect.isfunction(value):
                found.append(value)
        return found
    return [inspect.unwrap(obj)]


def submission_from_function(function, name: str | None = None) -> Submission:
    """The source of ``function`` and of what it uses from its globals (see the module docstring).

    Raises:
        LthkitError: ``function`` is not a plain function, or its source cannot be found.
    """
    from ..errors import LthkitError

    if not inspect.isfunction(inspect.unwrap(function)) or function.__name__ == "<lambda>":
        raise LthkitError(f"check() needs a function defined with def, got {type(function).__name__} "
                          f"{getattr(function, '__name__', '')}".rstrip())
    label = name or f"{function.__name__} (notebook)"
    reference = _importable(function)
    if reference and "." not in reference.split(":")[1]:
        module, qualname = reference.split(":")
        # The grader notes the kit's own reference itself; any other module is worth a word.
        notes = () if module.startswith("lthkit.") else (f"graded {module}.{qualname}, imported from its module",)
        return Submission(label, (("import", f"from {module} import {qualname} as {function.__name__}\n"),), notes)
    if inspect.unwrap(function).__closure__:
        raise LthkitError(f"{function.__name__} is defined inside another function; define it at the top level of "
                          "a cell so the grader can send its source")
    header: list[str] = []
    bodies: list[tuple[str, str]] = []
    notes: list[str] = []
    seen: set[int] = set()

    def add_definition(obj, as_name: str) -> None:
        """A function or class: an import if it is importable, else its source (after what it uses)."""
        where = _importable(obj)
        if where and obj is not function and "." not in where.split(":")[1]:
            module, qualname = where.split(":")
            header.append(f"from {module} import {qualname} as {as_name}")
            return
        try:
            source = _source_of(obj)
        except (OSError, TypeError) as error:
            if obj is function:
                raise LthkitError(f"cannot find the source of {function.__name__} ({error}); define it in a notebook "
                                  "cell or a .py file") from None
            notes.append(f"{as_name} was not sent to the sandbox: its source cannot be found")
            return
        for inner in _functions_of(obj):
            if inner.__code__.co_flags & _CO_FUTURE_ANNOTATIONS:
                header.insert(0, "from __future__ import annotations")
            for global_name in _global_names(inner):
                if global_name in inner.__globals__:
                    add_global(inner.__globals__[global_name], global_name)
        # After its dependencies, so decorators and default values find them.
        bodies.append((f"{as_name} (cell)" if obj is function else f"{as_name} (helper)", source))

    def add_global(value, as_name: str) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, types.ModuleType):
            header.append(f"import {value.__name__}" + (f" as {as_name}" if value.__name__ != as_name else ""))
        elif inspect.isfunction(inspect.unwrap(value)) or inspect.isclass(value):
            add_definition(value, as_name)
        elif (expression := _expression(value, imports := [])) is not None:
            header.extend(imports)
            header.append(f"{as_name} = {expression}")
        elif not hasattr(builtins, as_name):
            notes.append(f"the global {as_name!r} (a {type(value).__name__}) was not sent to the sandbox: the "
                         "function gets a NameError if it uses it; pass what it needs as arguments")

    seen.add(id(function))
    add_definition(function, function.__name__)
    preamble = "\n".join(dict.fromkeys(header)) + "\n"
    return Submission(label, (("globals", preamble), *bodies), tuple(dict.fromkeys(notes)))
