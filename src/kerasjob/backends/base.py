"""What every backend provides: a ``Backend`` that submits a job and returns at
once, and a ``JobRun`` handle with the same verbs on every backend.

Example:
    >>> RunStatus.COMPLETED.is_final
    True
"""

from __future__ import annotations

import abc
import enum
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from ..errors import DataError, KerasJobError, ValidationError
from ..job import TrainingJob
from ..html import browser_link, html_table
from ..quiet import is_framework_noise

if TYPE_CHECKING:  # what the hooks return is defined above this module, and imports it
    from ..hosting import EndpointHost
    from ..search_space import Sweep
    from ..tuning_results import TuningResult

__all__ = ["Backend", "BackendOptions", "JobRun", "LineSink", "ModelVersion", "RunStatus", "move_files",
           "safe_destination"]


class RunStatus(str, enum.Enum):
    """The one small set of states every backend's native states map onto."""

    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED)


@dataclass(frozen=True)
class ModelVersion:
    """A model registered from a run: its name, version and where it lives."""

    name: str
    version: str
    source: str = ""


LineSink = Callable[[str], None]


def safe_destination(root: Path, relative: str) -> Path:
    """``root / relative``, refusing a path that would land outside ``root``.

    Example:
        >>> safe_destination(Path("/tmp/model"), "../etc/passwd")
        Traceback (most recent call last):
        ...
        kerasjob.errors.DataError: Refusing to write '../etc/passwd' outside /tmp/model
    """
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()) or target == root.resolve():
        raise DataError(f"Refusing to write {relative!r} outside {root}")
    return target


def move_files(source: Path, destination: Path) -> Path:
    """Moves every file below ``source`` to the same place below ``destination``, refusing escapes."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = safe_destination(destination, path.relative_to(source).as_posix())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
    return destination


class JobRun(abc.ABC):
    """A submitted run. ``wait`` blocks; every other verb returns at once."""

    backend: str

    @property
    @abc.abstractmethod
    def id(self) -> str:
        """The run's id on its backend."""

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where a person can look at the run (portal URL or tracking URI)."""

    @abc.abstractmethod
    def status(self) -> RunStatus:
        """The run's current state."""

    def wait(self, *, on_line: LineSink | None = None) -> RunStatus:
        """Block until the run ends, passing each log line to ``on_line``.

        Ctrl-C cancels the run, then re-raises ``KeyboardInterrupt``.
        """
        try:
            for line in self.stream_logs():
                if on_line is not None and not is_framework_noise(line):  # the log file keeps every line
                    on_line(line)
            return self.status()
        except KeyboardInterrupt:
            self.cancel()
            raise

    @abc.abstractmethod
    def stream_logs(self) -> Iterator[str]:
        """The run's log lines so far, then new ones until it ends."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop the run; it ends as ``canceled``."""

    @abc.abstractmethod
    def metrics(self) -> dict[str, float]:
        """The latest value of each metric the run logged."""

    @abc.abstractmethod
    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the driver log."""

    @abc.abstractmethod
    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        """Register ``model_path`` of this (completed) run as a new version of ``name``."""

    def registered_model(self) -> ModelVersion | None:
        """The version the backend itself registered when the run completed (the local supervisor does, so
        that a run nobody waits for ends registered); None where whoever waits registers it."""
        return None

    @abc.abstractmethod
    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """Copy the run's files under ``prefix`` (e.g. ``outputs/model``) into ``destination``."""

    def download_outputs(self, destination: str | Path) -> Path:
        """Copy the run's ``outputs/`` folder to ``destination/outputs``."""
        return self.download_files("outputs", Path(destination) / "outputs")

    def model_registry(self) -> Any:
        """The registry this run's model is registered in (a ``kerasjob.champion.ModelRegistry``; typed ``Any``
        because ``champion`` reads runs through this module)."""
        raise NotImplementedError(f"{type(self).__name__} does not say where its models are registered.")

    def tensorflow_version(self, job: TrainingJob) -> str:
        """The TensorFlow version that trained the model (here: what the job's conda file pins)."""
        from ..environment import tensorflow_version

        return tensorflow_version(job.conda_file)

    def describe(self) -> dict[str, Any]:
        """What ``kerasjob runs show`` prints: id, backend, status, where to look, and the metrics once completed."""
        status = self.status()
        return {"run_id": self.id, "backend": self.backend, "status": status.value, "url": self.url,
                "metrics": self.metrics() if status is RunStatus.COMPLETED else {}}

    def browser_url(self) -> str | None:
        """A page a browser opens for this run (the portal on Azure ML; MLflow's UI served by ``kerasjob ui``
        locally), or None."""
        return browser_link(self.url, None)

    def _repr_html_(self) -> str:
        """In a notebook: the run as a small table, with a link to it."""
        return html_table(f"{type(self).__name__} {self.id}", [("backend", self.backend),
                                                                ("status", self.status().value)],
                          link=self.browser_url())

    def next_steps(self, model_name: str, model_version: str) -> list[str]:
        """Lines the CLI prints after a completed run: where to look at it and its model."""
        return [f"Portal: {self.url}"]


