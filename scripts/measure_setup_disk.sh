#!/usr/bin/env bash
# Measure the disk `make setup` needs and write benchmarks/setup_disk.md: `scripts/measure_setup_disk.sh [VENV]`.
#
# Measured: the environment as set up (du of VENV, default .venv, followed through a symlink), its torch
# stack (torch, triton and the nvidia-* CUDA libraries that come with PyPI's CUDA build) and the rest,
# and MNIST in data/. For the CPU-only build, torch's CPU wheel is installed (no dependencies) into a
# scratch folder and measured there: a CPU-only set-up is the rest of the environment plus that.
# The CPU wheel is torch==<requirements.txt's pin>+cpu, from pip's configured indexes or find-links
# (TORCH_CPU_WHEEL=path picks a file); torchvision's CPU build is a few MB either way and is not counted apart.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
site=$(readlink -f "$venv")/lib/python3*/site-packages
out=benchmarks/setup_disk.md
kib() { du -sk "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
gb() { awk -v k="$1" 'BEGIN {printf "%.2f GB", k * 1024 / 1e9}'; }

total=$(kib "$(readlink -f "$venv")")
torch_stack=$(kib $site/torch $site/torch-*.dist-info $site/triton $site/triton-*.dist-info $site/nvidia* $site/cuda* $site/torchvision $site/torchvision-*.dist-info)
rest=$((total - torch_stack))
data=$(kib "$(readlink -f data)")
version=$(grep -E '^torch==' requirements.txt | cut -d= -f3)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
wheel=${TORCH_CPU_WHEEL:-}
if [ -z "$wheel" ]; then
  "$venv/bin/python" -m pip download -q --no-deps -d "$scratch/wheel" "torch==$version+cpu" >/dev/null 2>&1 || true
  wheel=$(ls "$scratch"/wheel/torch-*.whl 2>/dev/null | head -n 1 || true)
fi
if [ -n "$wheel" ]; then
  "$venv/bin/python" -m pip install -q --no-deps --target "$scratch/cpu" "$wheel" >/dev/null 2>&1
  cpu_torch=$(kib "$scratch/cpu")
  cpu_line="| CPU-only build: the rest + torch $version+cpu ($(gb "$cpu_torch") installed) | $(gb $((rest + cpu_torch + data))) |"
else
  cpu_line="| CPU-only build | not measured: no torch $version+cpu wheel could be downloaded here |"
fi
build=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
{
  echo "# Disk that \`make setup\` needs"
  echo
  echo "Written by \`scripts/measure_setup_disk.sh\` on $(date -u +%Y-%m-%d) (the environment: torch $build)."
  echo
  echo "| what | disk |"
  echo "| --- | --- |"
  echo "| the environment as set up (\`.venv\`, torch $build) | $(gb "$total") |"
  echo "| of it, torch, torchvision, triton and the CUDA libraries | $(gb "$torch_stack") |"
  echo "| the rest of the environment | $(gb "$rest") |"
  echo "| MNIST in \`data/\` (the four files and lthkit's tensor cache) | $(gb "$data") |"
  echo "| **set-up with PyPI's CUDA build** (environment + MNIST) | **$(gb $((total + data)))** |"
  echo "${cpu_line/| CPU-only/| **CPU-only}" | sed 's/installed) |/installed)** |/; s/| \([0-9.]* GB\) |$/| **\1** |/'
  echo
  echo "\`make setup\` installs the CPU-only build on a machine without an NVIDIA GPU where PyTorch's CPU wheel"
  echo "index can be reached, PyPI's CUDA build otherwise; its last line says which. pip's download cache"
  echo "(~/.cache/pip) comes on top during the install."
} > "$out"
cat "$out"
