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
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ValidationError

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
    """The files a run would receive: ``{relative posix path: size in bytes}``; ``targets`` maps a path reached
    through a symlink to the file it resolves to."""

    root: Path
    files: dict[str, int]
    targets: dict[str, Path] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())

    def biggest(self, count: int = 5) -> list[tuple[str, int]]:
        return sorted(self.files.items(), key=lambda item: item[1], reverse=True)[:count]

    def secrets(self) -> list[str]:
        """Paths that look like credentials (see ``SECRET_PATTERNS``), by their own name or by the name of the
        file a symlink leads to."""
        found = []
        for path in self.files:
            names = [path.split("/")]
            if path in self.targets:
                names.append(list(self.targets[path].parts))
            if any(_looks_secret(parts) for parts in names):
                found.append(path)
        return found


def _looks_secret(parts: list[str]) -> bool:
    return any(part in SECRET_DIRS for part in parts[:-1]) or any(
        fnmatch.fnmatch(parts[-1], pattern) for pattern in SECRET_PATTERNS)


def _ignore_spec(root: Path) -> pathspec.GitIgnoreSpec:
    import pathspec

    lines = list(ALWAYS_IGNORED)
    for name in (".amlignore", ".gitignore"):  # Azure reads .amlignore, and .gitignore only without it
        ignore_file = root / name
        if ignore_file.is_file():
            lines += ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
            break
    return pathspec.GitIgnoreSpec.from_lines(lines)


def scan_snapshot(source_dir: str | os.PathLike, allow_symlinks: bool = False) -> Snapshot:
    """List the files of ``source_dir`` that a run would receive, with their sizes.

    Symlinks are followed only where they stay inside ``source_dir`` (anywhere with ``allow_symlinks``);
    a dangling link, a link leading out and a special file (device, FIFO, socket) are a ``ValidationError``
    naming them: the snapshot holds regular files only.
    """
    root = Path(source_dir)
    real_root = root.resolve()
    spec = _ignore_spec(root)
    files: dict[str, int] = {}
    targets: dict[str, Path] = {}

    def walk(folder: Path, prefix: str, ancestors: frozenset[Path] = frozenset()) -> None:
        resolved_folder = folder.resolve()
        if resolved_folder in ancestors:  # a link back up the tree: a cycle
            return
        ancestors = ancestors | {resolved_folder}
        for entry in sorted(os.scandir(folder), key=lambda each: each.name):
            relative = prefix + entry.name
            path = Path(entry.path)
            is_dir = entry.is_dir(follow_symlinks=True)  # False for a dangling link
            if spec.match_file(relative + "/" if is_dir else relative):
                continue
            target = _link_target(path, relative, real_root, allow_symlinks) if entry.is_symlink() else None
            if is_dir:
                walk(path, relative + "/", ancestors)
                continue
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise ValidationError("source_dir", "a folder of regular files (no device, FIFO or socket)",
                                      str(root), hint=f"{relative} is a special file: move it out, or list it "
                                                      "in .amlignore.")
            files[relative] = info.st_size
            if target is not None:
                targets[relative] = target

    walk(root, "")
    return Snapshot(root=root, files=files, targets=targets)


def _link_target(link: Path, relative: str, real_root: Path, allow_symlinks: bool) -> Path:
    """Where symlink ``link`` leads; ``ValidationError`` when nowhere, or out of the source folder unasked."""
    try:
        target = link.resolve(strict=True)
    except (FileNotFoundError, RuntimeError) as exc:
        raise ValidationError("source_dir", "a folder without dangling symlinks", str(real_root),
                              hint=f"{relative} -> {os.readlink(link)} leads nowhere ({exc.__class__.__name__}): "
                                   "remove it, or list it in .amlignore.") from exc
    if not allow_symlinks and target != real_root and real_root not in target.parents:
        raise ValidationError("source_dir", "symlinks that stay inside the source folder", str(real_root),
                              hint=f"{relative} -> {target} leads out of it: copy the file in, or pass "
                                   "allow_symlinks=True to upload what it points to.")
    return target


def copy_snapshot(snapshot: Snapshot, destination: Path) -> None:
    """Copy the snapshot's files (and only those) under ``destination``."""
    import shutil

    for relative in snapshot.files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snapshot.targets.get(relative, snapshot.root / relative), target)  # the file, not a link
