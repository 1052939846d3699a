#!/usr/bin/env python
"""The numbers the paper rerun's prose states, computed from ``results/paper-lenet300/``, and the prose filled with them.

The rerun of the paper protocol with pixels in [0, 1] (issue 14) is reported in two places: its
report ``results/paper-lenet300/README.md`` (from ``scripts/paper_report_template.md``) and notebook
5's prose (numbers tagged ``<!--ref NAME-->``, facts of ``scripts/notebook_references.py``). Every
number in them is a ``{{name}}`` of :func:`numbers` or a fact, so they follow the committed files; the
sentences around the numbers assume a few things about them (every claim matches, the ticket ends
below dense, ...), and :func:`assumptions` checks each one: if one fails, the prose must be
rewritten by hand. The repository's README states no measured number: it links to the report.

Usage:
    python scripts/paper_rerun_text.py numbers                 # print every number and check the assumptions
    python scripts/paper_rerun_text.py fill                    # write the report's prose and notebook 5's tagged numbers
    ... --allow-partial                                        # fewer than 5 trials (a dry run): failed assumptions only warn

The landing itself (moving the standardized run, merging the parts) was done once by
``scripts/land_paper_rerun.sh``, removed afterwards; it is in the git history (commit 7d68000).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from lthkit.reporting.summaries import read_summary_csv  # noqa: E402
from lthkit.reporting.claims import _unit_suffix  # noqa: E402
from lthkit.reporting.stats import count_verdicts  # noqa: E402
from lthkit.studies.paper import noise_floors, paper_claims  # noqa: E402

RESULTS = ROOT / "results" / "paper-lenet300"
COMPARISON = RESULTS / "standardized"
L2 = RESULTS / "l2-inputs"
REPORT_TEMPLATE = ROOT / "scripts" / "paper_report_template.md"
NOTEBOOK = ROOT / "notebooks" / "05_paper_results.ipynb"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
TAG = re.compile(r"(\d[\d.,]*%?)<!--ref (\w+)-->")  # as tests/test_notebook_references.py reads them

_spec = importlib.util.spec_from_file_location("notebook_references", ROOT / "scripts" / "notebook_references.py")
references = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(references)


def _facts() -> dict[str, str]:
    """Notebook 5's facts (main run unprefixed, the standardized comparison ``cmp_``), as facts.json holds them."""
    return references.FACTS["05_paper_results"](references.REFERENCE_ROOT / "05_paper_results")


def _seconds(value: float) -> str:
    return f"{value:,.0f}"


def numbers() -> dict[str, str]:
    """Every number the rerun's prose states, as the prose writes it."""
    rows = read_summary_csv(RESULTS / "summary.csv")
    info = json.loads((RESULTS / "run_info.json").read_text())
    values = dict(_facts())
    claims = paper_claims(rows)
    values["claims"] = str(len(claims))
    values.update(_judged_values(claims))
    values.update(_judged_values(paper_claims(read_summary_csv(COMPARISON / "summary.csv")), "cmp_"))
    floors = noise_floors(rows)
    values["floor_accuracy"], values["floor_early_stop"] = f"{floors['accuracy']:.2f}", f"{floors['early_stop']:.0f}"
    values["scaling_section"] = scaling_section()
    dense = [100 * row["test_acc_early_stop"] for row in rows if row["control"] == "ticket" and row["round"] == 0]
    values["dense_min"], values["dense_max"] = f"{min(dense):.2f}%", f"{max(dense):.2f}%"
    values["dense_inside"] = str(sum(97.8 <= round(value, 2) <= 98.2 for value in dense))
    last = max(row["round"] for row in rows)
    for control in ("ticket", "reinit", "random_prune"):
        at_last = [100 * row["test_acc_early_stop"] for row in rows if row["control"] == control and row["round"] == last]
        values[f"{control}_last"] = f"{sum(at_last) / len(at_last):.2f}%"
    values["trainings"] = str(len(rows))
    runs = info["runs"]
    values["runs"] = str(len(runs))
    training = [run["training_seconds"] for run in runs]
    values["training_seconds"] = _seconds(sum(training))
    values["training_hours"] = f"{sum(training) / 3600:.1f}"
    values["run_seconds_min"], values["run_seconds_max"] = _seconds(min(training)), _seconds(max(training))
    values["iterations_trained"] = f"{sum(run['iterations_trained'] for run in runs):,}"
    values["iterations_budget"] = f"{50_000 * len(rows):,}"
    values["stopped_by_patience"] = str(sum(run["runs_stopped_by_patience"] for run in runs))
    parts = info.get("merged_from") or [info]
    for index, part in enumerate(parts, 1):
        trials = sorted({run["trial"] for run in part["runs"]})
        values[f"part{index}_trials"] = f"{trials[0]}–{trials[-1]}" if len(trials) > 1 else str(trials[0])
        values[f"part{index}_command"] = part["command"]
        values[f"part{index}_wall_seconds"] = _seconds(part["wall_seconds"])
        hardware = part.get("hardware", {})
        values[f"part{index}_cpu"] = hardware.get("cpu", "an unrecorded CPU")
        values[f"part{index}_machine"] = (f"{hardware.get('cpu', 'an unrecorded CPU')}, {hardware.get('cpu_count')} CPUs, "
                                          f"{hardware.get('platform')}, Python {hardware.get('python')}, "
                                          f"torch {hardware.get('torch')}")
    values["merge_command"] = info["command"] if info.get("merged_from") else "(not merged)"
    first = parts[0]
    values["commit"] = (first.get("git_commit") or "unknown")[:7]
    values["code_version"] = first.get("code_version") or "unknown"
    return values


