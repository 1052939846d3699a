"""The course's glossary (``docs/glossary.md``) where a learner needs it: in the dashboard's help.

One file holds the words (weights remaining, P_m, matching, rewinding to θ₀ / θ_k, error barrier,
...); the notebooks link to it and the dashboard shows it rendered, so the words a learner reads on
the controls and the plots are the ones defined there.

Example:
    >>> "matching" in glossary_terms()
    True
"""

from __future__ import annotations

import functools
import re

from ..core.data import REPO_ROOT

#: The one glossary of the course.
GLOSSARY_MD = REPO_ROOT / "docs" / "glossary.md"


@functools.lru_cache(maxsize=1)
def glossary_markdown() -> str:
    """The glossary's Markdown text ("" when the checkout has no ``docs/``, e.g. an installed wheel)."""
    try:
        return GLOSSARY_MD.read_text(encoding="utf-8")
    except OSError:
        return ""


def glossary_terms() -> list[str]:
    """The terms the glossary defines, lower case, in order (each table row's bold words).

    Example:
        >>> glossary_terms()[:2]
        ['mask', 'weights remaining']
    """
    terms = []
    for line in glossary_markdown().splitlines():
        if line.startswith("| ") and not line.startswith(("| term", "| ---")):
            first_cell = line[2:].split(" | ", 1)[0]
            terms += [term.lower() for term in re.findall(r"\*\*(.+?)\*\*", first_cell)]
    return [term.strip("*") for term in terms]


def glossary_html() -> str:
    """The glossary as HTML for a widget (its tables, headings and links), or a one-line pointer if absent."""
    text = glossary_markdown()
    if not text:
        return "<p>The glossary is docs/glossary.md in the lthkit repository.</p>"
    import mistune  # nbconvert's Markdown renderer, installed with JupyterLab; only the help needs it

    body = mistune.create_markdown(plugins=["table"], escape=True)(text)
    return f"<div class='lthkit-glossary' style='max-height:420px;overflow-y:auto;font-size:0.92em'>{body}</div>"
