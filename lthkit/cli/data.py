"""``python -m lthkit data``: check that MNIST (or Fashion-MNIST) is in place."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.data import DATASETS


def run(args: argparse.Namespace) -> int:
    from ..core.data import data_root, get_dataset, read_mnist_raw

    dataset = get_dataset(args.dataset)
    train_images, _, test_images, _ = read_mnist_raw(args.data, download=not args.no_download, dataset=args.dataset)
    print(f"{dataset.label} ready in {data_root(args.data) / dataset.folder / 'raw'}: "
          f"{len(train_images)} training and {len(test_images)} test images")
    return 0


def add_parser(commands) -> None:
    """``data``: check that MNIST (or Fashion-MNIST) is in place."""
    data = commands.add_parser(
        "data", help="check that MNIST (or Fashion-MNIST) is in place (extracting or downloading it if needed)",
        description="Check that MNIST (or Fashion-MNIST) is in place: the four original files' MD5 sums are verified "
                    "and the files extracted, Fashion-MNIST's copied first from Debian's dataset-fashion-mnist "
                    "package where it is installed; torchvision downloads missing files unless --no-download is "
                    "given.")
    data.add_argument("--dataset", choices=tuple(DATASETS), default="mnist",
                      help="which data set (default: mnist)")
    data.add_argument("--data", type=Path, help="data root (default: $LTHKIT_DATA or data/ in the repo)")
    data.add_argument("--no-download", action="store_true", help="never try the network")
    data.set_defaults(handler=run)
