#!/usr/bin/env bash
# Put the four original MNIST files in <data root>/MNIST/raw/ and check them with lthkit's loader.
# They come from ../shared/data/MNIST/raw when that folder sits beside the checkout (CI has it);
# otherwise torchvision downloads them on first use. MNIST is never committed.
# Then Fashion-MNIST (notebook 8) in <data root>/FashionMNIST/raw/: lthkit copies it from Debian's
# dataset-fashion-mnist package when installed (apt-get install dataset-fashion-mnist), else
# torchvision downloads it; without either, this only warns (notebooks 1-7 do not need it).
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
if ! LTHKIT_DATA="$root" "$py" -m lthkit data --dataset fashion_mnist; then
  echo "get_mnist.sh: Fashion-MNIST is not in place (notebook 8 needs it): apt-get install dataset-fashion-mnist, then make data" >&2
fi
