"""A local data folder, checked once: every MNIST file read to its end, the verdict remembered.

A ``.gz`` corrupted mid-file keeps a sound header and a plausible length, so the header check alone lets it
through and the run fails a minute later in the script. Here each file is decompressed whole (gzip checks its
CRC-32 and length at the end) and its content hashed. The verdict is cached by path, size and modification
time (in ``default_cache_dir()/data-verdicts.json``), so the next submit of the same folder pays nothing.
The content digests also describe the folder as an MLflow dataset (name, digest, source).

Example:
    >>> verify_mnist_folder("../shared/data/mnist")                   # doctest: +SKIP
    >>> describe_dataset(Path("../shared/data/mnist"))["digest"]      # doctest: +SKIP
    'a1b2c3d4e5f6'
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import zlib
from pathlib import Path
from typing import Any

from .training.mnist_data import MnistFormatError, check_mnist_files, find_mnist_files

__all__ = ["default_cache_dir", "describe_dataset", "verify_mnist_folder"]

VERDICTS_FILE = "data-verdicts.json"
_BLOCK = 1 << 20
MAX_DESCRIBED_FILES = 10_000  # a huge folder is described by its first files: the digest stays cheap


def default_cache_dir() -> Path:
    """``KERASJOB_CACHE_DIR``, else the user's cache directory (``~/.cache/kerasjob`` on Linux)."""
    configured = os.environ.get("KERASJOB_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("kerasjob"))


def _cache_path() -> Path:
    return default_cache_dir() / VERDICTS_FILE


def _load_verdicts() -> dict[str, Any]:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_verdicts(verdicts: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only costs the next check its time."""
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(verdicts))
        os.replace(temporary, path)
    except OSError:
        pass


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _content_sha256(path: Path) -> str:
    """The sha256 of the file's (uncompressed) content; reading a ``.gz`` to its end checks its CRC and length."""
    digest = hashlib.sha256()
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile ("CRC check failed") is an OSError
        raise MnistFormatError(f"{path}: corrupted: it cannot be decompressed to its end ({exc}).") from exc
    return digest.hexdigest()


def _file_digests(folder: Path, files: list[Path]) -> dict[str, str]:
    """``{file name: content sha256}``, from the cache where the file has not changed since."""
    verdicts = _load_verdicts()
    digests, changed = {}, False
    for path in files:
        key = _key(path)
        if key not in verdicts:
            verdicts[key] = _content_sha256(path)
            changed = True
        digests[path.name] = verdicts[key]
    if changed:
        _save_verdicts(verdicts)
    return digests


def verify_mnist_folder(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Check the four MNIST files of ``folder`` (headers, counts, every byte); return their content digests.

    Raises ``MnistFormatError`` naming the faulty file.
    """
    files = find_mnist_files(folder)
    try:
        check_mnist_files(files)  # headers first: their errors say more than a failed decompression
    except MnistFormatError as error:
        raise _truncated_gzip(sorted(files.values())) or error from None
    return _file_digests(Path(folder), sorted(files.values()))


def _truncated_gzip(files: list[Path]) -> MnistFormatError | None:
    """A ``.gz`` cut short says so, with its real size: the header check reads the size its last four bytes
    claim, which in a cut file are compressed data (it said "the file holds 2395264231 bytes" of 10,000)."""
    for path in files:
        if path.suffix != ".gz":
            continue
        try:
            with gzip.open(path, "rb") as stream:
                while stream.read(1 << 20):
                    pass
        except EOFError:
            return MnistFormatError(f"{path}: truncated: the compressed file ends after {path.stat().st_size} bytes, "
                                    "before its end-of-stream marker. Download it again.")
        except (OSError, zlib.error):
            continue  # corrupted rather than cut short: the header check's message stands
    return None


def describe_dataset(folder: Path) -> dict[str, str]:
    """The folder as an MLflow dataset: ``{"name", "digest", "source"}``.

    For a folder of MNIST files the digest is that of their content (cached); for any other folder, of its
    files' names, sizes and modification times (a custom script's data is not read here).
    """
    try:
        digests = verify_mnist_folder(folder)
        name = "mnist"
    except MnistFormatError:
        files = itertools.islice((path for path in folder.rglob("*") if path.is_file()), MAX_DESCRIBED_FILES)
        digests = {str(path.relative_to(folder)): f"{path.stat().st_size}:{path.stat().st_mtime_ns}"
                   for path in files}
        name = folder.name or "data"
    combined = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()
    return {"name": name, "digest": combined[:12], "source": json.dumps({"uri": str(folder.resolve())})}
