"""The handle of a local run, by its folder: status, logs, cancel, metrics, model files; usable from any process.

Example:
    >>> run = LocalRun.from_id("0f1e2d...")     # doctest: +SKIP
    >>> run.status()                            # doctest: +SKIP
    <RunStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from .. import tracking
from ..errors import SubmissionError, ValidationError
from ..job import TrainingJob
from ..commands import shell_command
from ..html import browser_link
from ..processes import pid_running
from .base import JobRun, LineSink, ModelVersion, RunStatus, move_files
from .local_files import DRIVER_LOG, LAUNCH_FILE, STATE_FILE, read_run_id, runs_root

__all__ = ["POLL_SECONDS", "LocalRun"]

POLL_SECONDS = 0.1


class LocalRun(JobRun):
    """Handle on a local run, by its run directory; usable from another process too."""

    backend = "local"

    def tensorflow_version(self, job: TrainingJob) -> str:
        """The TensorFlow this machine trained with."""
        from importlib import metadata

        try:
            return metadata.version("tensorflow")
        except metadata.PackageNotFoundError:
            return "unknown"

    def describe(self) -> dict[str, Any]:
        """The MLflow run's status, parameters, latest metrics and tags."""
        return {**tracking.show_run(self.mlflow_run_id), "run_id": self.id, "mlflow_run_id": self.mlflow_run_id}

    def browser_url(self) -> str | None:
        return browser_link(self.url, read_run_id(self.run_dir))  # the run in MLflow's UI (kerasjob ui)

    def next_steps(self, model_name: str, model_version: str) -> list[str]:
        kerasjob = shell_command("kerasjob")  # the venv need not be on PATH (make demo)
        return [f"Run folder:  {self.run_dir}", f"Look at it:  {kerasjob} ui   (MLflow's UI on {self.url})",
                f"Download it: {kerasjob} models download {model_name} ./model --version {model_version}"]

    def __init__(self, run_dir: str | Path, tracking_uri: str | None = None,
                 supervisor: subprocess.Popen | None = None):
        self.run_dir = Path(run_dir).resolve()  # runs/<MLflow run id> is a link to the run's own folder
        if not (self.run_dir / LAUNCH_FILE).is_file():
            raise ValidationError("run_id", "the id of a local run", self.run_dir.name)
        self._launch = json.loads((self.run_dir / LAUNCH_FILE).read_text())
        self.tracking_uri = tracking_uri or self._launch["tracking_uri"]
        self._supervisor = supervisor  # reaped by us when we started it

    @classmethod
    def from_id(cls, run_id: str) -> "LocalRun":
        """The handle of local run ``run_id`` (kerasjob's id, or the id of its MLflow run)."""
        return cls(runs_root() / run_id)

    @property
    def id(self) -> str:
        """kerasjob's id of the run: its folder's name, known before the MLflow run exists."""
        return self.run_dir.name

    @property
    def mlflow_run_id(self) -> str:
        """The id of the run's MLflow run, which the supervisor creates while the script starts."""
        while True:
            run_id = read_run_id(self.run_dir)
            if run_id is not None:
                return run_id
            if self.status().is_final and read_run_id(self.run_dir) is None:
                raise SubmissionError(f"Local run {self.id} has no MLflow run: {self.reason() or 'never created'}")
            time.sleep(POLL_SECONDS)

    def model_registry(self) -> Any:
        """The MLflow model registry of the store this run is tracked in."""
        from ..local_registry import MlflowModelRegistry

        return MlflowModelRegistry(self.tracking_uri)

    def registered_model(self) -> ModelVersion | None:
        """The version the supervisor registered when the run completed, if it did."""
        model = self._state().get("model")
        return ModelVersion(**model) if model else None

    @property
    def url(self) -> str:
        return self.tracking_uri

    @property
    def workers(self) -> int:
        """How many worker processes this run started."""
        return int(self._launch.get("workers", 1))

    def _state(self) -> dict:
        try:
            return json.loads((self.run_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return {"status": "preparing"}

    def _reap(self) -> None:
        if self._supervisor is not None:
            self._supervisor.poll()

    def status(self) -> RunStatus:
        self._reap()
        state = self._state()
        status = RunStatus(state["status"])
        if not status.is_final and not _alive(state.get("supervisor_pid"), self._supervisor):
            state = self._state()  # it may have finished between the two reads
            status = RunStatus(state["status"])
            if not status.is_final:
                return RunStatus.FAILED  # the supervisor died without recording an outcome
        return status

    def reason(self) -> str:
        return self._state().get("reason", "")

    def _log_path(self) -> Path:
        return self.run_dir / DRIVER_LOG

    def stream_logs(self) -> Iterator[str]:
        position = 0
        pending = ""
        while True:
            final = self.status().is_final
            if self._log_path().exists():
                with open(self._log_path(), encoding="utf-8", errors="replace") as log:
                    log.seek(position)
                    chunk = log.read()
                    position = log.tell()
                pending += chunk
                *lines, pending = pending.split("\n")
                yield from lines
            if final:
                if pending:
                    yield pending
                return
            time.sleep(POLL_SECONDS)

    def wait(self, *, on_line: LineSink | None = None) -> RunStatus:
        status = super().wait(on_line=on_line)
        if self._supervisor is not None:
            self._supervisor.wait()  # reap it: it has recorded the outcome already
        return status

    def cancel(self) -> None:
        state = self._state()
        pid = state.get("supervisor_pid") or (self._supervisor.pid if self._supervisor else None)
        if RunStatus(state["status"]).is_final or pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        grace = self._launch.get("grace_seconds", 5.0)
        deadline = time.monotonic() + grace + 30
        while not self.status().is_final and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        self._reap()

    def metrics(self) -> dict[str, float]:
        recorded = self._state().get("metrics")  # the supervisor's copy of the final values: no MLflow import
        if recorded is not None:
            return dict(recorded)
        return dict(tracking.client(self.tracking_uri).get_run(self.mlflow_run_id).data.metrics)

    def log_tail(self, lines: int = 20) -> str:
        if not self._log_path().exists():
            return ""
        with open(self._log_path(), encoding="utf-8", errors="replace") as log:
            return "\n".join(log.read().splitlines()[-lines:])

    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        client = tracking.client(self.tracking_uri)
        source = client.get_run(self.mlflow_run_id).info.artifact_uri.rstrip("/") + "/" + model_path
        with tracking.store_lock(self.tracking_uri):
            if client.search_registered_models(filter_string=f"name = '{name}'") == []:
                client.create_registered_model(name, description="Registered by kerasjob")
            version = client.create_model_version(name, source, run_id=self.mlflow_run_id, tags=tags)
        return ModelVersion(name=name, version=str(version.version), source=source)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """From the run's artifacts in the MLflow store (the run folder may be gone)."""
        client = tracking.client(self.tracking_uri)
        with tempfile.TemporaryDirectory() as staging:
            return move_files(Path(client.download_artifacts(self.mlflow_run_id, prefix.strip("/"), staging)),
                              Path(destination))


def _alive(pid: int | None, process: subprocess.Popen | None) -> bool:
    if process is not None:
        return process.poll() is None
    if not pid:
        return True  # not started yet
    return pid_running(pid)
