#!/usr/bin/env bash
# Run lthkit's tests: `run_tests.sh [unit|notebooks|browser|all]` (default: all).
#
# pytest exits 5 when it collects no tests. That is neither a pass nor a failure of the code, so
# it is reported as its own outcome ("NO TESTS RAN") and makes the run fail: a suite that
# silently tests nothing must never look green.
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
what=${1:-all}
status=0

run_pytest() {  # run_pytest LABEL ARGS...
  local label=$1; shift
  echo "=== $label: pytest $*"
  "$py" -m pytest "$@"
  local rc=$?
  case $rc in
    0) echo "=== $label: passed" ;;
    5) echo "=== $label: NO TESTS RAN (pytest collected nothing from: $*)"; status=5 ;;
    *) echo "=== $label: FAILED (pytest exit $rc)"; [ $status = 0 ] && status=$rc ;;
  esac
}

if [ "$what" = all ] || [ "$what" = unit ]; then
  # The layers and the rules between them (pyproject.toml's [tool.importlinter]; docs/architecture.md).
  echo "=== import contracts: lint-imports"
  if .venv/bin/lint-imports --no-cache --no-logo; then
    echo "=== import contracts: kept"
  else
    echo "=== import contracts: BROKEN"; [ $status = 0 ] && status=1
  fi
  run_pytest "unit tests" tests --ignore=tests/browser -q
  # The docstrings' examples are tests too (not the katas' example submissions, which must never
  # be imported outside the grader's sandbox).
  run_pytest "docstring examples" lthkit --doctest-modules -q --ignore-glob="*/submissions/*"
fi

if [ "$what" = all ] || [ "$what" = notebooks ]; then
  shopt -s nullglob
  # The course notebooks, then their learner versions (scripts/make_exercises.py), whose exercise
  # cells must raise NotImplementedError (checked by notebooks/conftest.py).
  notebooks=(notebooks/*.ipynb notebooks/exercises/*.ipynb)
  if [ ${#notebooks[@]} -eq 0 ]; then
    echo "=== notebooks: none in notebooks/ yet, nothing for nbval to run"
  else
    export LTHKIT_FAST=1  # a small subset of the real MNIST and short budgets: see lthkit.course
    # A fresh run cache shared by the notebooks: they really train, and a developer's cache/ is
    # neither read nor filled with fast-mode runs.
    nbval_cache=$(mktemp -d "${TMPDIR:-/tmp}/lthkit-nbval-cache.XXXXXX")
    export LTHKIT_CACHE=$nbval_cache
    # One thread per kernel: the fast-mode networks are tiny, and more threads than free cores
    # make OpenMP spin-wait (an order of magnitude slower on a busy machine).
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
    started=$SECONDS
    run_pytest "notebooks (nbval, fast mode)" --nbval-lax --nbval-current-env \
      --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider "${notebooks[@]}"
    echo "=== notebooks: $(( SECONDS - started )) s wall time"
    rm -rf "$nbval_cache"
    unset LTHKIT_FAST LTHKIT_CACHE
  fi
fi

if [ "$what" = all ] || [ "$what" = browser ]; then
  # JupyterLab in headless Chromium drives notebook 3's dashboard (tests/browser/).
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    run_pytest "browser test (JupyterLab in headless Chromium)" tests/browser -q
  elif [ "$what" = browser ]; then
    echo "=== browser test: Chromium is not installed (Debian: apt-get install chromium); cannot run it"
    status=1
  else
    echo "=== browser test: skipped, Chromium is not installed (Debian: apt-get install chromium)"
  fi
fi

exit $status