def _judged_values(judged, prefix: str = "") -> dict[str, str]:
    """``n_<verdict>`` counts, and ``ci_<claim>`` (estimate [interval]) and ``v_<claim>`` (verdict) per claim."""
    values = {f"{prefix}n_{verdict}": str(count) for verdict, count in count_verdicts(j.verdict for j in judged).items()}
    for item in judged:
        values[f"{prefix}ci_{item.claim.id}"] = item.interval.text(item.claim.digits, _unit_suffix(item.claim.unit))
        values[f"{prefix}v_{item.claim.id}"] = item.verdict
    return values


def scaling_section() -> str:
    """The report's section on input scaling: each scaling's dense network and verdicts, from the committed runs."""
    from lthkit.reporting.stats import t_interval

    lines = ["## Input scaling, measured", "",
             "The paper does not say how it scaled MNIST's pixels. The authors' public reimplementation "
             "(google-research/lottery-ticket-hypothesis, `datasets/dataset_mnist.py`) scales each image to unit "
             "L2 norm (`keras.utils.normalize`); lthkit offers that as `--inputs l2`, beside `unit` ([0, 1], the "
             "default) and `standardized`. The same protocol and claims under each:", "",
             "| inputs | folder | trials | re-inits per ticket | dense network: test accuracy at early stop, mean "
             "[95% interval] | consistent | inconclusive | inconsistent |", "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for name, folder in (("unit ([0, 1])", RESULTS), ("standardized", COMPARISON), ("l2 (unit norm per image)", L2)):
        if not (folder / "summary.csv").is_file():
            lines.append(f"| {name} | `{folder.relative_to(RESULTS.parent.parent)}/` | not run yet | | | | | |")
            continue
        rows = read_summary_csv(folder / "summary.csv")
        info = json.loads((folder / "run_info.json").read_text())
        dense = [100 * row["test_acc_early_stop"] for row in rows if row["control"] == "ticket" and row["round"] == 0]
        counts = count_verdicts(item.verdict for item in paper_claims(rows))
        lines.append(f"| {name} | `{folder.relative_to(RESULTS.parent.parent)}/` | {len(dense)} | "
                     f"{info.get('reinits') or 1} | {t_interval(dense).text(2, '%')} | {counts['consistent']} | "
                     f"{counts['inconclusive']} | {counts['inconsistent']} |")
    lines += ["", "The default stays [0, 1] for continuity with the committed runs and notebooks; which scaling is "
              "the paper's cannot be settled from the paper, and the table shows what each gives.", ""]
    return "\n".join(lines)


def assumptions(values: dict[str, str]) -> list[tuple[bool, str]]:
    """What the prose around the numbers takes for granted: ``(holds, what)``."""
    info = json.loads((RESULTS / "run_info.json").read_text())
    parts = info.get("merged_from") or [info]
    same = lambda key: len({json.dumps(part.get(key), sort_keys=True) for part in parts}) == 1  # noqa: E731
    return [
        (values["trials"] == "5", f"5 trials (found {values['trials']})"),
        (values["rounds"] == "20", f"20 pruning rounds (found {values['rounds']})"),
        (values["v_earlier_at_21"] == values["v_ticket_above_random_prune_10_7"] == "consistent",
         "the two direction claims are consistent (\"The directions hold\")"),
        (all(values[f"v_{claim}"] != "consistent" for claim in ("earlier_by_38", "above_dense_13_5", "back_to_dense_3_6")),
         "none of the three size claims is consistent (\"Each interval reaches past its tolerance\")"),
        (values["v_reinit_below_dense_21"] != "consistent", "re-init is not yet (consistently) below dense at 21.1%"),
        (values["below_from"] != "never" and values["last_minus_dense_side"] == "below",
         f"the ticket ends below dense (stays below from P_m {values['below_from']}; "
         f"last round {values['last_minus_dense_side']})"),
        (values["reinit_below_ticket_from"] != "never", "re-init is below the ticket in every trial from some P_m down"),
        (float(values["dense_mean"].rstrip("%")) > float(values["cmp_dense_mean"].rstrip("%")),
         f"the dense network scores higher than with standardized inputs ({values['dense_mean']} vs "
         f"{values['cmp_dense_mean']})"),
        (values["cmp_back_3_6_side"] == "above", "the standardized run's ticket was above dense at P_m 3.6%"),
        (len(parts) == 2, f"two parts merged (found {len(parts)})"),
        (same("git_commit") and same("code_version"), "every part from one commit and code version"),
        (not same("hardware") and all(part.get("hardware", {}).get("device") == "cpu" for part in parts),
         "the two parts ran on different CPU machines (run_info hardware)"),
    ]


def fill(template: str, values: dict[str, str]) -> str:
    unknown = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if unknown:
        raise SystemExit(f"paper_rerun_text: the template names unknown numbers: {', '.join(unknown)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def write_report(values: dict[str, str]) -> None:
    """The report's prose from the template; the two tables are left to ``lthkit paper-report``."""
    (RESULTS / "README.md").write_text(fill(REPORT_TEMPLATE.read_text(), values))


def refresh_notebook_tags() -> list[str]:
    """Notebook 5's tagged numbers set to the committed facts.json; returns the tags that changed."""
    import nbformat

    facts = json.loads((references.REFERENCE_ROOT / "05_paper_results" / "facts.json").read_text())
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    changed = []

    def replace(match):
        value, name = match.groups()
        if name not in facts:
            raise SystemExit(f"paper_rerun_text: notebook 5 cites {name!r}, which facts.json lacks")
        if value != facts[name]:
            changed.append(f"{name}: {value} -> {facts[name]}")
        return f"{facts[name]}<!--ref {name}-->"

    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = TAG.sub(replace, cell.source)
    if changed:
        nbformat.write(notebook, NOTEBOOK)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("numbers", "fill"))
    parser.add_argument("--allow-partial", action="store_true",
                        help="a dry run on partial data: failed assumptions only warn")
    args = parser.parse_args(argv)
    values = numbers()
    failed = [what for holds, what in assumptions(values) if not holds]
    if args.action == "numbers":
        for name, value in values.items():
            print(f"{name} = {value}")
    for what in failed:
        print(f"{'WARNING' if args.allow_partial else 'ERROR'}: the prose assumes {what}", file=sys.stderr)
    if failed and not args.allow_partial:
        print("paper_rerun_text: rewrite the prose (templates, notebook 5) for these, then rerun", file=sys.stderr)
        return 1
    if args.action == "fill":
        write_report(values)
        changed = refresh_notebook_tags()
        print(f"wrote {RESULTS / 'README.md'} (prose; tables: lthkit paper-report); "
              f"notebook 5: {len(changed)} tagged numbers changed" + "".join(f"\n  {line}" for line in changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
