"""MNIST (and Fashion-MNIST) as normalized in-memory tensors, split as in Frankle & Carbin (2018).

torchvision's :class:`~torchvision.datasets.MNIST` reads (and, where needed, verifies and
extracts) the original idx files once; after that the images live in a single float tensor on
the chosen device and batches are taken by indexing. There is no per-sample PIL/DataLoader
pipeline in the training path, which is what makes an epoch of LeNet-300-100 cost about a
second on two CPU cores instead of six.

Where the data lives, in order of precedence:

1. the ``root`` argument,
2. the ``LTHKIT_DATA`` environment variable,
3. ``data/`` at the repository root (git-ignored; ``make lab`` / ``make test`` copy the four
   original files there from ``../shared/data/MNIST/raw`` when that folder exists).

torchvision expects the files in ``<root>/MNIST/raw/``.

**Fashion-MNIST** (Xiao, Rasul & Vollgraf 2017: 28x28 grayscale clothing, 10 classes, the same
60,000 / 10,000 split and idx files; ``DataConfig(dataset="fashion_mnist")``, ``run --dataset
fashion_mnist``) goes through the same loader, checks and one-line errors, in
``<root>/FashionMNIST/raw/``. Offline it comes from Debian's ``dataset-fashion-mnist`` package: its
four files (in ``/usr/share/datasets/fashion-mnist``, :attr:`Dataset.system_folders`) are copied in
on first use and extracted here, each extracted file checked against the MD5 of the original
(Debian recompressed the ``.gz`` files, so their own MD5s differ from torchvision's record).
Where there is internet, torchvision's ``FashionMNIST`` downloads them. Neither data set is ever
committed.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from .. import settings
from ..errors import LthkitError
from .fields import SEED_LIMIT, check_choice, check_int, document_fields

#: The four original files of MNIST (and of Fashion-MNIST), as torchvision looks for them in ``<root>/MNIST/raw/``.
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
#: Mean and standard deviation of the MNIST training pixels (scaled to [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
#: How pixels can be scaled: standardized with MNIST's mean and std, kept in [0, 1] (the default), or each image
#: scaled to unit L2 norm over its 784 pixels (the authors' public code: ``keras.utils.normalize`` of the
#: flattened images, google-research/lottery-ticket-hypothesis, ``datasets/dataset_mnist.py``).
INPUT_SCALINGS = ("standardized", "unit", "l2")
#: Size of the validation set the paper holds out of the 60,000 training images.
PAPER_VALIDATION_SIZE = 5000
#: Images in MNIST's training file.
MNIST_TRAIN_IMAGES = 60_000
#: Images in MNIST's test file.
MNIST_TEST_IMAGES = 10_000

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dataset:
    """A 28x28 grayscale data set in MNIST's four idx files, as :func:`load_mnist` reads it.

    Attributes:
        name: what ``DataConfig.dataset`` and ``--dataset`` say (``"fashion_mnist"``).
        label: what messages and figures call it (``"Fashion-MNIST"``).
        folder: torchvision's class and folder name (``<root>/<folder>/raw/``).
        mean, std: of its training pixels in [0, 1] (``inputs="standardized"``).
        classes: the name of each label.
        idx_md5: the MD5 of each extracted idx file of the original data set (a copy lthkit extracts
            itself is checked against them).
        system_folders: where an operating-system package keeps the four ``.gz`` files; copied in on
            first use when the data root lacks them.
        source_hint: how to get the files, for the message when they are missing.
    """

    name: str
    label: str
    folder: str
    mean: float
    std: float
    classes: tuple[str, ...]
    idx_md5: dict = field(default_factory=dict)
    system_folders: tuple[str, ...] = ()
    source_hint: str = ""

    def torchvision_class(self):
        """torchvision's dataset class of the same name (imported here: torchvision is slow to import)."""
        import torchvision.datasets

        return getattr(torchvision.datasets, self.folder)


