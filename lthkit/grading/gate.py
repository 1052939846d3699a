"""What of lthkit a graded submission can reach: the sandbox's own small copy of the package.

The kit's library holds the answers of its katas (IMP needs magnitude masks, the stability study
needs the linear path and its barrier, the anatomy study SNIP and the sign reset), and so do the
grader's oracles and the reference solutions. None of that may be reachable from graded code, by
any door: an import under any name, ``importlib``, ``sys.modules``, attribute access on a package,
a function's ``__globals__``, or ``gc``. So the sandbox process never loads it at all:

* :func:`sandbox_tree` copies, once per grading process, only the modules the sandbox itself
  runs (the harness: :data:`HARNESS_ROOTS` and every kata's ``run`` module, with the lthkit
  modules they import) and the set-up helpers a submission may use (:data:`LEARNER_MODULES`),
  into a fresh read-only folder that any uid can read. The sandbox's ``PYTHONPATH`` starts there
  (bubblewrap binds that folder and not the checkout), so it also works where the checkout lives
  in a folder only its owner can enter.
* :func:`install_gate` (in the sandbox, before any submission code) puts a finder first on
  ``sys.meta_path``: every other ``lthkit`` module imports as a :class:`TripwireModule`, whose
  every name is a :class:`Tripwire`. Importing is harmless (a notebook's set-up imports still
  load); *calling* one records the name in :data:`TRIPPED` and raises ImportError with
  :data:`REFERENCE_MESSAGE`. The sandbox reports a submission that tripped one as ``reference``
  (0 points), whether or not it caught the error.

Deny by default: a module added to lthkit is a tripwire in the sandbox until it is listed here,
and ``tests/test_grading_doors.py`` calls every function of the copy on every kata's hidden
cases, so a listed module that computes an answer fails the tests.

Example:
    >>> tree = sandbox_tree()                                    # doctest: +SKIP
    >>> sorted(p.name for p in (tree / "lthkit").iterdir())[:3]  # doctest: +SKIP
    ['__init__.py', 'grading', 'models.py']
"""

from __future__ import annotations

import ast
import atexit
import functools
import importlib
import importlib.abc
import importlib.util
import os
import shutil
import stat
import sys
import tempfile
import types
from pathlib import Path

PACKAGE = "lthkit"
#: lthkit modules graded code may really use: the set-up helpers notebooks import to build models.
#: Each must compute no kata's answer (tests/test_grading_doors.py calls all they hold on every kata).
LEARNER_MODULES = ("lthkit.core.models",)
#: Where the sandbox process starts; the kata ``run`` modules are added to these.
HARNESS_ROOTS = ("lthkit.grading.sandbox", "lthkit.grading.gate")
#: The message of the ImportError a tripwire raises.
REFERENCE_MESSAGE = ("graded code cannot use the kit's library or its reference solutions (they hold the katas' "
                     "answers): write the function yourself")
#: The lthkit names graded code called, in order (the sandbox reports the submission as ``reference``).
TRIPPED: list[str] = []


# ---------------------------------------------------------------------------------- the copy

def package_root() -> Path:
    """The folder that holds the ``lthkit`` package (a checkout, or site-packages)."""
    return Path(__file__).resolve().parents[2]


def module_file(name: str, root: Path | None = None) -> Path | None:
    """The source file of lthkit module ``name`` under ``root`` (a package's ``__init__.py``), or None.

    Without ``root``, a kata folder added to the katas package's ``__path__`` (a course's own katas) counts too.
    """
    candidates = [(root or package_root()).joinpath(*name.split("."))]
    katas = "lthkit.grading.katas."
    if root is None and name.startswith(katas):
        from .katas import folders

        candidates += [folder.joinpath(*name[len(katas):].split(".")) for folder in folders()[1:]]
    for base in candidates:
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


