"""The local backend: the whole job on this machine, tracked in MLflow.

No cloud, no Docker, no credentials. Each run gets a fresh directory holding a
copy of the source directory with ``outputs/`` and ``logs/`` beside it, as in an
Azure ML run; a detached supervisor (``supervisor``) runs the script as a
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
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import __version__
from . import tracking
from ...data_folder import describe_dataset
from ...dataset import default_cache_dir, download_mnist
from ...optional import KERAS_BACKEND_EXTRAS, TRAIN
from ...quiet import quiet_environment
from ...errors import SubmissionError, ValidationError
from ...home import ensure_writable
from ...job import MpiDistribution, TrainingJob
from ...snapshot import copy_snapshot, scan_snapshot
from ...training.compile_cache import CACHE_ENV, OFF, shown_path
from ..base import Backend
from ...processes import ProcessIdentity
from .files import (LAUNCH_FILE, METRICS_ENV, METRICS_FILE, STATE_FILE, SUPERVISOR_FILE, SUPERVISOR_LOG,
                          runs_root, write_json_atomically)
from .run import LocalRun

if TYPE_CHECKING:
    from ...search_space import Sweep
    from ...tuning_results import TuningResult
    from .serving import LocalEndpoints

logger = logging.getLogger(__name__)

__all__ = ["LocalBackend", "LocalRun", "compile_cache_folder", "runs_root", "source_hash"]


def source_hash(job: TrainingJob) -> str:
    import hashlib

    digest = hashlib.sha256()
    for relative in scan_snapshot(job.source_dir, allow_symlinks=job.allow_symlinks).files:
        digest.update(relative.encode() + b"\0" + (job.source_dir / relative).read_bytes())
    return digest.hexdigest()


class LocalBackend(Backend):
    """Runs jobs as child processes of this machine.

    Args:
        python: interpreter for the script (default: the current one).
        grace_seconds: time between SIGTERM and SIGKILL when a run is canceled.
        run_tags: extra MLflow tags for every run (a sweep sets ``mlflow.parentRunId``).
        register: register the model when a run completes (a sweep registers only its best trial).
    """

    name = "local"
    registry_description = "the MLflow model registry"

    def describe_compute(self, job: TrainingJob) -> str:
        return "this machine (a child process)"

    def describe_compile_cache(self, job: TrainingJob) -> str:
        if not job.compile_cache:
            return "off (compile_cache=False)"
        return f"{shown_path(compile_cache_folder())} (shared by runs, sweep trials and restarts; rm -rf it to clear)"

    def data_placeholder(self, job: TrainingJob) -> str:
        return str(job.local_data_folder or "<MNIST cache folder>")

    def __init__(self, python: str | None = None, grace_seconds: float = 5.0, run_tags: dict[str, str] | None = None,
                 register: bool = True):
        self.python = python or sys.executable
        self.grace_seconds = grace_seconds
        self.run_tags = dict(run_tags or {})
        self.register = register

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

    def describe_run(self, run_id: str) -> dict[str, Any]:
        """A run of this machine, or a sweep (which has no run folder: only its MLflow run)."""
        try:
            return self.attach(run_id).describe()
        except ValidationError:
            return tracking.show_run(run_id)

    def runs_tagged(self, key: str, value: str) -> list["LocalRun"]:
        """The local runs whose MLflow run is tagged ``key=value`` (a sweep's trials, by ``mlflow.parentRunId``),
        from their folders: a trial started a moment before Ctrl-C is found even if its caller never heard of it."""
        found = []
        root = runs_root()
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if folder.is_symlink():  # runs/<MLflow run id> leads to a folder listed under its own name
                continue
            try:
                launch = json.loads((folder / LAUNCH_FILE).read_text())
            except (OSError, ValueError):
                continue
            if launch.get("mlflow_run", {}).get("tags", {}).get(key) == value:
                found.append(LocalRun(folder))
        return found

    def submit(self, job: TrainingJob) -> "LocalRun":
        self.check(job)
        TRAIN.require()
        KERAS_BACKEND_EXTRAS[job.keras_backend].require()
        data_folder = job.local_data_folder or download_mnist()
        uri = tracking.tracking_uri()
        root = runs_root()
        ensure_writable(root, "its runs")
        tracking.ensure_store_writable(uri)

        # The caller only prepares the run folder and starts the supervisor: it never imports MLflow
        # (1-2 s), so `submit --no-wait` returns at once. The supervisor creates the MLflow run while
        # the script starts, and records the outcome and the registered model in state.json.
        run_dir = root / uuid.uuid4().hex
        try:
            supervisor = self._start(job, run_dir, data_folder, uri)
        except OSError as exc:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise SubmissionError(f"Could not start the local run in {run_dir}: {exc}") from exc
        except BaseException:  # Ctrl-C while preparing: nothing started is left behind
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        logger.info("Started local run %s in %s", run_dir.name, run_dir)
        return LocalRun(run_dir, uri, supervisor)

    def _mlflow_run(self, job: TrainingJob, data_folder: Path) -> dict[str, Any]:
        """What the supervisor creates the MLflow run with."""
        import getpass

        return {"experiment": job.experiment,
                "params": {name: str(value) for name, value in job.hyperparameters.items()},
                "tags": {"kerasjob.version": __version__, "kerasjob.backend": self.name,
                         "kerasjob.source_sha256": source_hash(job), "mlflow.source.name": job.entry_script,
                         "mlflow.user": getpass.getuser(), "kerasjob.primary_metric": job.primary_metric[0],
                         **self.run_tags},
                "dataset": describe_dataset(data_folder)}

    def _registration(self, job: TrainingJob) -> dict[str, Any] | None:
        """What the supervisor registers once the run completes (None: a sweep's trial, which the sweep ranks)."""
        if not self.register:
            return None
        metric, goal = job.primary_metric
        return {"model_name": job.model_name, "model_path": job.model_path,
                "hyperparameters": dict(job.hyperparameters), "primary_metric": metric, "goal": goal}

    def _start(self, job: TrainingJob, run_dir: Path, data_folder: Path, uri: str) -> subprocess.Popen:
        run_dir.mkdir(parents=True)
        # state.json first: a reader knows the run is being prepared, by whom, and that it was abandoned when
        # that process is gone before the supervisor started
        creator = ProcessIdentity.of(os.getpid())
        write_json_atomically(run_dir / STATE_FILE, {"status": "preparing", "creator": creator and creator.to_record(),
                                                     "started": time.time()})
        copy_snapshot(scan_snapshot(job.source_dir, allow_symlinks=job.allow_symlinks), run_dir)
        (run_dir / "outputs").mkdir(exist_ok=True)
        (run_dir / "logs").mkdir(exist_ok=True)
        script = str((run_dir / job.entry_script).absolute())  # absolute: each extra worker runs in its own folder
        argv = [self.python, "-u", script, *map(str, job.script_arguments(data_folder.absolute()))]
        env = {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1", **quiet_environment()}
        if job.uses_packaged_script:
            env[METRICS_ENV] = str((run_dir / METRICS_FILE).absolute())
        env[CACHE_ENV] = str(compile_cache_folder()) if job.compile_cache else OFF
        write_json_atomically(run_dir / LAUNCH_FILE, {
            "argv": argv, "env": env, "tracking_uri": uri, "needs_run_id": not job.uses_packaged_script,
            "timeout": job.timeout, "grace_seconds": self.grace_seconds, "workers": job.worker_count,
            "max_restarts": job.max_restarts,
            "mlflow_run": self._mlflow_run(job, data_folder), "register": self._registration(job),
        })
        with open(run_dir / SUPERVISOR_LOG, "wb") as supervisor_log:
            process = subprocess.Popen(
                [sys.executable, "-m", "kerasjob.backends.local.__main__", str(run_dir)],  # the supervisor
                stdout=supervisor_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, "PYTHONPATH": _package_parent(), **tracking.bounded_http()},
            )
        try:  # who the supervisor is, by pid and start time: readers judge it alive by both, never the pid alone
            identity = ProcessIdentity.of(process.pid)
            write_json_atomically(run_dir / SUPERVISOR_FILE, identity.to_record() if identity else {"pid": process.pid})
        except BaseException:
            process.terminate()  # it records itself canceled
            process.wait(timeout=30)
            raise
        return process

    def nested(self, parent_run_id: str) -> "LocalBackend":
        """This backend for the trials of a sweep: each run nested under ``parent_run_id``, registering nothing
        (the sweep registers its best trial)."""
        tags = {**self.run_tags, "mlflow.parentRunId": parent_run_id}
        return type(self)(self.python, self.grace_seconds, run_tags=tags, register=False)

    def sweep(self, job: TrainingJob, sweep: "Sweep", *, show_output: bool = True) -> "TuningResult":
        """An Optuna study over local runs of ``job`` (``sweep.run_local_sweep``)."""
        from .sweep import run_local_sweep

        return run_local_sweep(self, job, sweep, show_output=show_output)

    def endpoints(self) -> "LocalEndpoints":
        """MLflow's scoring server on this machine (``serving.LocalEndpoints``)."""
        from .serving import LocalEndpoints

        return LocalEndpoints()


def compile_cache_folder() -> Path | str:
    """The compile cache the local backend hands its runs: ``KERASJOB_COMPILE_CACHE`` when the user set it (a
    folder, or ``none``), else ``compile/`` in kerasjob's cache folder (``KERASJOB_CACHE_DIR``)."""
    configured = os.environ.get(CACHE_ENV)
    return configured if configured else default_cache_dir() / "compile"


def _package_parent() -> str:
    """PYTHONPATH for the supervisor, so it imports this very kerasjob."""
    parent = str(Path(__file__).resolve().parents[3])
    existing = os.environ.get("PYTHONPATH")
    return parent + (os.pathsep + existing if existing else "")


