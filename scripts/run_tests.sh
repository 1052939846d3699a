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
  run_pytest "unit tests" tests --ignore=tests/browser -q
fi

if [ "$what" = all ] || [ "$what" = notebooks ]; then
  shopt -s nullglob
  notebooks=(notebooks/*.ipynb)
  if [ ${#notebooks[@]} -eq 0 ]; then
    echo "=== notebooks: none in notebooks/ yet, nothing for nbval to run"
  else
    export LTHKIT_FAST=1  # small MNIST subsets and short budgets: see lthkit.experiments
    run_pytest "notebooks (nbval, fast mode)" --nbval-lax -p no:cacheprovider "${notebooks[@]}"
    unset LTHKIT_FAST
  fi
fi

exit $status
