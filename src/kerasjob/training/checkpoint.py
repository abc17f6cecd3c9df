"""Checkpoints at the end of every epoch, and resuming from the newest: what both packaged trainers share.

A checkpoint is one ``.npz`` file (NumPy, no pickle): every array training
carries from one epoch to the next (weights, the model's other variables,
the optimizer's state) plus a JSON record of the epoch just finished, the
shuffling seed (each epoch's order is ``epoch_order(seed, epoch)``, so the
seed is the whole shuffling state) and the metrics logged so far. It is
written under a temporary name and renamed into place, so a process killed at
any moment leaves either the previous checkpoint or the new one, never half of
one; the newest ``KEEP`` are kept.

Standard library and NumPy only.

Example:
    >>> save_checkpoint(Path("outputs/checkpoints"), epoch=0, arrays=trainer.state(),  # doctest: +SKIP
    ...                 record={"seed": 1, "history": {"loss": [0.3]}})
    >>> latest_checkpoint(Path("outputs/checkpoints")).epoch                            # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CHECKPOINT_DIR", "KEEP", "Checkpoint", "checkpoint_dir_from", "latest_checkpoint",
           "save_checkpoint", "train_epochs"]

DEFAULT_CHECKPOINT_DIR = "outputs/checkpoints"
#: How many checkpoints stay on disk: the newest, and one before it.
KEEP = 2
_NAME = re.compile(r"^epoch-(\d{6})\.npz$")
_RECORD = "__record__"


@dataclass
class Checkpoint:
    """A checkpoint read back: the epoch it ends (0-based), the arrays, and its record."""

    epoch: int
    arrays: list[Any]
    record: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def checkpoint_dir_from(text: str | None) -> Path | None:
    """The ``--checkpoint-dir`` value as a folder; ``""`` or ``none`` turns checkpointing off."""
    if text is None or text.strip().lower() in ("", "none", "off"):
        return None
    return Path(text)


def _fsync_directory(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def save_checkpoint(folder: Path, epoch: int, arrays: list[Any], record: dict[str, Any]) -> Path:
    """Write the checkpoint of ``epoch`` atomically into ``folder``; keep the newest ``KEEP``."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"epoch-{epoch:06d}.npz"
    partial = folder / f".{final.name}.{os.getpid()}.partial"
    payload = {f"a{index:05d}": array for index, array in enumerate(arrays)}
    payload[_RECORD] = np.array(json.dumps({**record, "epoch": epoch, "arrays": len(arrays)}))
    with open(partial, "wb") as stream:
        np.savez(stream, **payload)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, final)
    _fsync_directory(folder)
    for old in sorted(_checkpoints(folder), reverse=True)[KEEP:]:
        old[1].unlink(missing_ok=True)
    return final


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def latest_checkpoint(folder: Path | None) -> Checkpoint | None:
    """The newest checkpoint in ``folder`` that reads back whole (None: none does)."""
    import numpy as np

    if folder is None:
        return None
    for epoch, path in sorted(_checkpoints(folder), reverse=True):
        try:
            with np.load(path, allow_pickle=False) as stored:
                record = json.loads(str(stored[_RECORD]))
                arrays = [stored[f"a{index:05d}"] for index in range(int(record["arrays"]))]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            continue  # not a whole checkpoint (cannot happen through save_checkpoint): try the one before
        return Checkpoint(epoch=epoch, arrays=arrays, record=record, path=path)
    return None


_LOGGED = "logged.json"


def _logged_through(folder: Path) -> int:
    try:
        return int(json.loads((folder / _LOGGED).read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def _mark_logged(folder: Path, epoch: int) -> None:
    partial = folder / f".{_LOGGED}.{os.getpid()}.partial"
    partial.write_text(json.dumps({"epoch": epoch}), encoding="utf-8")
    os.replace(partial, folder / _LOGGED)


def train_epochs(trainer: Any, epochs: int, folder: Path | None,
                 report: Callable[[int, dict[str, Any]], None],
                 log: Callable[[str], None] = print,
                 show: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, list[Any]]:
    """Train ``trainer`` (a ``fused_epoch.Trainer``) up to ``epochs``, resuming from ``folder``'s newest checkpoint.

    After each epoch: the checkpoint (with the history so far), then ``report(epoch, logs)`` (the trainer logs
    its metrics there), then a marker that the epoch was reported, then ``show(epoch, logs)`` (the epoch's line
    on stdout). A resumed run reports only the epochs the marker does not cover, so no epoch's metrics are
    lost and none is logged twice unless the process dies between ``report`` and the marker (a file rename
    apart). Returns Keras's history dict over all epochs, the resumed ones included.
    """
    history: dict[str, list[Any]] = {}
    start = 0
    checkpoint = latest_checkpoint(folder)
    if checkpoint is not None and folder is not None:
        try:
            trainer.load_state(checkpoint.arrays)
        except ValueError as exc:
            log(f"Checkpoint {checkpoint.path} not used ({exc}): training from the start.")
        else:
            trainer.seed = int(checkpoint.record["seed"])  # the shuffling continues with the same orders
            history = {name: list(values) for name, values in checkpoint.record.get("history", {}).items()}
            start = checkpoint.epoch + 1
            log(f"Resuming from checkpoint {checkpoint.path}: epoch {start} of {epochs} was the last one done.")
            for epoch in range(_logged_through(folder) + 1, start):  # done, but not yet reported when it stopped
                report(epoch, {name: values[epoch] for name, values in history.items() if epoch < len(values)})
    for epoch in range(start, epochs):
        logs = trainer.train_epoch(epoch)
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        if folder is not None:
            save_checkpoint(folder, epoch, trainer.state(), {"seed": trainer.seed, "history": history})
        report(epoch, logs)
        if folder is not None:
            _mark_logged(folder, epoch)
        if show is not None:
            show(epoch, logs)
    return history
