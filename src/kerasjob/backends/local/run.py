"""The handle of a local run, by its folder: status, logs, cancel, metrics, model files; usable from any process.

Example:
    >>> run = LocalRun.from_id("0f1e2d...")     # doctest: +SKIP
    >>> run.status()                            # doctest: +SKIP
    <RunStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import logging
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from . import supervisor, tracking
from ...errors import SubmissionError, ValidationError
from ...job import TrainingJob
from ...commands import shell_command
from ...html import browser_link
from ...processes import ProcessIdentity, pid_running, stop_group
from ..base import JobRun, LineSink, ModelVersion, RunStatus, move_files
from .files import (DRIVER_LOG, LAUNCH_FILE, STATE_FILE, SUPERVISOR_FILE, SUPERVISOR_LOG, CorruptRunFile,
                          read_json, read_run_id, runs_root, write_json_atomically)

__all__ = ["ABANDONED_AFTER_S", "POLL_SECONDS", "LocalRun"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
#: A run folder with neither a supervisor nor a living creator recorded (an older layout) counts as abandoned
#: this long after it was made.
ABANDONED_AFTER_S = 60.0


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
        status = self.status()  # settles a run whose supervisor is gone
        mlflow_run_id = read_run_id(self.run_dir)
        if mlflow_run_id is None and status.is_final:  # it ended before its MLflow run was made
            state = self._state()
            return {"run_id": self.id, "mlflow_run_id": None, "status": status.value, "reason": state.get("reason", ""),
                    "backend": self.backend, "url": self.url}
        described = {**tracking.show_run(self.mlflow_run_id), "run_id": self.id, "mlflow_run_id": self.mlflow_run_id}
        if status.is_final and self.reason():
            described["reason"] = self.reason()
        return described

    def browser_url(self) -> str | None:
        return browser_link(self.url, read_run_id(self.run_dir))  # the run in MLflow's UI (kerasjob ui)

    def next_steps(self, model_name: str, model_version: str) -> list[str]:
        kerasjob = shell_command("kerasjob")  # the venv need not be on PATH (make demo)
        return [f"Run folder:  {self.run_dir}", f"Look at it:  {kerasjob} ui   (MLflow's UI on {self.url})",
                f"Download it: {kerasjob} models download {model_name} ./model --version {model_version}"]

    def __init__(self, run_dir: str | Path, tracking_uri: str | None = None,
                 supervisor: subprocess.Popen | None = None):
        self.run_dir = Path(run_dir).resolve()  # runs/<MLflow run id> is a link to the run's own folder
        if not (self.run_dir / LAUNCH_FILE).is_file() and not (self.run_dir / STATE_FILE).is_file():
            raise ValidationError("run_id", "the id of a local run", self.run_dir.name)
        self._launch_cache: dict[str, Any] | None = None
        self._tracking_uri = tracking_uri
        self._supervisor = supervisor  # reaped by us when we started it

    @property
    def _launch(self) -> dict[str, Any]:
        """``launch.json`` (empty while the caller still prepares the run)."""
        if self._launch_cache is None:
            launch = read_json(self.run_dir / LAUNCH_FILE)
            if launch is None:
                return {}
            self._launch_cache = launch
        return self._launch_cache

    @property
    def tracking_uri(self) -> str:
        return self._tracking_uri or self._launch.get("tracking_uri") or tracking.tracking_uri()

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
        from .registry import MlflowModelRegistry

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

    def _state(self) -> dict[str, Any]:
        """``state.json`` (``CorruptRunFile`` when damaged); a folder without one is being prepared."""
        state = read_json(self.run_dir / STATE_FILE)
        if state is None:
            return {"status": "preparing"}
        if state.get("status") not in {each.value for each in RunStatus}:
            raise CorruptRunFile(self.run_dir / STATE_FILE, f"unknown status {state.get('status')!r}")
        return state

    def _reap(self) -> None:
        if self._supervisor is not None:
            self._supervisor.poll()

    def _supervisor_identity(self, state: dict[str, Any]) -> ProcessIdentity | None:
        return ProcessIdentity.from_record(state.get("supervisor")) or \
            ProcessIdentity.from_record(read_json(self.run_dir / SUPERVISOR_FILE))

    def _gone(self, state: dict[str, Any]) -> str:
        """Why the run can no longer end by itself ('' while it can): its supervisor, or the process preparing
        it, is gone. Judged by pid and start time, within milliseconds."""
        if self._supervisor is not None:
            return "" if self._supervisor.poll() is None else "ended"
        identity = self._supervisor_identity(state)
        if identity is not None:
            return "" if identity.running() else "ended"
        if (self.run_dir / SUPERVISOR_FILE).exists():
            return ""  # a record without a start time (psutil could not read it): trust nothing, wait
        if isinstance(state.get("supervisor_pid"), int):  # a run of an older kerasjob: its pid is all there is
            return "" if pid_running(state["supervisor_pid"]) else "ended"
        creator = ProcessIdentity.from_record(state.get("creator"))
        if creator is not None:
            return "" if creator.running() else "abandoned"
        try:  # neither: an older layout, or a folder whose maker died at once
            age = time.time() - (self.run_dir / LAUNCH_FILE).stat().st_mtime
        except FileNotFoundError:
            age = time.time() - self.run_dir.stat().st_mtime
        return "abandoned" if age > ABANDONED_AFTER_S else ""

    def status(self) -> RunStatus:
        self._reap()
        state = self._state()
        status = RunStatus(state["status"])
        if status.is_final:
            return status
        gone = self._gone(state)
        if not gone:
            return status
        return self._settle(gone)

    def _settle(self, gone: str) -> RunStatus:
        """The supervisor is gone without recording an outcome: stop what it left running, then recover the run
        (its training completed) or record it failed; once, whoever gets here first."""
        from filelock import FileLock

        with FileLock(str(self.run_dir / ".settle.lock"), timeout=300):
            state = self._state()  # it may have finished meanwhile, or another reader settled it
            if RunStatus(state["status"]).is_final:
                return RunStatus(state["status"])
            for record in state.get("children", []):
                child = ProcessIdentity.from_record(record)
                if child is not None:
                    stop_group(child, grace_seconds=float(self._launch.get("grace_seconds", 5.0)))
            if gone == "ended" and self._training_completed(state):
                return self._recover(state)
            if gone == "abandoned":
                reason = "the process that started the run ended before the run's supervisor started"
            else:
                reason = f"the supervisor process ended unexpectedly ({self._last_words()})"
            state.update(status="failed", reason=reason, ended=time.time(), settled_by_reader=True)
            write_json_atomically(self.run_dir / STATE_FILE, state)
        logger.warning("Local run %s: %s", self.id, reason)
        if self._launch:
            try:
                supervisor.mark_failed_in_mlflow(self.run_dir, self._launch)
            except Exception as exc:  # noqa: BLE001 - state.json holds the outcome; MLflow's copy is a courtesy
                logger.warning("Local run %s: could not mark its MLflow run failed: %s", self.id, exc)
        return RunStatus.FAILED

    def _training_completed(self, state: dict[str, Any]) -> bool:
        """Whether training completed: its exit code 0 recorded, or (the supervisor killed before it could
        record it) the model folder complete, i.e. holding its MLmodel file, which MLflow writes last."""
        if state.get("training_ended"):
            return state.get("returncode") == 0
        model_path = (self._launch.get("register") or {}).get("model_path", "outputs/model")
        return bool(state.get("children")) and (self.run_dir / model_path / "MLmodel").is_file()

    def _recover(self, state: dict[str, Any]) -> RunStatus:
        logger.warning("Local run %s: its training completed but its supervisor is gone: recording it now", self.id)
        recovered = supervisor.recover(self.run_dir, state, LocalRun)
        return RunStatus(recovered["status"])

    def recover(self) -> RunStatus:
        """Settle a run whose supervisor is gone (``kerasjob runs recover ID``): recorded and registered when its
        training completed, else failed; a run still looked after is left alone. Returns its status."""
        return self.status()

    def _last_words(self) -> str:
        """What the supervisor's log says last, e.g. a full disk; else what usually kills a process silently."""
        try:
            lines = (self.run_dir / SUPERVISOR_LOG).read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        if lines:
            return lines[-1][-300:]
        return "killed, e.g. by kill -9 or the out-of-memory killer; nothing in logs/supervisor.log"

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
        if self.status().is_final:  # settles a run whose supervisor is gone
            return
        state = self._state()
        identity = self._supervisor_identity(state)
        if identity is None and self._supervisor is not None:
            identity = ProcessIdentity.of(self._supervisor.pid)
        deadline = time.monotonic() + 10
        while identity is None and time.monotonic() < deadline:  # being prepared: its supervisor comes at once
            time.sleep(POLL_SECONDS)
            if self.status().is_final:
                return
            identity = self._supervisor_identity(self._state())
        if identity is None or not identity.signal(signal.SIGTERM):  # never a process that took over its pid
            self.status()
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

