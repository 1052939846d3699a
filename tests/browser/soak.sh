#!/usr/bin/env bash
# Run the browser test over and over: `tests/browser/soak.sh [QUIET_RUNS] [BUSY_RUNS]`
# (default 10 and 3). First QUIET_RUNS runs in a row, then BUSY_RUNS runs while every core is kept
# busy by a `python -c "while True: pass"` of this script's own (one per core, at least two),
# which it always ends (trap), however it stops. Prints one line per run (pass/fail, seconds)
# and a summary; exits 1 if any run failed. A failed run's pytest output is kept in
# test-artifacts/browser/soak-run-N.log.
#
# Example: tests/browser/soak.sh | tee tests/browser/soak-results.txt
set -uo pipefail
cd "$(dirname "$0")/../.."
quiet_runs=${1:-10}
busy_runs=${2:-3}
py=.venv/bin/python
mkdir -p test-artifacts/browser

busy_pids=()
stop_busy() {
  for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${busy_pids[@]}"; do wait "$pid" 2>/dev/null; done
  busy_pids=()
}
trap stop_busy EXIT
trap 'stop_busy; exit 130' INT TERM

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "soak: Chromium is not installed (Debian: apt-get install chromium)" >&2
  exit 2
fi

cores=$(nproc)
echo "browser test soak: $(date -u '+%Y-%m-%d %H:%M UTC'), $cores cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: OMP_NUM_THREADS=1 $py -m pytest tests/browser -q"
failures=0
run=0
durations=()
run_once() {  # run_once PHASE
  run=$((run + 1))
  local log=test-artifacts/browser/soak-run-$run.log started=$SECONDS
  OMP_NUM_THREADS=1 "$py" -m pytest tests/browser -q -p no:cacheprovider >"$log" 2>&1
  local rc=$? seconds=$((SECONDS - started))
  durations+=("$seconds")
  if [ $rc = 0 ]; then
    printf 'run %2d (%s): pass, %d s\n' "$run" "$1" "$seconds"
    rm -f "$log"
  else
    failures=$((failures + 1))
    printf 'run %2d (%s): FAIL (pytest exit %d), %d s: %s\n' "$run" "$1" "$rc" "$seconds" \
      "$(grep -m1 -E '^E ' "$log" | cut -c1-200)"
    # What the page showed instead (Playwright's "Actual value"), to tell load from a wrong state.
    grep -m2 -iE 'actual value|received' "$log" | cut -c1-300 | sed 's/^/    /' || true
  fi
}

for _ in $(seq "$quiet_runs"); do run_once "in a row"; done

spinners=$(( cores > 2 ? cores : 2 ))
for _ in $(seq "$spinners"); do
  "$py" -c "while True: pass" &
  busy_pids+=($!)
done
echo "started $spinners busy processes (pids ${busy_pids[*]}), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$busy_runs"); do run_once "cores busy"; done
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
stop_busy
echo "stopped the busy processes"

sorted=$(printf '%s\n' "${durations[@]}" | sort -n | tr '\n' ' ')
echo "summary: $((run - failures))/$run passed; durations (s, sorted): $sorted"
[ $failures = 0 ]
