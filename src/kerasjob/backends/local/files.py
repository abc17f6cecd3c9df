"""The layout of a local run's folder, shared by the caller, the run handle and the supervisor.

``$KERASJOB_HOME/runs/<id>/`` holds the job's source, ``outputs/``, ``logs/`` and small JSON files:
``state.json`` (how the run stands: written first by the caller, ``preparing`` with the caller's identity, then
by the supervisor), ``launch.json`` (what to run), ``supervisor.json`` (the supervisor's pid and start time,
written by the caller as soon as it started it), ``run_id.json`` (the MLflow run, once created) and
``logs/metrics.logged`` (how much of the metrics file is in MLflow already). ``runs/<MLflow run id>`` links to
the same folder.

Example:
    >>> runs_root().name
    'runs'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import tracking
from ...errors import KerasJobError

__all__ = ["DRIVER_LOG", "LAUNCH_FILE", "LOGGED_FILE", "METRICS_ENV", "METRICS_FILE", "RUN_ID_FILE", "STATE_FILE",
           "SUPERVISOR_FILE", "SUPERVISOR_LOG", "CorruptRunFile", "read_json", "read_run_id", "runs_root",
           "write_json_atomically"]

LAUNCH_FILE = "launch.json"
STATE_FILE = "state.json"
RUN_ID_FILE = "run_id.json"
DRIVER_LOG = "logs/driver_log.txt"
METRICS_FILE = "logs/metrics.jsonl"
METRICS_ENV = "KERASJOB_METRICS_FILE"
SUPERVISOR_FILE = "supervisor.json"
SUPERVISOR_LOG = "logs/supervisor.log"
LOGGED_FILE = "logs/metrics.logged"


class CorruptRunFile(KerasJobError):
    """A run folder's JSON file cannot be read (truncated, edited by hand, a full disk): names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path} cannot be read ({problem}). The run's record is damaged: look at the run folder, "
                         f"or remove it to forget the run.")


def runs_root() -> Path:
    """Where local run folders live: ``$KERASJOB_HOME/runs``."""
    return tracking.kerasjob_home() / "runs"


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` whole or not at all: a temporary file, flushed, then renamed over it. On a
    full disk the old file stays as it was and ``OSError`` is raised (the temporary file removed)."""
    import threading

    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(json.dumps(document, indent=1))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """``path``'s JSON object, None when there is no such file; ``CorruptRunFile`` when it is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptRunFile(path, str(exc)) from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptRunFile(path, f"not JSON: {exc}" if text else "empty file") from exc
    if not isinstance(document, dict):
        raise CorruptRunFile(path, "not a JSON object")
    return document


def read_run_id(run_dir: Path) -> str | None:
    """The run's MLflow run id, once the supervisor has created the MLflow run."""
    document = read_json(run_dir / RUN_ID_FILE)
    return None if document is None else str(document["run_id"])
