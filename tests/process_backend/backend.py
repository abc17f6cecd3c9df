"""The process backend: a ``TrainingJob`` runs as ``python ENTRY_SCRIPT ARGS`` in a copy of its source folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

from kerasjob.backends import Backend, JobRun
from kerasjob.errors import KerasJobError, ValidationError
from kerasjob.job import TrainingJob

from .run import LOG, RUNNER, ProcessRun, backend_home

if TYPE_CHECKING:
    from kerasjob import Sweep, TuningResult

    from .serving import ProcessEndpoints


class ProcessBackend(Backend):
    """Runs each job as a child process of this one; what a backend must provide, and nothing more."""

    name = "process"
    registry_description = "the process backend's registry (a JSON file)"

    def check(self, job: TrainingJob) -> None:
        if job.worker_count > 1:
            raise ValidationError("distribution", "None: the process backend runs one process", job.distribution)

    def describe_data(self, job: TrainingJob) -> str:
        return f"the folder {job.data}" if job.data else "no data"

    def describe_compute(self, job: TrainingJob) -> str:
        return "a child process of this one"

    def submit(self, job: TrainingJob) -> ProcessRun:
        folder = backend_home() / "runs" / f"{job.experiment}_{uuid.uuid4().hex[:8]}"
        shutil.copytree(job.source_dir, folder)
        argv = [sys.executable, "-c", RUNNER, job.entry_script, *map(str, job.script_arguments(job.data or "none"))]
        with open(folder / LOG, "wb") as log:
            process = subprocess.Popen(argv, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        return ProcessRun(folder, process)

    def attach(self, run_id: str) -> JobRun:
        folder = backend_home() / "runs" / run_id
        if not folder.is_dir():
            raise KerasJobError(f"No process run {run_id!r}.")
        return ProcessRun(folder)

    def sweep(self, job: TrainingJob, sweep: Sweep, *, show_output: bool = True) -> TuningResult:
        from .sweep import run_grid

        return run_grid(self, job, sweep)

    def endpoints(self) -> ProcessEndpoints:
        from .serving import ProcessEndpoints

        return ProcessEndpoints(backend_home())
