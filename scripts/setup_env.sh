#!/usr/bin/env bash
# Create the virtual environment and install lthkit with a torch/torchvision pair that loads.
#
# Where pip is configured with a local CPU-only torch wheel (find-links), a plain
# `pip install -r requirements.txt` picks `torch 2.13.0+cpu` from that folder and PyPI's
# torchvision 0.28.0, which then fails at import with "operator torchvision::nms does not
# exist". So the pair is installed first with pip's configuration and find-links switched off
# (straight from PyPI), falling back to the configured indexes only if that fails, and the
# result is verified by actually running a torchvision operator.
#
# On a machine without an NVIDIA GPU the pair comes from PyTorch's CPU-only wheel index
# (TORCH_CPU_INDEX, default https://download.pytorch.org/whl/cpu) when it can be reached: a
# fraction of the CUDA build's disk (see benchmarks/setup_disk.md). Where it cannot, or where there
# is a GPU, it is PyPI's pair as before. The last line says which build was installed and why.
#
# In a git checkout it also configures the notebook output filter (scripts/notebook_filter.py):
# running a notebook does not mark it modified in `git status`, and the outputs committed for
# readers on GitHub stay as they are.
set -euo pipefail

venv=${1:-.venv}
python=${PYTHON:-}
if [ -z "$python" ]; then
  python=$(command -v python3.11 || command -v python3 || true)
fi
if [ -z "$python" ]; then
  echo "setup: no python3 found; install Python 3.11 (python3.11) and run make again" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup: $python is $("$python" --version 2>&1); lthkit needs Python 3.10 or newer (3.11 recommended)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pair=$(grep -E '^(torch|torchvision)==' requirements.txt | tr '\n' ' ')

pair_works() {
  "$py" - <<'PY' 2>&1
import torch, torchvision
boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
torchvision.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5)  # fails on a mismatched build pair
print(f"torch {torch.__version__} + torchvision {torchvision.__version__}")
PY
}

has_nvidia_gpu() {
  [ -e /proc/driver/nvidia/version ] && return 0
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && return 0
  return 1
}
cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
why=""
if ! pair_works >/dev/null; then
  "$py" -m pip uninstall -y -q torch torchvision >/dev/null 2>&1 || true
  if has_nvidia_gpu; then
    why="an NVIDIA GPU is present"
  else
    echo "setup: no NVIDIA GPU: installing the CPU-only $pair from $cpu_index"
    if env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
        "$py" -m pip install -q --disable-pip-version-check --timeout 20 --retries 1 --index-url "$cpu_index" \
        $pair >/dev/null 2>&1 && pair_works >/dev/null; then
      why="no NVIDIA GPU here, so the CPU-only build from $cpu_index"
    else
      "$py" -m pip uninstall -y -q torch torchvision >/dev/null 2>&1 || true
      echo "setup: the CPU-only index could not be reached; installing PyPI's pair (the CUDA build, larger)"
      why="no NVIDIA GPU here, but the CPU-only index $cpu_index could not be reached, so PyPI's CUDA build"
    fi
  fi
  if ! pair_works >/dev/null; then
    echo "setup: installing $pair from PyPI (pip's config and find-links off, so a local CPU-only torch wheel is not mixed with PyPI's torchvision)"
    if ! env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
        "$py" -m pip install -q --disable-pip-version-check $pair; then
      echo "setup: PyPI could not be reached directly; trying pip's configured indexes"
      "$py" -m pip install -q $pair
    fi
  fi
else
  why="the torch already in $venv works (remove $venv and run make setup again to reinstall it)"
fi

echo "setup: installing requirements.txt and lthkit (editable)"
# The pair is already satisfied, so pip leaves it alone here.
log=$(mktemp)
if ! "$py" -m pip install -q -r requirements.txt -e . >"$log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$log" >&2 || true
  echo "setup: pip install -r requirements.txt -e . failed (see above)" >&2
  exit 1
fi
grep -v "is ignored: it is neither a file nor a directory" "$log" || true
rm -f "$log"

if ! report=$(pair_works); then
  echo "setup: error: torch and torchvision do not work together:" >&2
  echo "$report" | tail -n 3 | sed 's/^/  /' >&2
  echo "  installed: $("$py" -m pip list 2>/dev/null | grep -E '^torch(vision)? ' | tr -s ' ' | tr '\n' ';')" >&2
  echo "  expected a matching build pair ($pair). 'operator torchvision::nms does not exist' means torchvision" >&2
  echo "  was built for a different torch build; remove $venv and run make again with PyPI reachable." >&2
  exit 1
fi
# The notebook output filter: in a git checkout, `git status` ignores what running a notebook changes
# (outputs, execution counts), and never rewrites what is committed (scripts/notebook_filter.py).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git config filter.lthkit-notebook.clean "$venv/bin/python scripts/notebook_filter.py %f"
  git config filter.lthkit-notebook.smudge cat
  echo "setup: git filter lthkit-notebook configured (running the notebooks leaves git status clean)"
fi

# The last line says which torch this is, and why.
build=$("$py" -c 'import torch; print("CUDA " + torch.version.cuda if torch.version.cuda else "CPU-only")')
echo "setup: $report, the $build build (${why:-installed from the configured indexes})"
