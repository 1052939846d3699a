#!/usr/bin/env bash
# Land the paper protocol's rerun with pixels in [0, 1] (issue 14) as results/paper-lenet300/.
#
# Usage: bash scripts/land_paper_rerun.sh PART [--allow-partial]
#   PART: the `reproduce` folder of trials 2-4, trained from commit 4ef73df like
#         results/paper-lenet300/parts/seeds-0-1 (trials 0 and 1).
#   --allow-partial: a dry run with fewer trials in PART; the prose's assumptions only warn.
#
# It moves the earlier standardized run into results/paper-lenet300/standardized/ (its README's links
# fixed), removes unit-inputs/ (replaced by this run), merges the two parts into results/paper-lenet300/
# (summary, figures, run_info.json with each part's record), removes parts/, recomputes notebook 5's
# facts, fills the prose of the report, the README's section and notebook 5's tagged numbers from the
# data (scripts/paper_rerun_text.py, templates scripts/paper_report_template.md and
# scripts/paper_readme_section.md), writes the report's tables and stages everything. It commits nothing.
# Run again, it skips what is done; once parts/ is gone (landed), it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:?usage: bash scripts/land_paper_rerun.sh FOLDER_OF_TRIALS_2-4 [--allow-partial]}
partial=${2:-}
case $partial in ""|--allow-partial) ;; *) echo "unknown option $partial" >&2; exit 2 ;; esac
py=.venv/bin/python
R=results/paper-lenet300
say() { echo "== $*"; }

[ -f "$part/summary.csv" ] && [ -f "$part/run_info.json" ] || { echo "$part: not a reproduce folder" >&2; exit 2; }
[ -d "$R/parts/seeds-0-1" ] || { echo "$R/parts/seeds-0-1 is gone: already landed?" >&2; exit 2; }

say "checking $part"
"$py" - "$part" "$partial" <<'EOF'
import json, sys
from lthkit.experiments import read_summary_csv
folder, partial = sys.argv[1], sys.argv[2] == "--allow-partial"
rows = read_summary_csv(f"{folder}/summary.csv")
info = json.load(open(f"{folder}/run_info.json"))
trials = sorted({row["trial"] for row in rows})
per_trial = {t: sum(row["trial"] == t for row in rows) for t in trials}
print(f"   trials {trials}, rows per trial {per_trial}, commit {info.get('git_commit', '')[:7]}, "
      f"rounds {info['config']['rounds']}, inputs {info['config']['data'].get('inputs')}")
problems = []
if trials != [2, 3, 4]:
    problems.append(f"trials {trials}, not [2, 3, 4]")
if any(count != 3 * 21 for count in per_trial.values()):
    problems.append(f"rows per trial {per_trial}, not 63 (3 controls x 21 trainings)")
if problems and not partial:
    sys.exit("not the finished trials 2-4: " + "; ".join(problems))
for problem in problems:
    print("   WARNING (dry run):", problem)
EOF

say "the standardized run -> $R/standardized/"
mkdir -p "$R/standardized"
for name in README.md summary.csv run_info.json accuracy_vs_density.png early_stop_vs_density.png \
            patience_check.csv no-patience-check probes; do
  if [ ! -e "$R/standardized/$name" ]; then
    git mv "$R/$name" "$R/standardized/$name"
  fi
done
"$py" scripts/paper_rerun_text.py fix-standardized

if [ -d "$R/unit-inputs" ]; then
  say "removing $R/unit-inputs/ (replaced by this run)"
  git rm -r -q "$R/unit-inputs"
  rm -rf "$R/unit-inputs"
fi

say "merging parts/seeds-0-1 and $part"
rm -rf "$R/parts/seeds-2-4"
mkdir -p "$R/parts/seeds-2-4"
cp "$part"/{summary.csv,run_info.json,README.md,accuracy_vs_density.png,early_stop_vs_density.png} "$R/parts/seeds-2-4/"
cp scripts/paper_report_template.md "$R/README.md"  # merge-runs fills its tables and keeps the rest
"$py" -m lthkit merge-runs "$R/parts/seeds-0-1" "$R/parts/seeds-2-4" --out "$R"
"$py" - "$R" <<'EOF'
import json, sys
info = json.load(open(f"{sys.argv[1]}/run_info.json"))
parts = info["merged_from"]
assert [part["folder"] for part in parts] == [f"{sys.argv[1]}/parts/seeds-0-1", f"{sys.argv[1]}/parts/seeds-2-4"], parts
for part in parts:
    assert part["command"] and part["git_commit"] and part["hardware"] and part["runs"], part["folder"]
    print(f"   {part['folder']}: {part['command']} ({len(part['runs'])} runs, commit {part['git_commit'][:7]})")
print(f"   merged run_info.json keeps both parts' records; {len(info['runs'])} (control, trial) runs")
EOF
git rm -r -q "$R/parts/seeds-0-1"
rm -rf "$R/parts"

say "notebook 5's facts"
"$py" scripts/notebook_references.py --notebook 05_paper_results --facts-only >/dev/null

say "the prose: report, README section, notebook 5's tagged numbers"
"$py" scripts/paper_rerun_text.py numbers $partial
"$py" scripts/paper_rerun_text.py fill $partial
"$py" -m lthkit paper-report "$R"
"$py" scripts/make_exercises.py --check

git add -A "$R" results/notebooks/05_paper_results README.md notebooks/05_paper_results.ipynb
say "staged; left: tests, read the diff, commit"
git status --short
