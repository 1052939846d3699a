"""Fashion-MNIST as a second data set: the same loader, checks and one-line errors as MNIST, MD5-verified."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from pathlib import Path

import pytest
import torch
from conftest import synthetic_images, write_idx

from lthkit.cli import main
from lthkit.core import data as data_module
from lthkit.core.data import DATASETS, MNIST_FILES, DataConfig, load_mnist, normalize_images, read_mnist_raw
from lthkit.errors import LthkitError
from lthkit.imp.config import LotteryConfig

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """A stand-in for Debian's package: four recompressed .gz files of synthetic images, and their idx MD5s."""
    folder = tmp_path / "package"
    folder.mkdir()
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    write_idx(extracted, "train", *synthetic_images(1200, seed=11), compress=False)
    write_idx(extracted, "t10k", *synthetic_images(300, seed=12), compress=False)
    md5s = {}
    for name in MNIST_FILES:
        payload = (extracted / name[:-3]).read_bytes()
        md5s[name[:-3]] = hashlib.md5(payload).hexdigest()
        (folder / name).write_bytes(gzip.compress(payload, mtime=0))  # not torchvision's bytes: lthkit extracts
    monkeypatch.setitem(DATASETS, "fashion_mnist", dataclasses.replace(
        DATASETS["fashion_mnist"], system_folders=(str(folder),), idx_md5=md5s))
    return folder


def test_the_package_files_are_copied_extracted_and_md5_checked(package, tmp_path):
    root = tmp_path / "data"
    train_images, train_labels, test_images, test_labels = read_mnist_raw(root, download=False,
                                                                          dataset="fashion_mnist")
    expected_images, expected_labels = synthetic_images(1200, seed=11)
    assert torch.equal(train_images, expected_images) and torch.equal(train_labels, expected_labels)
    assert len(test_images) == 300 and len(test_labels) == 300
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted([*MNIST_FILES, *(n[:-3] for n in MNIST_FILES)])
    assert not (root / "MNIST").exists()  # its own folder, beside MNIST's
    data = load_mnist(DataConfig(dataset="fashion_mnist", validation_size=200, inputs="standardized"), root=root,
                      download=False)
    assert len(data.train_y) == 1000
    mean, std = DATASETS["fashion_mnist"].mean, DATASETS["fashion_mnist"].std
    assert torch.allclose(data.test_x, ((test_images.float() / 255 - mean) / std).unsqueeze(1))


def test_a_package_file_with_other_data_is_refused_and_nothing_is_left(package, tmp_path):
    (package / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(12)))
    root = tmp_path / "data"
    with pytest.raises(LthkitError, match=r"Fashion-MNIST in .* is damaged: train-labels-idx1-ubyte.gz fails its MD5"):
        read_mnist_raw(root, download=False, dataset="fashion_mnist")
    assert not root.exists()


def test_a_truncated_gz_is_named(package, tmp_path):
    payload = (package / "t10k-images-idx3-ubyte.gz").read_bytes()
    (package / "t10k-images-idx3-ubyte.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(LthkitError, match="t10k-images-idx3-ubyte.gz does not decompress") as error:
        read_mnist_raw(tmp_path / "data", download=False, dataset="fashion_mnist")
    assert "\n" not in str(error.value)


def test_missing_fashion_mnist_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(DATASETS, "fashion_mnist",
                        dataclasses.replace(DATASETS["fashion_mnist"], system_folders=(str(tmp_path / "none"),)))
    with pytest.raises(LthkitError) as error:
        read_mnist_raw(tmp_path / "data", download=False, dataset="fashion_mnist")
    message = str(error.value)
    assert message.startswith(f"Fashion-MNIST not found in {tmp_path / 'data' / 'FashionMNIST' / 'raw'}")
    assert "apt-get install dataset-fashion-mnist" in message and "\n" not in message
    assert not (tmp_path / "data").exists()


def test_damaged_extracted_files_are_named_as_for_mnist(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", *synthetic_images(100, seed=1), compress=False)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(LthkitError, match="Fashion-MNIST file .*train-images-idx3-ubyte is damaged: truncated"):
        read_mnist_raw(tmp_path, download=False, dataset="fashion_mnist")


def test_the_dataset_field_keeps_mnist_keys_and_checks_its_value():
    assert "dataset" not in LotteryConfig().to_dict()["data"]  # every cached MNIST run keeps its key
    fashion = LotteryConfig(data={"dataset": "fashion_mnist"})
    assert fashion.to_dict()["data"]["dataset"] == "fashion_mnist" and fashion.key() != LotteryConfig().key()
    assert LotteryConfig.from_dict(json.loads(json.dumps(fashion.to_dict()))) == fashion
    with pytest.raises(LthkitError, match="unknown data set 'cifar10'"):
        DataConfig(dataset="cifar10")
    with pytest.raises(LthkitError, match="unknown data set"):
        normalize_images(torch.zeros(1, 28, 28, dtype=torch.uint8), "standardized", "svhn")


def test_run_takes_dataset_and_reproduce_refuses_it(package, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["run", "--dataset", "fashion_mnist", "--rounds", "1", "--data", str(tmp_path / "data"),
                   "--cache", str(tmp_path / "cache"), "--out", str(out), "--validation-size", "200",
                   "--train-size", "500", "--test-size", "300", "--iterations", "20", "--eval-every", "10",
                   "--batch-size", "32", "--no-progress"])
    assert status == 0
    config = json.loads((out / "results.json").read_text())["runs"][0]["config"]
    assert config["data"]["dataset"] == "fashion_mnist"
    capsys.readouterr()
    assert main(["reproduce", "--dataset", "fashion_mnist", "--out", str(tmp_path / "paper")]) == 2
    assert "reproduce compares with the paper's MNIST results" in capsys.readouterr().err
    assert main(["data", "--dataset", "fashion_mnist", "--data", str(tmp_path / "data"), "--no-download"]) == 0
    assert "Fashion-MNIST ready" in capsys.readouterr().out


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debians_fashion_mnist_is_the_original(tmp_path):
    train_images, train_labels, test_images, test_labels = read_mnist_raw(tmp_path, download=False,
                                                                          dataset="fashion_mnist")
    raw = tmp_path / "FashionMNIST" / "raw"
    for name, md5 in DATASETS["fashion_mnist"].idx_md5.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5
    assert (len(train_images), len(test_images)) == (60_000, 10_000)
    assert torch.bincount(train_labels).tolist() == [6000] * 10 and torch.bincount(test_labels).tolist() == [1000] * 10
    pixels = train_images.double() / 255
    assert round(float(pixels.mean()), 4) == DATASETS["fashion_mnist"].mean
    assert round(float(pixels.std()), 4) == DATASETS["fashion_mnist"].std
    assert data_module.get_dataset("fashion_mnist").classes[9] == "Ankle boot"
