"""Pairs of hand-ins whose code is suspiciously alike, for a human to look at. It never changes a grade.

For each graded kata, every two learners' code is compared with copydetect
(https://github.com/blingenf/copydetect: the winnowing fingerprints of Schleimer, Wilkerson and
Aiken's MOSS, on Pygments tokens):

* **what is compared**: the kata's function and the helper functions and classes it calls (found
  through the names it uses), from the definitions the grader runs: not the imports, not the rest
  of a notebook;
* **names and comments normalized away**: copydetect replaces every variable, attribute,
  function and class name by one letter and drops comments and white space, so renaming
  everything and rewording the comments changes nothing;
* **the starter code removed**: the fingerprints of the released learner notebook's code (the
  function's stub, the notebook's helpers) are copydetect's boilerplate, which no pair can share.

A pair is *flagged* when the code they share covers at least ``threshold`` of either learner's
code (copydetect's similarity) and is at least ``min_shared`` normalized characters long (so that
the few obvious lines of a short kata are never evidence). ``CLASS/reports/<assignment>/similarity/``
gets ``index.html`` (the flagged pairs, and the groups they form), a page per flagged pair with
both learners' code side by side and the shared regions marked, and ``similarity.csv`` with
every pair that shares anything. Python salts its string hash per process, so the k-grams are
hashed with BLAKE2 instead (the same report from the same hand-ins).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import html
import io
from dataclasses import dataclass
from pathlib import Path

from ..core.files import csv_text
from ..errors import LthkitError
from ..grading.source import load_submission
from .autograde import file_for_kata
from .layout import ClassFolder

#: copydetect's noise threshold: fingerprints are hashes of this many characters of normalized code.
K = 25
#: Defaults of the flagging rule (see the module's docstring).
THRESHOLD = 0.5
MIN_SHARED = 60
#: Side-by-side pages written at most (the CSV lists every pair).
MAX_PAGES = 200
CSV_COLUMNS = ("kata", "learner_a", "learner_b", "similarity_a", "similarity_b", "shared", "flagged")


@dataclass(frozen=True)
class Pair:
    """Two learners' code for one kata, compared.

    Attributes:
        kata: the kata.
        learner_a, learner_b: the learners (a < b).
        similarity_a, similarity_b: the share of each one's normalized code that the other has too.
        shared: normalized characters they share.
        flagged: whether it meets the flagging rule.
    """

    kata: str
    learner_a: str
    learner_b: str
    similarity_a: float
    similarity_b: float
    shared: int
    flagged: bool

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)


def function_code(text: str, function: str) -> str | None:
    """The source of ``function`` and of the top-level functions and classes it uses (transitively), in file order.

    Args:
        text: definitions (a module's source).
        function: the function's name.

    Returns:
        The code, or None when ``text`` does not define ``function`` (or does not parse).

    Example:
        >>> print(function_code("import os\\ndef helper():\\n    return 1\\ndef f():\\n    return helper()\\n", "f"))
        def helper():
            return 1
        def f():
            return helper()
    """
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    definitions = {node.name: node for node in tree.body
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if function not in definitions:
        return None
    needed, todo = set(), [function]
    while todo:
        name = todo.pop()
        if name in needed or name not in definitions:
            continue
        needed.add(name)
        todo += [node.id for node in ast.walk(definitions[name]) if isinstance(node, ast.Name)]
    lines = text.splitlines()
    pieces = []
    for name, node in definitions.items():
        if name in needed:
            first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            pieces.append("\n".join(lines[first - 1:node.end_lineno]))
    return "\n".join(pieces)


def submission_code(path: Path, kata: str) -> str | None:
    """A hand-in's code for ``kata``: its function and helpers, from the definitions the grader runs."""
    submission = load_submission(path, kata)
    if submission.error:
        return None
    return function_code("\n\n".join(source for _, source in submission.chunks), kata)


def starter_code(folder: ClassFolder, notebook: str) -> str:
    """The code of a released learner notebook (every code cell, magics left out): the starter."""
    import nbformat

    path = folder.release / notebook
    if not path.is_file():
        raise LthkitError(f"{path}: the released notebook is missing (release the assignment again)")
    cells = nbformat.read(path, as_version=4).cells
    return "\n\n".join("\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
                       for cell in cells if cell.cell_type == "code")


@contextlib.contextmanager
def _stable_hashes():
    """copydetect's k-gram hashes from BLAKE2 instead of Python's salted ``hash``, inside the block."""
    import copydetect.utils
    import numpy

    original = copydetect.utils.hashed_kgrams

    def hashed_kgrams(string, k):
        return numpy.array([int.from_bytes(hashlib.blake2b(string[offset:offset + k].encode(), digest_size=8).digest(),
                                           "little", signed=True) for offset in range(len(string) - k + 1)],
                           dtype=numpy.int64)

    copydetect.utils.hashed_kgrams = hashed_kgrams
    try:
        yield
    finally:
        copydetect.utils.hashed_kgrams = original


def _fingerprint(name: str, code: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint(name, K, 1, boilerplate=boilerplate, fp=io.StringIO(code), language="python")


def compare_codes(codes: dict[str, str], starter: str, kata: str, threshold: float = THRESHOLD,
                  min_shared: int = MIN_SHARED) -> tuple[list[Pair], dict]:
    """Compare every two of ``{learner: code}``, the ``starter``'s fingerprints removed.

    Returns:
        ``(pairs that share anything, {(a, b): (slices of a, slices of b)} of the flagged ones)``.
    """
    import numpy
    from copydetect import compare_files

    with _stable_hashes():
        boilerplate = numpy.unique(numpy.array(sorted(_fingerprint("starter.py", starter, []).hashes),
                                               dtype=numpy.int64))
        prints = {learner: _fingerprint(f"{learner}.py", code, boilerplate) for learner, code in sorted(codes.items())}
    pairs, regions = [], {}
    learners = list(prints)
    for index, a in enumerate(learners):
        for b in learners[index + 1:]:
            shared, (similarity_a, similarity_b), slices = compare_files(prints[a], prints[b])
            if not shared:
                continue
            similarity_a, similarity_b = min(1.0, float(similarity_a)), min(1.0, float(similarity_b))
            flagged = max(similarity_a, similarity_b) >= threshold and int(shared) >= min_shared
            pairs.append(Pair(kata, a, b, round(similarity_a, 4), round(similarity_b, 4), int(shared), flagged))
            if flagged:
                regions[(a, b)] = slices
    return pairs, regions


def groups(pairs) -> list[list[str]]:
    """The learners linked by flagged pairs, as groups (connected components), largest first."""
    parent: dict[str, str] = {}

    def root(name):
        while parent.setdefault(name, name) != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for pair in pairs:
        if pair.flagged:
            parent[root(pair.learner_a)] = root(pair.learner_b)
    found: dict[str, list[str]] = {}
    for name in parent:
        found.setdefault(root(name), []).append(name)
    return sorted((sorted(members) for members in found.values() if len(members) > 1), key=lambda g: (-len(g), g))


def class_codes(folder: ClassFolder) -> dict[str, dict[str, str]]:
    """``{kata: {learner: code}}``: every learner's code for every kata of the release (as graded)."""
    manifest, roster = folder.manifest(), folder.roster()
    codes = {entry["name"]: {} for entry in manifest["katas"]}
    for learner, record in roster["learners"].items():
        place = folder.submitted(learner)
        files = sorted(place / item["name"] for item in record["files"] if (place / item["name"]).is_file())
        for entry in manifest["katas"]:
            path, _ = file_for_kata(files, entry["name"], entry["notebook"]) if files else (None, "")
            code = submission_code(path, entry["name"]) if path else None
            if code:
                codes[entry["name"]][learner] = code
    return codes


_CSS = """
body{font-family:system-ui,sans-serif;color:#1f2328;margin:0}main{max-width:90rem;margin:0 auto;padding:1.2rem}
table{border-collapse:collapse}th,td{border-bottom:1px solid #d1d9e0;padding:.3rem .5rem;text-align:left}
th{background:#f6f8fa}.side{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1rem}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:.85rem;line-height:1.35}
mark{background:#ffd8b5}.muted{color:#59636e}.note{border-left:4px solid #0969da;padding:.4rem .8rem;background:#ddf4ff}
"""


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>\n")


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _pair_page(pair: Pair, codes: dict[str, str], slices) -> str:
    from copydetect.utils import highlight_overlap

    columns = []
    for learner, code, region, share in ((pair.learner_a, codes[pair.learner_a], slices[0], pair.similarity_a),
                                         (pair.learner_b, codes[pair.learner_b], slices[1], pair.similarity_b)):
        marked, _ = highlight_overlap(code, region, "<mark>", "</mark>", escape_html=True)
        columns.append(f"<div><h2>{html.escape(learner)}</h2><p class='muted'>{_percent(share)} of this code is "
                       f"in the other's</p><pre><code>{marked}</code></pre></div>")
    title = f"{pair.kata}: {pair.learner_a} and {pair.learner_b}"
    return _page(title, f"<h1>{html.escape(title)}</h1><p class='note'>Flagged for a human to look at: the marked "
                        f"regions are the same code once names, comments and the starter code are set aside. "
                        f"Similar code is not proof of copying, and this never changes a grade.</p>"
                        f"<p><a href='../../index.html'>all flagged pairs</a></p><div class='side'>{''.join(columns)}"
                        f"</div>")


def pair_file(pair: Pair) -> str:
    """The side-by-side page of a pair, relative to the similarity folder."""
    return f"pairs/{pair.kata}/{pair.learner_a}--{pair.learner_b}.html"


def _index(folder: ClassFolder, results: dict, threshold: float, min_shared: int, pages: set) -> str:
    from copydetect import __version__ as copydetect_version

    body = [f"<h1>{html.escape(folder.assignment)}: similar hand-ins</h1>",
            "<p class='note'>For a human to look at: a flagged pair shares code once names, comments and the "
            "starter code are set aside. Similar code is not proof of copying (a short kata has few ways to be "
            "written), and this report never changes a grade.</p>",
            f"<p class='muted'>copydetect {html.escape(copydetect_version)}, fingerprints of {K} normalized "
            f"characters; a pair is flagged when the code it shares covers at least {_percent(threshold)} of either "
            f"learner's code and is at least {min_shared} normalized characters long. Compared: each kata's "
            f"function and the helpers it calls, as graded.</p>"]
    for kata, (codes, pairs) in results.items():
        flagged = sorted((pair for pair in pairs if pair.flagged), key=lambda p: (-p.similarity, p.learner_a))
        body.append(f"<h2>{html.escape(kata)}</h2><p>{len(codes)} learners compared, {len(flagged)} pairs flagged."
                    "</p>")
        found = groups(pairs)
        if found:
            body.append("<p>Groups linked by flagged pairs:</p><ul>" + "".join(
                f"<li>{len(members)} learners: {html.escape(', '.join(members))}</li>" for members in found) + "</ul>")
        if flagged:
            rows = []
            for pair in flagged:
                link = pair_file(pair)
                name = (f"<a href='{html.escape(link)}'>side by side</a>" if link in pages else
                        "<span class='muted'>(page not written: see similarity.csv)</span>")
                rows.append(f"<tr><td>{html.escape(pair.learner_a)}</td><td>{html.escape(pair.learner_b)}</td>"
                            f"<td>{_percent(pair.similarity_a)}</td><td>{_percent(pair.similarity_b)}</td>"
                            f"<td>{pair.shared}</td><td>{name}</td></tr>")
            body.append("<table><thead><tr><th>learner</th><th>learner</th><th>of the first's code</th>"
                        "<th>of the second's code</th><th>shared characters</th><th></th></tr></thead><tbody>"
                        + "".join(rows) + "</tbody></table>")
    return _page(f"{folder.assignment}: similar hand-ins", "".join(body))


def similarity_report(folder: ClassFolder, threshold: float = THRESHOLD, min_shared: int = MIN_SHARED,
                      max_pages: int = MAX_PAGES) -> dict[str, list[Pair]]:
    """Compare the class's hand-ins kata by kata and write ``reports/<assignment>/similarity/``.

    Args:
        folder: the class folder of the assignment (released and collected; grading is not needed).
        threshold: the share of either learner's code a flagged pair must have in common, in (0, 1].
        min_shared: the normalized characters a flagged pair must share at least.
        max_pages: side-by-side pages written at most (the most similar pairs first).

    Returns:
        ``{kata: pairs that share anything}``.

    Raises:
        LthkitError: an out-of-range argument, or the assignment is not released or collected.
    """
    if not 0 < threshold <= 1:
        raise LthkitError(f"threshold must be in (0, 1], got {threshold}")
    if min_shared < K:
        raise LthkitError(f"min_shared must be at least {K} (one fingerprint), got {min_shared}")
    manifest = folder.manifest()
    notebooks = {entry["name"]: entry["notebook"] for entry in manifest["katas"]}
    results = {}
    for kata, codes in class_codes(folder).items():
        pairs, regions = compare_codes(codes, starter_code(folder, notebooks[kata]), kata, threshold, min_shared)
        results[kata] = (codes, pairs, regions)
    files, pages = {}, set()
    flagged = sorted(((pair, kata) for kata, (_, pairs, _) in results.items() for pair in pairs if pair.flagged),
                     key=lambda item: (-item[0].similarity, item[0].kata, item[0].learner_a, item[0].learner_b))
    for pair, kata in flagged[:max_pages]:
        codes, _, regions = results[kata]
        files[folder.similarity / pair_file(pair)] = _pair_page(pair, codes, regions[(pair.learner_a,
                                                                                       pair.learner_b)]).encode()
        pages.add(pair_file(pair))
    files[folder.similarity / "index.html"] = _index(
        folder, {kata: (codes, pairs) for kata, (codes, pairs, _) in results.items()}, threshold, min_shared,
        pages).encode()
    rows = [{"kata": pair.kata, "learner_a": pair.learner_a, "learner_b": pair.learner_b,
             "similarity_a": f"{pair.similarity_a:.4f}", "similarity_b": f"{pair.similarity_b:.4f}",
             "shared": pair.shared, "flagged": int(pair.flagged)}
            for _, pairs, _ in results.values() for pair in sorted(pairs, key=lambda p: (-p.similarity, p.learner_a))]
    files[folder.similarity / "similarity.csv"] = csv_text(rows, CSV_COLUMNS).encode()
    from ..core.files import atomic_write_files

    atomic_write_files(files)
    for path in folder.similarity.rglob("*.html"):  # pages of an earlier run whose pair is no longer flagged
        if path not in files:
            path.unlink()
    return {kata: pairs for kata, (_, pairs, _) in results.items()}