def _imported(name: str, path: Path) -> set[str]:
    """The lthkit modules that module ``name`` (at ``path``) imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if (target == PACKAGE or target.startswith(PACKAGE + ".")) and module_file(target):
                found.add(target)
    return found


def kata_run_modules() -> list[str]:
    """The sandbox side of every kata folder (``lthkit.grading.katas.<name>.run``)."""
    from .katas import kata_names

    return [f"lthkit.grading.katas.{name}.run" for name in kata_names()]


def sandbox_modules() -> list[str]:
    """Every lthkit module the sandbox's copy holds: the harness, the kata runs, the learner modules,
    everything they import, and the packages above each."""
    todo = [*HARNESS_ROOTS, *kata_run_modules(), *LEARNER_MODULES]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # the packages above it
            parent = ".".join(parts[:depth])
            if parent not in seen and module_file(parent):
                seen.add(parent)
                todo.append(parent)
        path = module_file(name)
        if path is None:
            raise FileNotFoundError(f"the sandbox needs {name}, which has no source file under {package_root()}")
        todo.extend(sorted(_imported(name, path) - seen))
    return sorted(seen)


def _reachable_by_all(path: Path) -> bool:
    """Whether every uid can walk into ``path`` (it and each folder above it are o+x)."""
    path = path.resolve()
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in [path, *path.parents])


def _base_folder() -> Path:
    """A temporary folder every uid can walk into, for the copy."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/dev/shm", "/var/tmp"):
        if os.path.isdir(candidate) and _reachable_by_all(Path(candidate)):
            return Path(candidate)
    from ..errors import LthkitError

    raise LthkitError(f"no temporary folder that every user can enter was found (tried {tempfile.gettempdir()}, "
                      "/tmp, /dev/shm, /var/tmp): the sandbox's unprivileged user could not read its copy of lthkit; "
                      "set TMPDIR to a folder with mode 1777 such as /tmp")


@functools.lru_cache(maxsize=1)
def sandbox_tree() -> Path:
    """The sandbox's read-only copy of lthkit (:func:`sandbox_modules`), made once per process.

    Every uid can read it: the fallback's fresh uid imports it wherever the checkout lives (a
    folder only its owner can enter included), and bubblewrap binds it instead of the checkout.

    Raises:
        LthkitError: no temporary folder that every uid can enter exists.
    """
    tree = Path(tempfile.mkdtemp(prefix="lthkit-sandbox-", dir=_base_folder()))
    atexit.register(shutil.rmtree, tree, True)
    for name in sandbox_modules():
        source = module_file(name)
        target = tree.joinpath(*name.split(".")) / "__init__.py" if source.name == "__init__.py" else \
            tree.joinpath(*name.split(".")).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o444)
    for folder in [tree, *(path for path in tree.rglob("*") if path.is_dir())]:
        folder.chmod(0o755)
    return tree


# -------------------------------------------------------------------------- inside the sandbox

class Tripwire:
    """A name of lthkit that graded code cannot use: calling it trips (see :func:`trip`)."""

    __slots__ = ("_lthkit_name",)

    def __init__(self, name: str):
        object.__setattr__(self, "_lthkit_name", name)

    def __getattr__(self, attribute: str):
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        return Tripwire(f"{self._lthkit_name}.{attribute}")

    def __call__(self, *args, **kwargs):
        trip(self._lthkit_name)

    def __repr__(self) -> str:
        return f"<{self._lthkit_name}: not available to graded code>"


class TripwireModule(types.ModuleType):
    """An lthkit module outside the sandbox's copy: it imports, and every name in it is a :class:`Tripwire`."""

    def __getattr__(self, attribute: str):
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        return Tripwire(f"{self.__name__}.{attribute}")


def trip(name: str):
    """Record that graded code called ``name`` and refuse: ImportError with :data:`REFERENCE_MESSAGE`."""
    TRIPPED.append(name)
    raise ImportError(f"{name}: {REFERENCE_MESSAGE}", name=name)


class _TripwireLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return TripwireModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []  # a package: its submodules come to the gate too


class _Gate(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: lthkit modules of the copy load from the copy, every other one is a tripwire."""

    def __init__(self, tree: Path):
        self.tree = tree

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PACKAGE and not fullname.startswith(PACKAGE + "."):
            return None
        source = module_file(fullname, self.tree)
        if source is None:
            return importlib.util.spec_from_loader(fullname, _TripwireLoader(), is_package=True)
        locations = [str(source.parent)] if source.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(fullname, source, submodule_search_locations=locations)


def _package_getattr(package: types.ModuleType):
    """A module ``__getattr__`` for a package of the copy: ``lthkit.studies.stability`` imports (as a tripwire)."""
    previous = package.__dict__.get("__getattr__")

    def __getattr__(attribute: str):
        if previous is not None:
            try:
                return previous(attribute)
            except AttributeError:
                pass
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        return importlib.import_module(f"{package.__name__}.{attribute}")

    return __getattr__


def install_gate() -> Path:
    """Put the gate first on ``sys.meta_path`` (in the sandbox, before any submission code runs).

    Returns:
        The copy this process's lthkit was loaded from.
    """
    tree = Path(sys.modules[PACKAGE].__file__).resolve().parents[1]
    sys.meta_path.insert(0, _Gate(tree))
    for name, module in list(sys.modules.items()):
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and hasattr(module, "__path__") \
                and not isinstance(module, TripwireModule):
            module.__getattr__ = _package_getattr(module)
    return tree
