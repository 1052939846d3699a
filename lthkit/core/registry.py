"""An ordered registry of named things (branches, scorers), read by every edge that lists them.

The things themselves are listed where they are defined (a family module's tuple), and one
registry object gathers them; the edges (a config's check, the command line's choices, figures'
labels, the dashboard) read the registry, so adding a thing is one entry in one place. A test or a
notebook adds one of its own for a block with :meth:`Registry.temporarily`.

Example:
    >>> from collections import namedtuple
    >>> Thing = namedtuple("Thing", "name label")
    >>> things = Registry([Thing("a", "first")], kind="thing")
    >>> with things.temporarily(Thing("b", "second")):
    ...     list(things)
    ['a', 'b']
    >>> list(things), things.require("a").label
    (['a'], 'first')
    >>> things.require("z")
    Traceback (most recent call last):
    ...
    lthkit.LthkitError: unknown thing 'z'; choose one of a
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

from ..errors import LthkitError


class Registry(Mapping):
    """Things with a ``name`` attribute, in the order they were added.

    Args:
        items: the things.
        kind: what one is called in messages (``"control"``, ``"mask criterion"``).
    """

    def __init__(self, items=(), *, kind: str = "entry"):
        self.kind = kind
        self._items: dict = {}
        for item in items:
            self.add(item)

    def __getitem__(self, name: str):
        return self._items[name]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._items)})"

    def add(self, item) -> None:
        """Register ``item`` under its name.

        Raises:
            LthkitError: the name is taken.
        """
        if item.name in self._items:
            raise LthkitError(f"a {self.kind} named {item.name!r} is registered already")
        self._items[item.name] = item

    def require(self, name):
        """The item ``name``.

        Raises:
            LthkitError: no such item, with the names there are.
        """
        if not isinstance(name, str) or name not in self._items:
            raise LthkitError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._items)}")
        return self._items[name]

    @contextmanager
    def temporarily(self, *items):
        """Register ``items`` for the block only (a test, or a notebook trying out one of its own)."""
        added = []
        try:
            for item in items:
                self.add(item)
                added.append(item)
            yield self
        finally:
            for item in added:
                self._items.pop(item.name, None)
