"""Feedback for each learner: a self-contained HTML page and the same in Markdown.

Built from the grade records (``autograded/<learner>/<assignment>/grades.json``): the reports'
data, check by check (name, status, points, message, the hint for the diagnosed mistake), never
their text. Each kata shows every check with its points and, for a check that did not pass,
what went wrong on which hidden model and the hint; a hand-in that could not be graded says why
and what to do about it; the page ends with the sandbox the code ran in (the isolation and the
limits) and when it was graded.

The HTML needs nothing else: inline styles, no script, no external link, font or image, and a
Content-Security-Policy that would block any of them; every string that comes from the
submission or the grader is escaped (in Markdown too: HTML special characters become entities
and Markdown's are backslash-escaped).

Example:
    >>> print(markdown_escape("a <b> | `c` *d*"))
    a &lt;b&gt; \\| \\`c\\` \\*d\\*
"""

from __future__ import annotations

import html
import re

from ..grading.report import isolation_summary
from .layout import ClassFolder

#: What a learner can do about a hand-in that could not be graded, by the report's status.
STATUS_ADVICE = {
    "syntax": "Python could not read your code: fix the line the message names (run the cell to see the error).",
    "import": "An import failed in the sandbox: import only torch, the standard library and what the notebook "
              "imports, and check the spelling.",
    "reference": "Your code calls lthkit's library, which holds the answers: write the function yourself.",
    "timeout": "Your function did not finish in time: look for a loop that never ends, or work that grows "
               "with the model's size more than it should.",
    "memory": "Your function used more memory than the sandbox allows: avoid copies of whole models or huge "
              "temporary tensors.",
    "crash": "The process running your code stopped (it exited or was killed): do not call exit() or os._exit().",
    "missing": "The function was not found in what you handed in, or it still raises NotImplementedError: hand "
               "in the notebook (or a .py file) with the function written where it says # YOUR CODE HERE, under "
               "its own name.",
    "error": "Your hand-in could not be read or run: see the message.",
    "setup": "The grader itself failed to start, which is not your doing: your instructor will grade it again.",
}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#fff;margin:0}
main{max-width:62rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:1.8rem 0 .4rem}
.total{font-size:1.15rem;margin:.2rem 0 1rem}.muted{color:#59636e}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border-bottom:1px solid #d1d9e0;padding:.45rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.points{white-space:nowrap;text-align:right}
.status{font-weight:700;white-space:nowrap}.pass .status{color:#1a7f37}.fail .status{color:#cf222e}
.error .status,.other .status{color:#9a6700}.hint{margin-top:.35rem}.hint b{color:#0969da}
.message{overflow-wrap:anywhere}
.ungraded{border-left:4px solid #9a6700;background:#fff8c5;padding:.6rem .8rem;margin:.5rem 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;background:#f6f8fa;padding:0 .2em}
footer{margin-top:2rem;border-top:1px solid #d1d9e0;padding-top:.8rem;font-size:.9rem;color:#59636e}
"""
_STATUS_CLASS = {"pass": "pass", "fail": "fail", "error": "error"}


def status_label(status: str) -> str:
    """A check's or report's status as the learner reads it (``not_run`` → ``NOT RUN``)."""
    return str(status).replace("_", " ").upper()


def _points(value) -> str:
    return f"{float(value):g}"


def _limits(record: dict) -> dict:
    return (record.get("key") or {}).get("limits") or {}


def sandbox_line(record: dict) -> str:
    """One line: what the learner's code ran in (the isolation and the limits), without the instructor's details."""
    used = sorted({isolation_summary(report.get("sandbox", "")) for report in record["reports"]
                   if report.get("sandbox")})
    limits = _limits(record)
    bounds = (f"time limit {_points(limits['timeout'])} s and memory limit {limits['memory_mb']} MiB per graded "
              f"function") if limits else ""
    if not used:
        return "None of your code ran, so no sandbox was started" + (f" (its limits: {bounds})." if bounds else ".")
    return (f"Your code ran in a sandbox of its own, without network (isolation: {', '.join(used)}"
            + (f"; {bounds}" if bounds else "") + ").")


def _report_rows(report: dict):
    for check in report["checks"]:
        status = check["status"]
        if check.get("required", True) is False and status == "fail":
            # An extra the kata's text does not ask for (worth 0 points): a full-marks hand-in shows no FAIL.
            yield check, "extra: not done", "other"
            continue
        yield check, status, _STATUS_CLASS.get(status, "other")


def feedback_html(record: dict) -> str:
    """The feedback page of one learner's grade record (a self-contained HTML document)."""
    escape = html.escape
    title = f"{record['assignment']}: feedback for {record['name']}"
    body = [f"<header><h1>{escape(title)}</h1>",
            f"<p class='total'><b>{_points(record['points'])} / {_points(record['max_points'])} points</b></p>",
            "<p class='muted'>Every graded function was run on hidden models you never saw. For each check: what it "
            "looks at, its points, and for one that did not pass, what went wrong and a hint.</p></header>"]
    for report in record["reports"]:
        anchor = re.sub(r"[^A-Za-z0-9_-]", "-", report["kata"])
        body.append(f"<section class='kata' id='kata-{anchor}'><h2><code>{escape(report['kata'])}</code>: "
                    f"{_points(report['earned'])} / {_points(report['points'])} points</h2>")
        if report.get("file"):
            body.append(f"<p class='muted'>graded file: <code>{escape(report['file'])}</code></p>")
        if report["status"] != "graded":
            advice = STATUS_ADVICE.get(report["status"], "")
            body.append(f"<div class='ungraded' role='alert'><p><b>{escape(status_label(report['status']))}</b>: "
                        f"<span class='message'>{escape(report['message'])}</span></p>"
                        + (f"<p>{escape(advice)}</p>" if advice else "") + "</div>")
        else:
            if report.get("cause"):  # the checks' messages point here ("see the cause above"): said once
                body.append(f"<p class='fail' role='alert'><b>cause:</b> "
                            f"<span class='message'>{escape(report['cause'])}</span></p>")
            rows = []
            for check, status, css in _report_rows(report):
                detail = ""
                if status != "pass":
                    detail = f"<div class='message'>{escape(check.get('message', ''))}</div>"
                    if check.get("hint"):
                        detail += f"<div class='hint'><b>Hint:</b> {escape(check['hint'])}</div>"
                rows.append(f"<tr class='{css}'><td>{escape(check['title'])}</td>"
                            f"<td class='status'>{escape(status_label(status))}</td>"
                            f"<td class='points'>{_points(check['score'])} / {_points(check['max_score'])}</td>"
                            f"<td>{detail}</td></tr>")
            body.append("<table><thead><tr><th scope='col'>check</th><th scope='col'>result</th>"
                        "<th scope='col'>points</th><th scope='col'>what went wrong, and a hint</th></tr></thead>"
                        f"<tbody>{''.join(rows)}</tbody></table>")
            if report["score"] != report["earned"] or report["max_score"] != report["points"]:
                body.append(f"<p class='muted'>{_points(report['score'])} of the checks' {_points(report['max_score'])}"
                            f" points, worth {_points(report['earned'])} of {_points(report['points'])} in the "
                            f"gradebook.</p>")
        for note in report.get("notes", []):
            body.append(f"<p class='muted'>note: {escape(note)}</p>")
        body.append("</section>")
    body.append(f"<footer><p>{escape(sandbox_line(record))}</p><p>Graded {escape(record['graded_at'])} by lthkit "
                f"{escape(record['lthkit_version'])}.</p></footer>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body><main>{''.join(body)}</main></body>"
            "</html>\n")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def markdown_escape(text) -> str:
    """Text as Markdown that shows it literally: one line, HTML entities for ``& < >``, Markdown's marks escaped."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def feedback_markdown(record: dict) -> str:
    """The same feedback as :func:`feedback_html`, in Markdown."""
    lines = [f"# {markdown_escape(record['assignment'])}: feedback for {markdown_escape(record['name'])}", "",
             f"**{_points(record['points'])} / {_points(record['max_points'])} points**", ""]
    for report in record["reports"]:
        lines += [f"## {markdown_escape(report['kata'])}: {_points(report['earned'])} / {_points(report['points'])} "
                  f"points", ""]
        if report.get("file"):
            lines += [f"Graded file: {markdown_escape(report['file'])}", ""]
        if report["status"] != "graded":
            lines += [f"**{status_label(report['status'])}**: {markdown_escape(report['message'])}", ""]
            advice = STATUS_ADVICE.get(report["status"])
            if advice:
                lines += [markdown_escape(advice), ""]
        else:
            if report.get("cause"):
                lines += [f"**cause:** {markdown_escape(report['cause'])}", ""]
            lines += ["| check | result | points |", "| --- | --- | --- |"]
            for check, status, _ in _report_rows(report):
                lines.append(f"| {markdown_escape(check['title'])} | {status_label(status)} | "
                             f"{_points(check['score'])} / {_points(check['max_score'])} |")
            lines.append("")
            wrong = [(check, status) for check, status, _ in _report_rows(report) if status != "pass"]
            if wrong:
                lines += ["What went wrong:", ""]
                for check, status in wrong:
                    lines.append(f"- **{markdown_escape(check['title'])}** ({status_label(status)}): "
                                 f"{markdown_escape(check.get('message', ''))}")
                    if check.get("hint"):
                        lines.append(f"  *Hint:* {markdown_escape(check['hint'])}")
                lines.append("")
        lines += [f"Note: {markdown_escape(note)}" for note in report.get("notes", [])]
        if report.get("notes"):
            lines.append("")
    lines += ["---", "", markdown_escape(sandbox_line(record)), "",
              f"Graded {markdown_escape(record['graded_at'])} by lthkit {markdown_escape(record['lthkit_version'])}.",
              ""]
    return "\n".join(lines)


def write_feedback(folder: ClassFolder) -> list:
    """Write ``feedback/<learner>/<assignment>/feedback.html`` and ``feedback.md`` for every graded learner.

    Returns:
        The paths written.

    Raises:
        LthkitError: nothing is graded yet.
    """
    from ..core.files import atomic_write_files

    files = {}
    for learner, record in folder.grades().items():
        files[folder.feedback(learner) / "feedback.html"] = feedback_html(record).encode()
        files[folder.feedback(learner) / "feedback.md"] = feedback_markdown(record).encode()
    return atomic_write_files(files)
