"""lthkit.core.data: the real torchvision loader on MNIST-format files, the split, clear errors."""

import pytest
import torch

from lthkit.core.data import (MNIST_FILES, TENSOR_CACHE, DataConfig, batches, data_root, load_mnist, read_mnist_raw,
                              read_mnist_tensors)
from lthkit.errors import LthkitError
from tests.conftest import synthetic_images, write_idx


def test_loader_reads_idx_files_through_torchvision(mnist_root):
    train_images, train_labels, test_images, test_labels = read_mnist_raw(mnist_root, download=False)
    expected_images, expected_labels = synthetic_images(1200, seed=1)
    assert torch.equal(train_images, expected_images)
    assert torch.equal(train_labels, expected_labels)
    assert test_images.shape == (300, 28, 28)


def test_split_sizes_and_disjoint_validation(mnist_root):
    data = load_mnist(DataConfig(validation_size=200), root=mnist_root, download=False)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (1000, 200, 300)
    assert data.train_x.shape == (1000, 1, 28, 28) and data.train_x.dtype == torch.float32
    # Every training image lands in exactly one of train/validation.
    all_images = torch.cat([data.train_x, data.val_x]).flatten(1)
    assert torch.unique(all_images, dim=0).shape[0] == len(torch.unique(synthetic_images(1200, 1)[0].flatten(1), dim=0))


def test_split_is_seeded(mnist_root):
    first = load_mnist(DataConfig(validation_size=200, split_seed=3), root=mnist_root, download=False)
    again = load_mnist(DataConfig(validation_size=200, split_seed=3), root=mnist_root, download=False)
    other = load_mnist(DataConfig(validation_size=200, split_seed=4), root=mnist_root, download=False)
    assert torch.equal(first.val_y, again.val_y) and torch.equal(first.val_x, again.val_x)
    assert not torch.equal(first.val_x, other.val_x)


def test_subsets(mnist_root):
    data = load_mnist(DataConfig(validation_size=100, train_size=250, test_size=50), root=mnist_root, download=False)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (250, 100, 50)
    with pytest.raises(LthkitError, match="train_size 2000 is larger"):
        load_mnist(DataConfig(validation_size=100, train_size=2000), root=mnist_root, download=False)


@pytest.mark.parametrize("inputs, scale", [
    ("unit", lambda unit: unit),  # the default: the paper's pixels in [0, 1]
    ("standardized", lambda unit: (unit - 0.1307) / 0.3081),
])
def test_normalization(mnist_root, inputs, scale):
    data = load_mnist(DataConfig(validation_size=100, inputs=inputs), root=mnist_root, download=False)
    images, _ = synthetic_images(1200, seed=1)
    expected = scale(images.float() / 255)
    # The same pixel statistics, whatever the permutation.
    assert torch.allclose(torch.cat([data.train_x, data.val_x]).mean(), expected.mean(), atol=1e-5)


def test_inputs_default_to_the_papers_unit_pixels():
    assert DataConfig().inputs == "unit"


