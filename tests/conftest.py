"""Shared fixtures: an isolated kerasjob home, tiny MNIST files, a workspace config."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True, magic: int | None = None) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed unless told otherwise."""
    magic = magic if magic is not None else 0x0800 | array.ndim
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def make_tiny_mnist(folder: Path, train: int = 300, test: int = 100, *, compress: bool = True, seed: int = 0) -> Path:
    """Four IDX files whose digits are easy to learn: each class lights its own band of pixels."""
    rng = np.random.default_rng(seed)

    def split(count: int):
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        images = rng.integers(0, 40, size=(count, 28, 28)).astype(np.uint8)
        for index, label in enumerate(labels):
            images[index, 2 * label + 3: 2 * label + 5, :] = 255
        return images, labels

    for prefix, count in (("train", train), ("t10k", test)):
        images, labels = split(count)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress=compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress=compress)
    return folder


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own kerasjob home, cache and MLflow store, and no waiting between polls/retries."""
    import tenacity

    import kerasjob.backends.azureml as azureml_backend
    import kerasjob.retry as retry

    home = tmp_path / "kerasjob-home"
    monkeypatch.setenv("KERASJOB_HOME", str(home))
    monkeypatch.setenv("KERASJOB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(azureml_backend, "DEFAULT_POLL_SECONDS", 0)
    monkeypatch.setattr(retry.policy, "wait", tenacity.wait_none())
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    return make_tiny_mnist(tmp_path / "tiny-mnist")


@pytest.fixture
def workspace_config(tmp_path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subscription_id": "00000000-0000-0000-0000-000000000000",
                                "resource_group": "rg", "workspace_name": "ws"}))
    return path


@pytest.fixture
def shared_mnist() -> Path:
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    return SHARED_MNIST
