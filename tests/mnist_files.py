"""Tiny MNIST-shaped IDX files that tests write for themselves."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


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
