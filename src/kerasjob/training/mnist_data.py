"""Find, check and load the four MNIST IDX files.

Shared by the training script (which runs standalone, on Azure and locally) and
by kerasjob's preflight, so both judge a data folder the same way. Standard
library only at import time; NumPy is imported by ``load_mnist``.

Example:
    >>> files = find_mnist_files("../shared/data/mnist")  # doctest: +SKIP
    >>> check_mnist_files(files)                            # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["MNIST_FILES", "MnistFormatError", "check_mnist_files", "find_mnist_files", "load_mnist", "read_idx",
           "read_idx_header"]

#: role -> file name without ``.gz``, as every MNIST mirror names them.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_IMAGES_MAGIC = 2051  # unsigned byte, 3 dimensions
_LABELS_MAGIC = 2049  # unsigned byte, 1 dimension
_IMAGE_SIDE = 28


class MnistFormatError(ValueError):
    """A data folder lacks an MNIST file, or one of them is malformed."""


def find_mnist_files(folder: str | os.PathLike) -> dict[str, Path]:
    """Return ``{role: path}`` for the four MNIST files found under ``folder``.

    The search is recursive; each file may be gzip-compressed (``.gz``) or not.
    Where a name occurs more than once the shallowest path wins.
    """
    root = Path(folder)
    if not root.is_dir():
        raise MnistFormatError(f"MNIST data folder {str(root)!r} does not exist or is not a folder.")
    wanted = {name: role for role, name in MNIST_FILES.items()}
    wanted.update({name + ".gz": role for role, name in MNIST_FILES.items()})
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            role = wanted.get(filename)
            if role and role not in found:
                found[role] = Path(dirpath) / filename
    missing = [MNIST_FILES[role] + "[.gz]" for role in MNIST_FILES if role not in found]
    if missing:
        raise MnistFormatError(
            f"MNIST data folder {str(root)!r} lacks {', '.join(missing)}. "
            "Expected the four IDX files (train/t10k images and labels), gzip-compressed or not."
        )
    return found


def _open(path: Path) -> gzip.GzipFile | io.BufferedReader:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _uncompressed_size(path: Path) -> int:
    if path.suffix != ".gz":
        return path.stat().st_size
    # A gzip member ends with the uncompressed size modulo 2**32 (RFC 1952): a
    # truncated or corrupted file almost never ends with the right number.
    with open(path, "rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return struct.unpack("<I", handle.read(4))[0]


def read_idx_header(path: str | os.PathLike) -> tuple[int, tuple[int, ...]]:
    """Return ``(magic, dimensions)`` of an IDX file, checking its size.

    Raises ``MnistFormatError`` naming the file when the header cannot be read
    or the file is shorter or longer than its header says.
    """
    path = Path(path)
    try:
        with _open(path) as handle:
            head = handle.read(4)
            if len(head) < 4:
                raise MnistFormatError(f"{path}: too short to be an IDX file ({len(head)} bytes).")
            magic = struct.unpack(">I", head)[0]
            ndim = magic & 0xFF
            if magic >> 8 != 0x08 or ndim not in (1, 3):
                raise MnistFormatError(
                    f"{path}: wrong magic number {magic} (expected {_IMAGES_MAGIC} for images "
                    f"or {_LABELS_MAGIC} for labels)."
                )
            raw = handle.read(4 * ndim)
            if len(raw) < 4 * ndim:
                raise MnistFormatError(f"{path}: truncated IDX header.")
            dims = struct.unpack(f">{ndim}I", raw)
        expected = 4 + 4 * ndim + _product(dims)
        actual = _uncompressed_size(path)
        if actual % 2**32 != expected % 2**32:
            raise MnistFormatError(
                f"{path}: truncated or corrupted: its header promises {expected} bytes, "
                f"the file holds {actual}."
            )
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise MnistFormatError(f"{path}: cannot be read as an IDX file ({exc}).") from exc
    return magic, dims


def read_idx(path: str | os.PathLike) -> NDArray[np.uint8]:
    """The uint8 array an IDX file holds (``(N, 28, 28)`` images or ``(N,)`` labels), its header checked first."""
    import numpy as np

    magic, dims = read_idx_header(path)
    with _open(Path(path)) as handle:
        raw = handle.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def _product(dims: tuple[int, ...]) -> int:
    total = 1
    for dim in dims:
        total *= dim
    return total


def check_mnist_files(files: dict[str, Path]) -> dict[str, int]:
    """Check the four files' headers and counts; return ``{"train": n, "test": m}``."""
    counts = {}
    for split in ("train", "test"):
        images, labels = files[f"{split}_images"], files[f"{split}_labels"]
        magic, dims = read_idx_header(images)
        if magic != _IMAGES_MAGIC or dims[1:] != (_IMAGE_SIDE, _IMAGE_SIDE):
            raise MnistFormatError(
                f"{images}: not an MNIST image file (magic {magic}, dimensions {dims}; "
                f"expected magic {_IMAGES_MAGIC} and N x 28 x 28)."
            )
        magic, label_dims = read_idx_header(labels)
        if magic != _LABELS_MAGIC:
            raise MnistFormatError(
                f"{labels}: not an MNIST label file (magic {magic}; expected {_LABELS_MAGIC})."
            )
        if label_dims[0] != dims[0]:
            raise MnistFormatError(
                f"{images} holds {dims[0]} images but {labels} holds {label_dims[0]} labels."
            )
        counts[split] = dims[0]
    return counts


def load_mnist(folder: str | os.PathLike,
               ) -> tuple[NDArray[np.float32], NDArray[np.uint8], NDArray[np.float32], NDArray[np.uint8]]:
    """Load MNIST as ``(x_train, y_train, x_test, y_test)``.

    Images are float32 in [0, 1], flattened to 784 values; labels are uint8
    class indices (sparse, not one-hot).
    """
    import numpy as np

    files = find_mnist_files(folder)
    check_mnist_files(files)

    def read(role: str) -> NDArray[np.uint8]:
        with _open(files[role]) as handle:
            raw = handle.read()
        offset = 16 if role.endswith("images") else 8
        return np.frombuffer(raw, dtype=np.uint8, offset=offset)

    def images(role: str) -> NDArray[np.float32]:
        return (read(role).reshape(-1, _IMAGE_SIDE * _IMAGE_SIDE) / np.float32(255)).astype(np.float32)

    return images("train_images"), read("train_labels"), images("test_images"), read("test_labels")
