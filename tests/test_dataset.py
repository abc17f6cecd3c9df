"""MNIST download: mirrors in turn, content digests, atomic cache; and the IDX checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kerasjob.dataset import MNIST_SHA256, download_mnist, mnist_urls
from kerasjob.errors import DataError
from kerasjob.training.mnist_data import MnistFormatError, check_mnist_files, find_mnist_files, load_mnist

from mnist_files import make_tiny_mnist


def test_download_tries_the_next_mirror_and_verifies_content(shared_mnist, tmp_path, monkeypatch):
    broken = tmp_path / "broken-mirror"
    make_tiny_mnist(broken)  # right names, wrong content: its digests do not match
    monkeypatch.setenv("KERASJOB_MNIST_MIRRORS", f"{(tmp_path / 'empty').as_uri()}/ {broken.as_uri()}/ "
                                                 f"{shared_mnist.as_uri()}/")
    folder = download_mnist(tmp_path / "cache", progress=False)
    assert sorted(p.name for p in folder.glob("*.gz")) == sorted(name + ".gz" for name in MNIST_SHA256)
    assert not list(folder.glob(".*part"))  # no partial file left behind
    assert check_mnist_files(find_mnist_files(folder)) == {"train": 60000, "test": 10000}
    # Second call: served from the cache, no mirror needed.
    monkeypatch.setenv("KERASJOB_MNIST_MIRRORS", (tmp_path / "empty").as_uri())
    assert download_mnist(tmp_path / "cache", progress=False) == folder


def test_download_failing_everywhere_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASJOB_MNIST_MIRRORS", f"{(tmp_path / 'a').as_uri()}/ {(tmp_path / 'b').as_uri()}/")
    with pytest.raises(DataError) as caught:
        download_mnist(tmp_path / "cache", progress=False)
    message = str(caught.value)
    assert "/a/train-images-idx3-ubyte.gz" in message and "/b/train-images-idx3-ubyte.gz" in message
    assert "`data`" in message  # the command names it --data-folder (tests/test_cli_bad_inputs.py)
    assert list((tmp_path / "cache" / "mnist").glob("*.gz")) == []


def test_the_default_mirror_is_azures_open_datasets_copy(monkeypatch):
    monkeypatch.delenv("KERASJOB_MNIST_MIRRORS", raising=False)
    assert mnist_urls()[0] == "https://azureopendatastorage.blob.core.windows.net/mnist/train-images-idx3-ubyte.gz"


def test_files_are_found_recursively_gzipped_or_not(tmp_path):
    make_tiny_mnist(tmp_path / "nested" / "deeper", compress=False)
    files = find_mnist_files(tmp_path)
    assert files["train_images"].name == "train-images-idx3-ubyte"
    assert check_mnist_files(files) == {"train": 300, "test": 100}
    x_train, y_train, x_test, y_test = load_mnist(tmp_path)
    assert x_train.shape == (300, 784) and x_train.dtype.name == "float32" and float(x_train.max()) <= 1.0
    assert y_test.shape == (100,) and y_test.dtype.name == "uint8"


def test_an_empty_folder_names_every_missing_file(tmp_path):
    with pytest.raises(MnistFormatError) as caught:
        find_mnist_files(tmp_path)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert name in str(caught.value)


def test_the_training_script_refuses_bad_data_by_name(tmp_path):
    import subprocess
    import sys

    folder = make_tiny_mnist(tmp_path / "data")
    target = folder / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(gzip.compress(gzip.decompress(target.read_bytes())[:-10]))
    script = Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training" / "keras_mnist.py"
    done = subprocess.run([sys.executable, str(script), "--data-folder", str(folder)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert "t10k-images-idx3-ubyte.gz" in done.stderr and "truncated" in done.stderr