#: The data sets :func:`load_mnist` reads, by ``DataConfig.dataset``.
DATASETS = {
    "mnist": Dataset(
        "mnist", "MNIST", "MNIST", MNIST_MEAN, MNIST_STD, tuple(str(digit) for digit in range(10)),
        idx_md5={"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                 "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
                 "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
                 "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"},
        source_hint="`make data` copies them from ../shared/data/MNIST/raw"),
    "fashion_mnist": Dataset(
        # mean and std: of the 60,000 training images' pixels in [0, 1] (tests/test_data.py recomputes them)
        "fashion_mnist", "Fashion-MNIST", "FashionMNIST", 0.2860, 0.3530,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        idx_md5={"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                 "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
                 "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
                 "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"},
        system_folders=("/usr/share/datasets/fashion-mnist",),
        source_hint="`apt-get install dataset-fashion-mnist` installs them (lthkit copies them from "
                    "/usr/share/datasets/fashion-mnist), or torchvision downloads them where there is internet"),
}


def get_dataset(name: str) -> Dataset:
    """The :class:`Dataset` called ``name``, or a one-line :class:`~lthkit.LthkitError` naming the choices.

    Example:
        >>> get_dataset("fashion_mnist").label
        'Fashion-MNIST'
    """
    check_choice(name, "dataset", tuple(DATASETS), what="data set")
    return DATASETS[name]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the folder that holds (or will hold) ``MNIST/raw/``.

    Args:
        root: an explicit folder. When ``None``, the ``LTHKIT_DATA`` environment variable is
            used, and when that is unset, ``data/`` at the repository root.

    Returns:
        The resolved :class:`~pathlib.Path` (it may not exist yet).

    Example:
        >>> data_root("/tmp/somewhere")
        PosixPath('/tmp/somewhere')
    """
    if root is not None:
        return Path(root).expanduser().resolve()
    env = settings.path("LTHKIT_DATA")
    if env is not None:
        return env.resolve()
    return REPO_ROOT / "data"


@document_fields
@dataclass(frozen=True)
class DataConfig:
    """Which images to use: the paper's split, optionally a subset for fast modes.

    Every field is checked at construction (a one-line :class:`~lthkit.LthkitError` names the field).
    """

    validation_size: int = field(default=PAPER_VALIDATION_SIZE, metadata={
        "help": "images held out of the 60,000 training images for validation (the paper: 5,000)",
        "doc": "The hold-out is a seeded random choice."})
    train_size: int | None = field(default=None, metadata={
        "help": "use only this many of the remaining training images (None: all 55,000)"})
    test_size: int | None = field(default=None, metadata={
        "help": "use only the first this many test images (None: all 10,000)"})
    split_seed: int = field(default=0, metadata={
        "help": "seed of the permutation that picks validation and training images"})
    inputs: str = field(default="unit", metadata={
        "help": 'how pixels are scaled: "unit" (pixels in [0, 1]; the default), "standardized" (MNIST\'s mean '
                'subtracted, divided by its standard deviation) or "l2" (each image divided by its L2 norm over its 784 '
                'pixels, as the authors\' public code does); the paper does not state its scaling',
        "choices": INPUT_SCALINGS})
    dataset: str = field(default="mnist", metadata={
        "help": 'the images: "mnist" (handwritten digits, the paper\'s) or "fashion_mnist" (clothing, the same '
                "sizes and files)", "choices": tuple(DATASETS), "omit_default": True})

    def __post_init__(self):
        check_choice(self.inputs, "inputs", INPUT_SCALINGS)
        get_dataset(self.dataset)
        check_int(self.validation_size, "validation_size", minimum=1, limit=MNIST_TRAIN_IMAGES)
        check_int(self.train_size, "train_size", minimum=1, optional=True)
        check_int(self.test_size, "test_size", minimum=1, optional=True)
        if self.test_size is not None and self.test_size > MNIST_TEST_IMAGES:
            raise LthkitError(f"test_size {self.test_size} is larger than MNIST's {MNIST_TEST_IMAGES:,} test images")
        check_int(self.split_seed, "split_seed", minimum=0, limit=SEED_LIMIT)
        if self.train_size is not None and self.train_size > MNIST_TRAIN_IMAGES - self.validation_size:
            raise LthkitError(f"train_size {self.train_size} is larger than the "
                              f"{MNIST_TRAIN_IMAGES - self.validation_size} training images left after the "
                              f"validation hold-out")

    @property
    def train_count(self) -> int:
        """How many training images this split has with the full MNIST training file."""
        return MNIST_TRAIN_IMAGES - self.validation_size if self.train_size is None else self.train_size


@dataclass
class MNISTData:
    """Normalized MNIST (or Fashion-MNIST) tensors on one device.

    Images are ``float32`` of shape ``(N, 1, 28, 28)``, normalized with the training mean and
    standard deviation; labels are ``int64`` of shape ``(N,)``.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def to(self, device) -> "MNISTData":
        """Return a copy with every tensor on ``device``."""
        return MNISTData(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def __repr__(self) -> str:
        return (f"MNISTData(train={len(self.train_y)}, validation={len(self.val_y)}, "
                f"test={len(self.test_y)}, device={self.device})")


def _corrupt_files(raw: Path, dataset: Dataset) -> list[str]:
    """The original .gz files in ``raw`` whose MD5 differs from torchvision's record."""
    from torchvision.datasets.utils import check_integrity

    return [name for name, md5 in dataset.torchvision_class().resources
            if (raw / name).exists() and not check_integrity(str(raw / name), md5)]


def _missing_data_message(raw: Path, cause: BaseException | None, dataset: Dataset) -> str:
    corrupt = _corrupt_files(raw, dataset) if raw.is_dir() else []
    if corrupt:
        return (f"{dataset.label} in {raw} is damaged: {', '.join(corrupt)} fails its MD5 check (an incomplete or "
                f"altered copy); replace it with the original file ({dataset.source_hint})")
    present = sorted(p.name for p in raw.glob("*")) if raw.is_dir() else []
    message = (f"{dataset.label} not found in {raw}: put the four original files there "
               f"({', '.join(MNIST_FILES)}), e.g. {dataset.source_hint}")
    if present:
        message += f"; the folder holds {', '.join(present)}"
    if cause is not None:
        lines = [line.strip() for line in str(cause).strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else type(cause).__name__
        if lines and lines[0].startswith("Error downloading"):
            detail = f"download failed: {detail}"
        message += f" ({detail})"
    return message


#: Magic number and shape after the count of each extracted idx file (uint8 images: 0x0803, labels: 0x0801).
_IDX_LAYOUT = {"images": (0x0803, (28, 28)), "labels": (0x0801, ())}


def _idx_problem(path: Path, kind: str) -> tuple[str | None, int | None]:
    """What is wrong with an extracted idx file (``None`` if nothing), and its item count."""
    magic_expected, item_shape = _IDX_LAYOUT[kind]
    header_size = 4 * (2 + len(item_shape))
    with path.open("rb") as file:
        header = file.read(header_size)
    if len(header) < 4 or int.from_bytes(header[:4], "big") != magic_expected:
        found = f"0x{int.from_bytes(header[:4], 'big'):08x}" if len(header) >= 4 else "none"
        return f"bad magic number {found} (an idx {kind} file starts with 0x{magic_expected:08x})", None
    if len(header) < header_size:
        return f"its header is cut short ({len(header)} of {header_size} bytes)", None
    dims = [int.from_bytes(header[i:i + 4], "big") for i in range(4, header_size, 4)]
    if tuple(dims[1:]) != item_shape:
        return f"its items are {'x'.join(map(str, dims[1:]))}, not {'x'.join(map(str, item_shape))}", None
    expected = header_size + math.prod(dims)
    size = path.stat().st_size
    if size != expected:
        return (f"{'truncated' if size < expected else 'too long'}: {size:,} bytes where its header "
                f"({dims[0]:,} {kind}) needs {expected:,}"), None
    return None, dims[0]


def check_idx_files(raw, dataset: str = "mnist") -> None:
    """Check the header and size of every extracted idx file of ``dataset`` in ``raw`` (those present).

    torchvision trusts an extracted file once it exists; a truncated or overwritten one would
    otherwise surface as an assertion deep inside it.

    Raises:
        LthkitError: a file is damaged (bad magic number, wrong item shape, truncated or too long),
            or an images file and its labels file disagree on the count; the message names the file.
    """
    raw = Path(raw)
    label = get_dataset(dataset).label
    for split in ("train", "t10k"):
        counts = {}
        for kind, dims in (("images", "idx3"), ("labels", "idx1")):
            path = raw / f"{split}-{kind}-{dims}-ubyte"
            if not path.is_file():
                continue
            problem, counts[kind] = _idx_problem(path, kind)
            if problem:
                remedy = (f"delete it to have it extracted again from {path.name}.gz"
                          if (raw / f"{path.name}.gz").is_file() else "replace it with the original file")
                raise LthkitError(f"{label} file {path} is damaged: {problem}; {remedy}")
        if len(counts) == 2 and counts["images"] != counts["labels"]:
            raise LthkitError(f"{label} files in {raw} are damaged: {split}-images-idx3-ubyte holds "
                              f"{counts['images']:,} images but {split}-labels-idx1-ubyte {counts['labels']:,} labels")


def _md5(payload: bytes) -> str:
    import hashlib

    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def _put_originals_in_place(raw: Path, dataset: Dataset) -> None:
    """Copy the four ``.gz`` files from an installed package, and extract those torchvision would not take.

    torchvision extracts a ``.gz`` only when its MD5 is its record's; a copy recompressed by a
    package (Debian's Fashion-MNIST) is extracted here instead, and each extracted file is written
    only if its MD5 is the original idx file's. Files already extracted are left alone.

    Raises:
        LthkitError: a ``.gz`` cannot be decompressed, or decompresses to other data than the original.
    """
    import gzip

    from torchvision.datasets.utils import check_integrity

    from .files import atomic_write_bytes

    wanted = [name for name in MNIST_FILES if not (raw / name[:-3]).is_file() and not (raw / name).is_file()]
    source = next((Path(folder) for folder in dataset.system_folders
                   if all((Path(folder) / name).is_file() for name in MNIST_FILES)), None)
    if wanted and source is not None:
        raw.mkdir(parents=True, exist_ok=True)
        for name in wanted:
            atomic_write_bytes(raw / name, (source / name).read_bytes())
    records = dict(dataset.torchvision_class().resources)
    for name in MNIST_FILES:
        gz, extracted = raw / name, raw / name[:-3]
        if extracted.is_file() or not gz.is_file() or check_integrity(str(gz), records.get(name)):
            continue  # already extracted, absent, or torchvision's own record: torchvision extracts it
        try:
            payload = gzip.decompress(gz.read_bytes())
        except (OSError, EOFError, ValueError) as error:
            raise LthkitError(f"{dataset.label} in {raw} is damaged: {name} does not decompress ({error}); replace "
                              f"it with the original file ({dataset.source_hint})") from None
        if _md5(payload) != dataset.idx_md5.get(extracted.name):
            raise LthkitError(f"{dataset.label} in {raw} is damaged: {name} fails its MD5 check (it holds other data "
                              f"than the original {extracted.name}); replace it ({dataset.source_hint})")
        atomic_write_bytes(extracted, payload)


def read_mnist_raw(root: str | os.PathLike | None = None, *, download: bool = True, dataset: str = "mnist"):
    """Read MNIST's (or Fashion-MNIST's) raw uint8 images and labels through torchvision.

    torchvision checks the MD5 sums of the ``.gz`` files and extracts them offline when they
    already sit in ``<root>/MNIST/raw/``; otherwise, when ``download`` is true, it downloads them.
    A call that fails leaves the disk as it was: folders and files it created (a failed download's
    ``MNIST/raw``) are removed again.

    Fashion-MNIST's files are first copied in from an installed package and extracted where
    torchvision would not (:func:`_put_originals_in_place`).

    Args:
        root: data root (see :func:`data_root`).
        download: allow torchvision to download missing files.
        dataset: ``"mnist"`` or ``"fashion_mnist"`` (:data:`DATASETS`).

    Returns:
        ``(train_images, train_labels, test_images, test_labels)``: uint8 ``(N, 28, 28)`` images
        and int64 labels.

    Raises:
        LthkitError: the files are missing or broken and could not be fetched; the message
            names the folder and the four files, or the damaged file.

    Example:
        >>> read_mnist_raw("/nonexistent", download=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        lthkit.LthkitError: MNIST not found in /nonexistent/MNIST/raw: put the four original files there ...
    """
    info = get_dataset(dataset)
    torchvision_class = info.torchvision_class()
    root = data_root(root)
    raw = root / info.folder / "raw"
    for folder in (root, root / info.folder, raw):
        if folder.exists() and not folder.is_dir():
            raise LthkitError(f"the {info.label} folder {folder} is a file, not a folder")
    check_idx_files(raw, dataset)
    # What exists now, so that a failed download can be undone (it creates <folder>/raw first).
    first_missing = next((folder for folder in (root, root / info.folder, raw) if not folder.exists()), None)
    present = set(os.listdir(raw)) if raw.is_dir() else set()
    try:
        _put_originals_in_place(raw, info)
        train = torchvision_class(str(root), train=True, download=download)
        test = torchvision_class(str(root), train=False, download=download)
    except LthkitError:
        if first_missing is not None:
            shutil.rmtree(first_missing, ignore_errors=True)
        raise
    except Exception as error:  # urllib, MD5 and "Dataset not found" errors all land here
        if first_missing is not None:
            shutil.rmtree(first_missing, ignore_errors=True)
        elif download:
            for name in set(os.listdir(raw)) - present:  # partial downloads and extractions
                try:
                    (raw / name).unlink()
                except OSError:
                    pass
        raise LthkitError(_missing_data_message(raw, error, info)) from None
    return train.data, train.targets, test.data, test.targets


#: The decoded images and labels, kept beside ``raw/`` (``<root>/MNIST/lthkit-tensors.pt``) with the
#: MD5 of every idx file they were decoded from: loading them takes a fraction of torchvision's parse.
TENSOR_CACHE = "lthkit-tensors.pt"
#: The extracted idx files torchvision decodes, in the order :func:`read_mnist_raw` returns them.
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


def _idx_md5s(raw: Path) -> dict | None:
    """The MD5 of each extracted idx file in ``raw`` (``None`` unless all four are there)."""
    import hashlib

    if not all((raw / name).is_file() for name in _IDX_FILES):
        return None
    sums = {}
    for name in _IDX_FILES:
        digest = hashlib.md5(usedforsecurity=False)
        with (raw / name).open("rb") as file:
            for block in iter(lambda: file.read(1 << 22), b""):
                digest.update(block)
        sums[name] = digest.hexdigest()
    return sums


def _cached_tensors(path: Path, md5s: dict):
    """The four tensors of the tensor cache at ``path`` if it was made from files with ``md5s``.

    Raises:
        Exception: the file cannot be read, holds something else, or was made from other files.
    """
    payload = torch.load(path, weights_only=True)  # never unpickles anything but tensors and containers
    if not isinstance(payload, dict) or set(payload) != {"md5", "tensors"}:
        raise ValueError("it does not hold md5 and tensors")
    if payload["md5"] != md5s:
        raise ValueError("it was made from other idx files")
    tensors = payload["tensors"]
    if not isinstance(tensors, (list, tuple)) or len(tensors) != 4 or \
            not all(isinstance(tensor, torch.Tensor) for tensor in tensors):
        raise ValueError("it does not hold four tensors")
    train_images, train_labels, test_images, test_labels = tensors
    for images, labels in ((train_images, train_labels), (test_images, test_labels)):
        if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != (28, 28) or \
                labels.dim() != 1 or len(labels) != len(images):
            raise ValueError("its tensors have the wrong shapes or types")
    return tuple(tensors)


def read_mnist_tensors(root: str | os.PathLike | None = None, *, download: bool = True, dataset: str = "mnist"):
    """:func:`read_mnist_raw`, through a tensor file cached beside the raw files.

    The first call decodes the idx files with torchvision and saves the tensors (``torch.save``)
    with the MD5 of every idx file to ``<root>/MNIST/lthkit-tensors.pt``; later calls load them
    (``weights_only=True``) when the idx files' MD5s still match. A broken or stale cache is
    reported in one line and rebuilt; a data folder that cannot be written is read as before.

    Args, Returns and Raises: as :func:`read_mnist_raw`.

    Example:
        >>> read_mnist_tensors("/nonexistent", download=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        lthkit.LthkitError: MNIST not found in /nonexistent/MNIST/raw: put the four original files there ...
    """
    import sys

    info = get_dataset(dataset)
    root = data_root(root)
    raw = root / info.folder / "raw"
    cache = root / info.folder / TENSOR_CACHE
    if raw.is_dir():
        check_idx_files(raw, dataset)
        md5s = _idx_md5s(raw)
        if md5s is not None and (cache.exists() or cache.is_symlink()):
            try:
                return _cached_tensors(cache, md5s)
            except Exception as error:
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
                print(f"lthkit: the {info.label} tensor cache {cache} is broken ({reason}); rebuilding it",
                      file=sys.stderr)
    tensors = read_mnist_raw(root, download=download, dataset=dataset)
    md5s = _idx_md5s(raw)
    if md5s is not None:
        from .files import atomic_save_tensors

        try:
            atomic_save_tensors(cache, {"md5": md5s, "tensors": list(tensors)})
        except OSError:  # a read-only data folder: decode each time, as before
            pass
    return tensors


def normalize_images(images: torch.Tensor, inputs: str = "unit", dataset: str = "mnist") -> torch.Tensor:
    """Scale uint8 images as ``inputs`` says and add a channel axis.

    ``"unit"``: pixels / 255, in [0, 1]; ``"standardized"``: those minus the data set's mean, divided by
    its standard deviation (:data:`DATASETS`); ``"l2"``: each image divided by the L2 norm of its 784 raw pixels (an empty image
    stays zero), as ``keras.utils.normalize`` of the flattened images does in the authors' code.

    Example:
        >>> image = torch.zeros(1, 28, 28, dtype=torch.uint8); image[0, 0, :2] = 255
        >>> [round(float(v), 4) for v in normalize_images(image, "l2")[0, 0, 0, :3]]
        [0.7071, 0.7071, 0.0]
    """
    if inputs == "l2":
        flat = images.float().reshape(len(images), -1)
        norms = flat.norm(dim=1, keepdim=True)
        return (flat / torch.where(norms == 0, torch.ones_like(norms), norms)).reshape(images.shape).unsqueeze(1)
    unit = images.float() / 255.0
    info = get_dataset(dataset)
    return (unit if inputs == "unit" else (unit - info.mean) / info.std).unsqueeze(1)

def default_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_mnist(config: DataConfig | None = None, *, root: str | os.PathLike | None = None,
               device: str | torch.device = "cpu", download: bool = True) -> MNISTData:
    """Load MNIST (or ``config.dataset``) into normalized tensors with the paper's train/validation split.

    The 60,000 training images are permuted with ``config.split_seed``; the first
    ``validation_size`` become the validation set and the next ``train_size`` (default: all the
    rest) the training set. The test set is the official 10,000 images (or its first
    ``test_size``).

    Args:
        config: the split; ``DataConfig()`` is the paper's (55,000 / 5,000 / 10,000).
        root: data root (see :func:`data_root`).
        device: where the tensors live (``"cuda"`` puts the whole data set on the GPU).
        download: allow torchvision to download missing files.

    The images come from the tensor cache beside the raw files (:func:`read_mnist_tensors`).

    Returns:
        An :class:`MNISTData`.

    Example:
        >>> data = load_mnist(DataConfig(train_size=1000), device="cpu")  # doctest: +SKIP
        >>> data.train_x.shape  # doctest: +SKIP
        torch.Size([1000, 1, 28, 28])
    """
    config = config or DataConfig()
    train_images, train_labels, test_images, test_labels = read_mnist_tensors(root, download=download,
                                                                              dataset=config.dataset)
    n_train_total = len(train_labels)
    if config.validation_size >= n_train_total:
        raise LthkitError(f"validation_size {config.validation_size} leaves no training images "
                          f"(the training file has {n_train_total})")
    generator = torch.Generator().manual_seed(config.split_seed)
    order = torch.randperm(n_train_total, generator=generator)
    val_index = order[:config.validation_size]
    train_index = order[config.validation_size:]
    if config.train_size is not None:
        if config.train_size > len(train_index):
            raise LthkitError(f"train_size {config.train_size} is larger than the {len(train_index)} "
                              f"training images left after the validation hold-out")
        train_index = train_index[:config.train_size]
    if config.test_size is not None and config.test_size > len(test_labels):
        raise LthkitError(f"test_size {config.test_size} is larger than the {len(test_labels):,} test images of "
                          f"{data_root(root) / get_dataset(config.dataset).folder / 'raw'}")
    test_end = len(test_labels) if config.test_size is None else config.test_size

    def prepare(images, labels):
        return normalize_images(images, config.inputs, config.dataset).to(device), labels.long().to(device)

    return MNISTData(*prepare(train_images[train_index], train_labels[train_index]),
                     *prepare(train_images[val_index], train_labels[val_index]),
                     *prepare(test_images[:test_end], test_labels[:test_end]))


def batches(num_examples: int, batch_size: int, generator: torch.Generator, device=None):
    """Yield index tensors of an endless stream of shuffled epochs.

    Each epoch is a fresh permutation drawn from ``generator``; the last, short batch of an
    epoch is kept (the next epoch starts a new permutation), so every training image is seen
    once per epoch.

    Args:
        num_examples: size of the training set.
        batch_size: indices per batch.
        generator: a CPU :class:`torch.Generator` (seeded by the caller for determinism).
        device: where the index tensors go (the data's device, so indexing needs no copy).

    Yields:
        ``int64`` index tensors of length ``batch_size`` (the last of an epoch may be shorter).
    """
    if batch_size < 1:
        raise LthkitError(f"batch_size must be at least 1, got {batch_size}")
    while True:
        # Drawn on the CPU so that the order is the same on every device.
        order = torch.randperm(num_examples, generator=generator).to(device)
        yield from order.split(batch_size)


# --- moved here from lthkit.runs.experiments ---
# --- running ------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _load_data_cached(data_config: DataConfig, device: str, root) -> MNISTData:
    return load_mnist(data_config, root=root, device=device)


def get_data(data_config: DataConfig, device: str | None = None, root=None) -> MNISTData:
    """MNIST for a config, loaded once per process (repeated runs in a notebook reuse it)."""
    return _load_data_cached(data_config, device or default_device(), None if root is None else str(root))
