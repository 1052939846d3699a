"""``python -m lthkit data``: check that MNIST is in place."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..core.data import data_root, read_mnist_raw

    train_images, _, test_images, _ = read_mnist_raw(args.data, download=not args.no_download)
    print(f"MNIST ready in {data_root(args.data) / 'MNIST' / 'raw'}: "
          f"{len(train_images)} training and {len(test_images)} test images")
    return 0


def add_parser(commands) -> None:
    """``data``: check that MNIST is in place."""
    data = commands.add_parser(
        "data", help="check that MNIST is in place (extracting or downloading it if needed)",
        description="Check that MNIST is in place: torchvision verifies the four original files' MD5 sums and "
                    "extracts them, downloading them first if they are missing and --no-download is not given.")
    data.add_argument("--data", type=Path, help="MNIST root (default: $LTHKIT_DATA or data/ in the repo)")
    data.add_argument("--no-download", action="store_true", help="never try the network")
    data.set_defaults(handler=run)
