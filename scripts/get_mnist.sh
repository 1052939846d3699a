#!/usr/bin/env bash
# Put the four original MNIST files in <data root>/MNIST/raw/ and check them with lthkit's loader.
# They come from ../shared/data/MNIST/raw when that folder sits beside the checkout (CI has it);
# otherwise torchvision downloads them on first use. MNIST is never committed.
set -euo pipefail
py=${1:-.venv/bin/python}
root=${LTHKIT_DATA:-data}
shared=../shared/data/MNIST/raw
mkdir -p "$root/MNIST/raw"
if [ -d "$shared" ]; then
  for file in "$shared"/*.gz; do
    [ -f "$root/MNIST/raw/$(basename "$file")" ] || cp "$file" "$root/MNIST/raw/"
  done
fi
LTHKIT_DATA="$root" "$py" -m lthkit data
