"""The local backend: the whole job on this machine, tracked in MLflow.

No cloud, no Docker, no credentials. Each run gets a fresh directory holding a
copy of the source directory with ``outputs/`` and ``logs/`` beside it, as in an
Azure ML run; a detached supervisor (``local_supervisor``) runs the script as a
child process and records the outcome in MLflow. A script of the user's gets
its MLflow run through ``MLFLOW_TRACKING_URI`` and ``MLFLOW_RUN_ID``;
kerasjob's own script starts at once and reports its metrics through the
supervisor, which logs them to the run live.

Example:
    >>> from kerasjob import TrainingJob
    >>> run = LocalBackend().submit(TrainingJob(data="../shared/data/mnist"))  # doctest: +SKIP
    >>> run.wait()                                                             # doctest: +SKIP
    <RunStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from .. import __version__, tracking
from ..dataset import default_cache_dir, download_mnist
from ..optional import TRAIN
from ..errors import SubmissionError, ValidationError
from ..job import MpiDistribution, TrainingJob
from ..snapshot import copy_snapshot, scan_snapshot
from ..processes import pid_running
from .base import Backend, JobRun, LineSink, ModelVersion, RunStatus, move_files
from .local_supervisor import (DRIVER_LOG, LAUNCH_FILE, METRICS_ENV, METRICS_FILE, RUN_ID_FILE, STATE_FILE,
                               write_json_atomically)

logger = logging.getLogger(__name__)

__all__ = ["POLL_SECONDS", "LocalBackend", "LocalRun", "runs_root", "source_hash"]

POLL_SECONDS = 0.1


def runs_root() -> Path:
    """Where local run directories live: ``$KERASJOB_HOME/runs``."""
    return tracking.kerasjob_home() / "runs"


def source_hash(job: TrainingJob) -> str:
    import hashlib

    digest = hashlib.sha256()
    for relative in scan_snapshot(job.source_dir).files:
        digest.update(relative.encode() + b"\0" + (job.source_dir / relative).read_bytes())
    return digest.hexdigest()


class LocalBackend(Backend):
    """Runs jobs as child processes of this machine.

    Args:
        python: interpreter for the script (default: the current one).
        grace_seconds: time between SIGTERM and SIGKILL when a run is canceled.
        run_tags: extra MLflow tags for every run (a sweep sets ``mlflow.parentRunId``).
    """

    name = "local"
    sweeper = "kerasjob.tuning.local:run_local_sweep"
    registry_description = "the MLflow model registry"

    def describe_compute(self, job: TrainingJob) -> str:
        return "this machine (a child process)"

    def data_placeholder(self, job: TrainingJob) -> str:
        return str(job.local_data_folder or "<MNIST cache folder>")

    def __init__(self, python: str | None = None, grace_seconds: float = 5.0, run_tags: dict[str, str] | None = None):
        self.python = python or sys.executable
        self.grace_seconds = grace_seconds
        self.run_tags = dict(run_tags or {})

    def check(self, job: TrainingJob) -> None:
        if job.registered_dataset:
            raise ValidationError("data", "a local folder, or None for MNIST, on the local backend", job.data,
                                  hint="Registered Azure datasets are only reachable from backend='azureml'.")
        if isinstance(job.distribution, MpiDistribution):
            raise ValidationError("distribution", "None or TensorflowDistribution(worker_count=N) on the local backend",
                                  job.distribution, hint="MPI jobs run on Azure ML; rehearse multi-worker training "
                                  "locally with TensorflowDistribution(worker_count=N).")

    def describe_data(self, job: TrainingJob) -> str:
        if job.local_data_folder:
            return f"local folder {job.local_data_folder}"
        return f"MNIST, downloaded once into {default_cache_dir() / 'mnist'} (verified against its sha256 digests)"

    def attach(self, run_id: str) -> "LocalRun":
        """The handle of local run ``run_id`` (``ValidationError`` when there is none)."""
        return LocalRun.from_id(run_id)

    def submit(self, job: TrainingJob) -> "LocalRun":
        self.check(job)
        TRAIN.require()
        data_folder = job.local_data_folder or download_mnist()
        uri = tracking.tracking_uri()
        root = runs_root()
        _ensure_writable(root)
        tracking.ensure_store_writable(uri)

        # The script starts before the MLflow run exists: creating it costs ~2 s of imports, which
        # overlap with the script's own TensorFlow import. kerasjob's script reports its metrics
        # to the supervisor (KERASJOB_METRICS_FILE), so it never needs the run id; any other
        # script gets MLFLOW_RUN_ID, so for it the supervisor waits for the run before starting it.
        run_dir = root / uuid.uuid4().hex
        try:
            supervisor = self._start(job, run_dir, data_folder, uri)
        except OSError as exc:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise SubmissionError(f"Could not start the local run in {run_dir}: {exc}") from exc
        run_id = None
        try:
            run_id = self._create_mlflow_run(job, uri)
            write_json_atomically(run_dir / RUN_ID_FILE, {"run_id": run_id})
            (root / run_id).symlink_to(run_dir.name)
        except BaseException as exc:
            _stop(supervisor)
            shutil.rmtree(run_dir, ignore_errors=True)
            if run_id is not None:
                (root / run_id).unlink(missing_ok=True)
                tracking.client(uri).set_terminated(run_id, "FAILED")
            if isinstance(exc, OSError):
                raise SubmissionError(f"Could not start the local run in {run_dir}: {exc}") from exc
            raise
        logger.info("Started local run %s in %s", run_id, run_dir)
        return LocalRun(root / run_id, uri, supervisor)

    def _start(self, job: TrainingJob, run_dir: Path, data_folder: Path, uri: str) -> subprocess.Popen:
        run_dir.mkdir(parents=True)
        copy_snapshot(scan_snapshot(job.source_dir), run_dir)
        (run_dir / "outputs").mkdir(exist_ok=True)
        (run_dir / "logs").mkdir(exist_ok=True)
        script = str((run_dir / job.entry_script).absolute())  # absolute: each extra worker runs in its own folder
        argv = [self.python, "-u", script, *map(str, job.script_arguments(data_folder.absolute()))]
        env = {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1",
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        if job.uses_packaged_script:
            env[METRICS_ENV] = str((run_dir / METRICS_FILE).absolute())
        write_json_atomically(run_dir / LAUNCH_FILE, {
            "argv": argv, "env": env, "tracking_uri": uri, "needs_run_id": not job.uses_packaged_script,
            "timeout": job.timeout, "grace_seconds": self.grace_seconds, "workers": job.worker_count,
        })
        with open(run_dir / "logs" / "supervisor.log", "wb") as supervisor_log:
            return subprocess.Popen(
                [sys.executable, "-m", "kerasjob.backends.local_supervisor", str(run_dir)],
                stdout=supervisor_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, "PYTHONPATH": _package_parent()},
            )

    def _create_mlflow_run(self, job: TrainingJob, uri: str) -> str:
        from mlflow.entities import Param

        client = tracking.client(uri)
        try:
            with tracking.store_lock(uri):
                experiment_id = tracking.get_or_create_experiment(client, job.experiment, uri)
                run = client.create_run(experiment_id, tags={
                    "kerasjob.version": __version__, "kerasjob.backend": self.name,
                    "kerasjob.source_sha256": source_hash(job), "mlflow.source.name": job.entry_script,
                    **self.run_tags,
                })
                client.log_batch(run.info.run_id, params=[
                    Param(name, str(value)) for name, value in job.hyperparameters.items()])
        except Exception as exc:  # noqa: BLE001 - any store failure means the run is stopped and removed
            raise SubmissionError(f"Could not create the run in the MLflow store {uri}: {exc}") from exc
        return run.info.run_id


def _stop(supervisor: subprocess.Popen) -> None:
    """Stops a run whose submission failed half-way: the supervisor cancels its script, then exits."""
    supervisor.terminate()
    try:
        supervisor.wait(timeout=60)
    except subprocess.TimeoutExpired:
        supervisor.kill()
        supervisor.wait()


def _package_parent() -> str:
    """PYTHONPATH for the supervisor, so it imports this very kerasjob."""
    parent = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return parent + (os.pathsep + existing if existing else "")


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SubmissionError(f"The run folder {folder} cannot be written: {exc}. "
                              "Set KERASJOB_HOME to a writable place.") from exc


class LocalRun(JobRun):
    """Handle on a local run, by its run directory; usable from another process too."""

    backend = "local"
    url_key = "tracking_uri"

    def tensorflow_version(self, job: TrainingJob) -> str:
        """The TensorFlow this machine trained with."""
        from importlib import metadata

        try:
            return metadata.version("tensorflow")
        except metadata.PackageNotFoundError:
            return "unknown"

    def describe(self) -> dict[str, Any]:
        """The MLflow run's status, parameters, latest metrics and tags."""
        return tracking.show_run(self.id)

    def next_steps(self, model_name: str, model_version: str) -> list[str]:
        return [f"Run folder:  {self.run_dir}", f"Look at it:  mlflow ui --backend-store-uri {self.url}",
                f"Download it: kerasjob models download {model_name} ./model --version {model_version}"]

    def __init__(self, run_dir: str | Path, tracking_uri: str | None = None,
                 supervisor: subprocess.Popen | None = None):
        self.run_dir = Path(run_dir)
        if not (self.run_dir / LAUNCH_FILE).is_file():
            raise ValidationError("run_id", "the id of a local run", self.run_dir.name)
        self._launch = json.loads((self.run_dir / LAUNCH_FILE).read_text())
        self.tracking_uri = tracking_uri or self._launch["tracking_uri"]
        self._supervisor = supervisor  # reaped by us when we started it

    @classmethod
    def from_id(cls, run_id: str) -> "LocalRun":
        """The handle of local run ``run_id`` (from ``kerasjob runs list``)."""
        return cls(runs_root() / run_id)

    @property
    def id(self) -> str:
        return self.run_dir.name

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
        return dict(tracking.client(self.tracking_uri).get_run(self.id).data.metrics)

    def log_tail(self, lines: int = 20) -> str:
        if not self._log_path().exists():
            return ""
        with open(self._log_path(), encoding="utf-8", errors="replace") as log:
            return "\n".join(log.read().splitlines()[-lines:])

    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        client = tracking.client(self.tracking_uri)
        source = client.get_run(self.id).info.artifact_uri.rstrip("/") + "/" + model_path
        with tracking.store_lock(self.tracking_uri):
            if client.search_registered_models(filter_string=f"name = '{name}'") == []:
                client.create_registered_model(name, description="Registered by kerasjob")
            version = client.create_model_version(name, source, run_id=self.id, tags=tags)
        return ModelVersion(name=name, version=str(version.version), source=source)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """From the run's artifacts in the MLflow store (the run folder may be gone)."""
        client = tracking.client(self.tracking_uri)
        with tempfile.TemporaryDirectory() as staging:
            return move_files(Path(client.download_artifacts(self.id, prefix.strip("/"), staging)), Path(destination))


def _alive(pid: int | None, process: subprocess.Popen | None) -> bool:
    if process is not None:
        return process.poll() is None
    if not pid:
        return True  # not started yet
    return pid_running(pid)