@dataclass(frozen=True)
class BackendOptions:
    """What a backend may be built from: an Azure ML workspace in any of the forms the SDKs take.

    The local backend needs none of them.
    """

    workspace: Any = None
    ml_client: Any = None
    workspace_config: str | os.PathLike[str] | None = None
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace_name: str | None = None
    auth: str = "default"
    credential: Any = None

    @property
    def names_a_workspace(self) -> bool:
        return any(value is not None for value in (self.workspace, self.ml_client, self.workspace_config,
                                                   self.subscription_id, self.resource_group, self.workspace_name))


class Backend(abc.ABC):
    """Runs a ``TrainingJob`` somewhere. ``submit`` returns a handle at once.

    What differs between backends is a method or class attribute here, never a
    test of the backend's name elsewhere.
    """

    name: ClassVar[str]
    #: Loggers of this backend's SDK that print INFO on stderr by themselves (the CLI quiets them).
    chatty_loggers: ClassVar[tuple[str, ...]] = ()
    #: Where a registered model lands, in words (for the dry-run plan).
    registry_description: ClassVar[str] = "the workspace's model registry"

    @classmethod
    def from_options(cls, options: BackendOptions) -> "Backend":
        """Build this backend from the caller's options."""
        return cls()

    def describe_compute(self, job: TrainingJob) -> str:
        """Where the job runs, in words (for the dry-run plan)."""
        compute = job.compute_config
        return (f"{compute.name} ({compute.vm_size}, {compute.min_nodes}-{compute.max_nodes} nodes, "
                f"{'low priority' if compute.low_priority else 'dedicated'}), created if absent")

    def list_runs(self, experiment: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """This backend's recent kerasjob runs, newest first, as ``backends.local.runs.list_runs`` rows (the
        local backend's are listed from its MLflow store by ``backends.local.runs``)."""
        raise ValidationError("backend", "a backend whose runs kerasjob can list (local, azureml, azureml-v2)",
                              self.name)

    def describe_compile_cache(self, job: TrainingJob) -> str:
        """Where the job's compiled programs are kept between runs, in words (for the dry-run plan)."""
        return "on" if job.compile_cache else "off (compile_cache=False)"

    def describe_workspace(self) -> str | None:
        """Which workspace and which login the job would use, in words (for the dry-run plan); None on this
        machine."""
        return None

    def data_placeholder(self, job: TrainingJob) -> str:
        """What stands for ``--data-folder`` in the dry-run plan's script arguments."""
        return f"<{job.registered_dataset[0] if job.registered_dataset else job.dataset_name}>"

    def check(self, job: TrainingJob) -> None:
        """Refuse, before any side effect, a job this backend cannot run."""

    def environment_name(self, job: TrainingJob) -> str:
        """The name the job's environment gets on this backend (derived from the conda file's content)."""
        from ..environment import read_conda_file

        return read_conda_file(job.conda_file, job.base_image).name

    @abc.abstractmethod
    def describe_data(self, job: TrainingJob) -> str:
        """How the run will receive its data, in words (for the dry-run plan)."""

    @abc.abstractmethod
    def submit(self, job: TrainingJob) -> JobRun:
        """Start the job and return its handle without waiting."""

    def attach(self, run_id: str) -> JobRun:
        """The handle of a run submitted earlier (e.g. with ``wait=False``), found by its id.

        Raises ``KerasJobError`` when no run of that id exists on this backend.
        """
        raise KerasJobError(f"The {self.name!r} backend cannot attach to run {run_id!r}.")

    def describe_run(self, run_id: str) -> dict[str, Any]:
        """What ``kerasjob runs show`` prints: the run's status, parameters, metrics and tags."""
        return self.attach(run_id).describe()

    def sweep(self, job: TrainingJob, sweep: "Sweep", *, show_output: bool = True) -> "TuningResult":
        """Run ``sweep`` over trials of ``job`` (already checked) and register the best trial's model; the backend's
        own sweeper (its package's ``sweep`` module), which ends in ``kerasjob.tuning_results.register_best``.

        Raises ``ValidationError`` on a backend that runs no sweeps.
        """
        raise ValidationError("backend", "a backend that runs sweeps", self.name)

    def endpoints(self) -> "EndpointHost":
        """Where this backend serves trained models: a ``kerasjob.hosting.EndpointHost`` (deploy, get, list) of its
        own package."""
        raise KerasJobError(f"The {self.name!r} backend cannot serve a model at an endpoint.")
