"""The snapshot: the files of the source directory that a run receives.

Azure ML v1 uploads the source directory as a snapshot of at most 300 MB and
2,000 files, leaving out what ``.amlignore`` (or, without one, ``.gitignore``)
names. kerasjob lists the same files before anything is uploaded, refuses a
snapshot over those limits (naming its biggest files) and refuses files that
look like secrets unless the caller opts in.

Example:
    >>> from kerasjob.job import DEFAULT_SOURCE_DIR
    >>> snap = scan_snapshot(DEFAULT_SOURCE_DIR)
    >>> "keras_mnist.py" in snap.files
    True
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

__all__ = ["ALWAYS_IGNORED", "MAX_SNAPSHOT_BYTES", "MAX_SNAPSHOT_FILES", "SECRET_DIRS", "SECRET_PATTERNS", "Snapshot",
           "copy_snapshot", "scan_snapshot"]

MAX_SNAPSHOT_BYTES = 300 * 1024 * 1024
MAX_SNAPSHOT_FILES = 2000

#: Always left out, as Azure does for its own bookkeeping and as nobody wants uploaded.
ALWAYS_IGNORED = ("__pycache__/", "*.pyc", ".git/", ".ipynb_checkpoints/", "outputs/", "logs/")

#: Names that hold credentials far more often than training code.
SECRET_PATTERNS = (
    "config.json", ".env", ".env.*", "*.pem", "*.key", "*.pfx", "*.p12", "id_rsa", "id_ed25519",
    "credentials", "credentials.json", "*credentials*.json", ".git-credentials", ".netrc", ".npmrc", ".pypirc",
)
SECRET_DIRS = (".azureml", ".azure", ".aws", ".ssh")


@dataclass(frozen=True)
class Snapshot:
    """The files a run would receive: ``{relative posix path: size in bytes}``."""

    root: Path
    files: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())

    def biggest(self, count: int = 5) -> list[tuple[str, int]]:
        return sorted(self.files.items(), key=lambda item: item[1], reverse=True)[:count]

    def secrets(self) -> list[str]:
        """Paths that look like credentials (see ``SECRET_PATTERNS``)."""
        found = []
        for path in self.files:
            parts = path.split("/")
            if any(part in SECRET_DIRS for part in parts[:-1]) or any(
                fnmatch.fnmatch(parts[-1], pattern) for pattern in SECRET_PATTERNS
            ):
                found.append(path)
        return found


def _ignore_spec(root: Path) -> pathspec.GitIgnoreSpec:
    import pathspec

    lines = list(ALWAYS_IGNORED)
    for name in (".amlignore", ".gitignore"):  # Azure reads .amlignore, and .gitignore only without it
        ignore_file = root / name
        if ignore_file.is_file():
            lines += ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
            break
    return pathspec.GitIgnoreSpec.from_lines(lines)


def scan_snapshot(source_dir: str | os.PathLike) -> Snapshot:
    """List the files of ``source_dir`` that a run would receive, with their sizes."""
    root = Path(source_dir)
    spec = _ignore_spec(root)
    files: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        relative_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not spec.match_file(prefix + d + "/"))
        for filename in sorted(filenames):
            relative = prefix + filename
            if not spec.match_file(relative):
                files[relative] = (Path(dirpath) / filename).stat().st_size
    return Snapshot(root=root, files=files)


def copy_snapshot(snapshot: Snapshot, destination: Path) -> None:
    """Copy the snapshot's files (and only those) under ``destination``."""
    import shutil

    for relative in snapshot.files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snapshot.root / relative, target)