def test_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("LTHKIT_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("LTHKIT_DATA")
    assert data_root().name == "data"


def test_missing_files_name_the_folder_and_files(tmp_path):
    with pytest.raises(LthkitError) as error:
        read_mnist_raw(tmp_path, download=False)
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in MNIST_FILES:
        assert name in message


def test_damaged_gz_is_named(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", *synthetic_images(10, seed=1), compress=True)  # valid gzip, wrong MD5
    with pytest.raises(LthkitError, match="train-images-idx3-ubyte.gz.*MD5"):
        read_mnist_raw(tmp_path, download=False)


def test_unit_inputs_keep_pixels_in_zero_one_and_the_same_split(mnist_root):
    standardized = load_mnist(DataConfig(validation_size=100, inputs="standardized"), root=mnist_root, download=False)
    unit = load_mnist(DataConfig(validation_size=100), root=mnist_root, download=False)
    assert unit.train_x.min() >= 0 and unit.train_x.max() <= 1 and unit.train_x.max() > 0.9
    # The same images in the same order, only scaled differently.
    assert torch.allclose(standardized.train_x * 0.3081 + 0.1307, unit.train_x, atol=1e-6)
    assert torch.equal(standardized.val_y, unit.val_y) and torch.equal(standardized.test_y, unit.test_y)


def test_bad_data_config():
    for bad in (dict(validation_size=0), dict(validation_size=60000), dict(train_size=0), dict(test_size=-1),
                dict(inputs="raw")):
        with pytest.raises(LthkitError):
            DataConfig(**bad)


def test_batches_cover_each_epoch_once():
    generator = torch.Generator().manual_seed(0)
    stream = batches(10, 4, generator)
    epoch = torch.cat([next(stream) for _ in range(3)])  # 4 + 4 + 2
    assert sorted(epoch.tolist()) == list(range(10))
    with pytest.raises(LthkitError):
        next(batches(10, 0, generator))


def test_tensor_cache_is_written_then_read_without_torchvision(mnist_root, monkeypatch, capsys):
    import lthkit.core.data as data_module

    first = read_mnist_tensors(mnist_root, download=False)
    cache = mnist_root / "MNIST" / TENSOR_CACHE
    assert cache.is_file()
    payload = torch.load(cache, weights_only=True)
    assert sorted(payload["md5"]) == sorted(p.name for p in (mnist_root / "MNIST" / "raw").iterdir())

    def no_parse(*args, **kwargs):
        raise AssertionError("torchvision's parser ran although the tensor cache is valid")

    monkeypatch.setattr(data_module, "read_mnist_raw", no_parse)
    again = read_mnist_tensors(mnist_root, download=False)
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(first, again))
    assert capsys.readouterr().err == ""
    # load_mnist goes through the cache and gives what the raw files give.
    data = load_mnist(DataConfig(validation_size=200), root=mnist_root, download=False)
    monkeypatch.undo()
    reference = load_mnist(DataConfig(validation_size=200), root=mnist_root, download=False)
    assert torch.equal(data.train_x, reference.train_x) and torch.equal(data.test_y, reference.test_y)


def test_tensor_cache_of_other_files_or_broken_is_rebuilt_in_one_line(mnist_root, capsys):
    raw = mnist_root / "MNIST" / "raw"
    cache = mnist_root / "MNIST" / TENSOR_CACHE
    read_mnist_tensors(mnist_root, download=False)
    # Other images of the same size: the MD5 no longer matches, the cache is stale.
    write_idx(raw, "train", *synthetic_images(1200, seed=7), compress=False)
    train_images, train_labels, _, _ = read_mnist_tensors(mnist_root, download=False)
    assert torch.equal(train_images, synthetic_images(1200, seed=7)[0])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "tensor cache" in lines[0] and "other idx files" in lines[0] and "rebuilding" in lines[0]
    assert torch.equal(torch.load(cache, weights_only=True)["tensors"][0], train_images)  # rebuilt
    for broken in (b"not a torch file", b""):
        cache.write_bytes(broken)
        again = read_mnist_tensors(mnist_root, download=False)
        assert torch.equal(again[0], train_images)
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "is broken" in lines[0], lines
    torch.save({"md5": {}, "tensors": []}, cache)  # readable, but of no files
    assert torch.equal(read_mnist_tensors(mnist_root, download=False)[1], train_labels)
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_l2_inputs_are_keras_normalize_of_the_flattened_images():
    """Issue 28: --inputs l2 is the authors' scaling (keras.utils.normalize of the flattened uint8 images: each row
    divided by its L2 norm, a zero row left as it is), checked against a plain numpy implementation."""
    import numpy as np

    from lthkit.core.data import normalize_images

    images = torch.randint(0, 256, (5, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    images[3] = 0  # an empty image
    flat = images.numpy().reshape(5, -1).astype(np.float64)
    norms = np.linalg.norm(flat, 2, axis=-1, keepdims=True)
    norms[norms == 0] = 1
    expected = (flat / norms).astype(np.float32).reshape(5, 1, 28, 28)
    got = normalize_images(images, "l2")
    assert got.shape == (5, 1, 28, 28) and np.allclose(got.numpy(), expected, atol=1e-6)
    assert torch.allclose(got.flatten(1)[[0, 1, 2, 4]].norm(dim=1), torch.ones(4)) and got[3].abs().sum() == 0
