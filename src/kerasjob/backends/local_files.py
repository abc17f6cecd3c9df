"""The layout of a local run's folder, shared by the caller, the run handle and the supervisor.

``$KERASJOB_HOME/runs/<id>/`` holds the job's source, ``outputs/``, ``logs/`` and three small JSON files:
``launch.json`` (what to run), ``run_id.json`` (the MLflow run, once created) and ``state.json`` (how the
run stands, written by the supervisor). ``runs/<MLflow run id>`` links to the same folder.

Example:
    >>> runs_root().name
    'runs'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import tracking

__all__ = ["DRIVER_LOG", "LAUNCH_FILE", "METRICS_ENV", "METRICS_FILE", "RUN_ID_FILE", "STATE_FILE", "read_run_id",
           "runs_root", "write_json_atomically"]

LAUNCH_FILE = "launch.json"
STATE_FILE = "state.json"
RUN_ID_FILE = "run_id.json"
DRIVER_LOG = "logs/driver_log.txt"
METRICS_FILE = "logs/metrics.jsonl"
METRICS_ENV = "KERASJOB_METRICS_FILE"


def runs_root() -> Path:
    """Where local run folders live: ``$KERASJOB_HOME/runs``."""
    return tracking.kerasjob_home() / "runs"


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=1))
    os.replace(temporary, path)


def read_run_id(run_dir: Path) -> str | None:
    """The run's MLflow run id, once the supervisor has created the MLflow run."""
    try:
        return json.loads((run_dir / RUN_ID_FILE).read_text())["run_id"]
    except FileNotFoundError:
        return None
