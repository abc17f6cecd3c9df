"""The Azure ML SDK v1 backend (``azureml-core``), call for call the seed walkthrough.

``Workspace.from_config`` -> MNIST ``FileDataset`` (registered once) -> get-or-create
``AmlCompute`` -> ``Environment`` from the conda file on a GPU image ->
``ScriptRunConfig`` -> ``Experiment.submit``. ``build_script_run_config`` is the
pure translation, testable offline; ``submit`` is the part with side effects.

Example:
    >>> backend = AzureMLBackend(workspace_config="config.json")   # doctest: +SKIP
    >>> run = backend.submit(TrainingJob())                         # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from ..azure_errors import is_not_found
from ..champion import ALIAS_TAG_VALUE, RegisteredVersion, TaggedAliasRegistry, tag_aliases
from ..compute import DEFAULT_TIMEOUT_MINUTES, get_or_create_compute
from ..dataset import dataset_input, get_or_register_mnist, get_or_upload_folder_dataset, get_registered_dataset
from ..environment import build_environment, read_conda_file
from ..errors import DataError, KerasJobError, ValidationError
from ..job import MpiDistribution, TrainingJob
from ..optional import AZUREML
from ..retry import azure_call, create_once
from ..workspace import load_workspace
from ..training.compile_cache import COMPILE_CACHE_FLAG, OFF
from ._azure import (BACKEND_TAG, CHECKPOINT_FLAG, CHECKPOINT_OUTPUT, COMPILE_CACHE_DATASTORE, COMPILE_CACHE_OUTPUT,
                     COMPILE_CACHE_PATH, STATUS_MAP, AzureBackend, SweepBest, best_of,
                     keeps_checkpoints, map_status, translate_distribution, workspace_arguments)
from .base import BackendOptions, JobRun, ModelVersion, RunStatus, safe_destination

__all__ = ["DEFAULT_POLL_SECONDS", "DRIVER_LOG_MARKERS", "STATUS_MAP", "AzureMLBackend", "AzureMLModelRegistry",
           "AzureMLRun", "build_script_run_config", "distributed_job_config", "last_metric", "new_run_id"]

logger = logging.getLogger(__name__)

#: Seconds between two reads of a running run's logs (tests set 0).
DEFAULT_POLL_SECONDS = 5.0
#: The logs that hold the script's output (v1 images name them either way).
DRIVER_LOG_MARKERS = ("std_log", "driver_log")


def distributed_job_config(job: TrainingJob) -> Any:
    """``TensorflowConfiguration`` / ``MpiConfiguration`` for the job's distribution, or None."""
    from azureml.core.runconfig import MpiConfiguration, TensorflowConfiguration

    def mpi(distribution: MpiDistribution) -> Any:
        return MpiConfiguration(process_count_per_node=distribution.process_count_per_node,
                                node_count=distribution.node_count)

    return translate_distribution(
        job, tensorflow=lambda workers: TensorflowConfiguration(worker_count=workers, parameter_server_count=0),
        mpi=mpi)


def build_script_run_config(job: TrainingJob, *, data_input: Any, compute_target: Any, environment: Any) -> Any:
    """The pure translation: ``TrainingJob`` -> ``ScriptRunConfig`` (nothing is sent)."""
    from azureml.core import ScriptRunConfig

    arguments = list(job.script_arguments(data_input))
    if keeps_checkpoints(job):  # on the workspace's datastore: a restart after preemption resumes from it
        from azureml.data import OutputFileDatasetConfig

        arguments += [CHECKPOINT_FLAG, OutputFileDatasetConfig(name=CHECKPOINT_OUTPUT).as_mount()]
        # one datastore folder for every job: the next job, or a HyperDrive trial, reads what this one compiles
        arguments += [COMPILE_CACHE_FLAG, OutputFileDatasetConfig(
            name=COMPILE_CACHE_OUTPUT, destination=(COMPILE_CACHE_DATASTORE, COMPILE_CACHE_PATH)).as_mount()
            if job.compile_cache else OFF]
    config = ScriptRunConfig(
        source_directory=str(job.source_dir), script=job.entry_script,
        arguments=arguments, compute_target=compute_target, environment=environment,
        max_run_duration_seconds=int(job.timeout) if job.timeout else None,
        distributed_job_config=distributed_job_config(job),
    )
    return config  # the SDK sets node_count from distributed_job_config


class AzureMLBackend(AzureBackend):
    """Runs jobs on an Azure ML workspace through SDK v1.

    Args:
        workspace: an ``azureml.core.Workspace``; else one is loaded from
            ``workspace_config`` or the explicit ids, with ``auth``.
        compute_timeout_minutes: how long to wait for a new cluster.
        poll_seconds: how often the handle reads the run's logs while streaming.
    """

    name = "azureml"
    sweeper = "kerasjob.tuning.hyperdrive:run_hyperdrive"
    extra = AZUREML
    registered_data_noun = "registered dataset"
    mnist_data_noun = "MNIST FileDataset"

    @classmethod
    def from_options(cls, options: BackendOptions) -> "AzureMLBackend":
        return cls(options.workspace, **workspace_arguments(options))

    def __init__(self, workspace: Any = None, *, workspace_config: str | os.PathLike[str] | None = None,
                 subscription_id: str | None = None, resource_group: str | None = None,
                 workspace_name: str | None = None, auth: str = "default",
                 compute_timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES, poll_seconds: float | None = None) -> None:
        super().__init__(workspace, workspace_config=workspace_config, subscription_id=subscription_id,
                         resource_group=resource_group, workspace_name=workspace_name, auth=auth)
        self.compute_timeout_minutes = compute_timeout_minutes
        self.poll_seconds = poll_seconds

    def check(self, job: TrainingJob) -> None:
        super().check(job)
        if job.local_data_folder is not None and not job.is_model_job:  # a model job's data is uploaded once
            raise ValidationError(
                "data", "None (MNIST, registered for you) or 'azureml:NAME[:VERSION]' on backend='azureml'",
                str(job.data), hint="A local folder is not uploaded by this version; register it as a FileDataset "
                                    "(Dataset.File.upload_directory) and pass 'azureml:NAME'.",
            )

    @property
    def workspace(self) -> Any:
        """The ``azureml.core.Workspace`` (loaded on first use)."""
        if self._client is None:
            self._client = load_workspace(**self._workspace_arguments)
        return self._client

    def _dataset(self, job: TrainingJob) -> Any:
        if job.registered_dataset:
            name, version = job.registered_dataset
            dataset = get_registered_dataset(self.workspace, name, version)
            if dataset is None:
                raise DataError(f"No dataset {name!r} (version {version or 'latest'}) is registered in the workspace.")
            return dataset
        if job.is_model_job and job.local_data_folder is not None:
            return get_or_upload_folder_dataset(self.workspace, job.dataset_name, job.local_data_folder)
        return get_or_register_mnist(self.workspace, job.dataset_name)

    def build_run_config(self, job: TrainingJob) -> Any:
        """Resolve compute, environment and data in the workspace; return the job's ``ScriptRunConfig``."""
        self.check(job)
        compute_target = get_or_create_compute(self.workspace, job.compute_config, self.compute_timeout_minutes)
        environment = build_environment(read_conda_file(job.conda_file, job.base_image))
        data_input = dataset_input(self._dataset(job), job.data_mode)
        return build_script_run_config(job, data_input=data_input, compute_target=compute_target.name,
                                       environment=environment)

    def submit(self, job: TrainingJob) -> "AzureMLRun":
        config = self.build_run_config(job)
        run = self.submit_once(job.experiment, config, new_run_id(job.experiment))
        logger.info("Submitted Azure ML run %s", run.id)
        return AzureMLRun(run, poll_seconds=self.poll_seconds)

    def submit_once(self, experiment_name: str, config: Any, run_id: str) -> Any:
        """``Experiment.submit`` under a fixed ``run_id``, never twice (a lost response is looked up); the run
        is then tagged ``kerasjob.backend`` (``Run.set_tags``), which ``list_runs`` looks for."""
        from azureml.core import Experiment

        experiment = Experiment(workspace=self.workspace, name=experiment_name)
        run = create_once(lambda: experiment.submit(config, run_id=run_id),
                          find=lambda: self.find_run(run_id), what=f"Azure ML run {run_id}")
        azure_call(run.set_tags, {BACKEND_TAG: self.name})  # after the submit: a failed tag never resubmits
        return run

    def list_runs(self, experiment: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The workspace's kerasjob runs (tagged ``kerasjob.backend``), newest first, as
        ``kerasjob.local_runs.list_runs`` rows: ``Experiment.list`` (one experiment when named), then each one's
        ``Experiment.get_runs(tags=...)`` (run history lists top-level runs, newest first), ``limit`` of each."""
        import itertools

        from azureml.core import Experiment

        experiments = azure_call(Experiment.list, self.workspace, experiment_name=experiment)
        runs = [run for each in experiments
                for run in azure_call(lambda: list(itertools.islice(each.get_runs(tags=BACKEND_TAG), limit)))]
        rows = [_run_row(run, self.name) for run in runs]
        return sorted(rows, key=lambda row: -(row["start_time"] or 0))[:limit]

    def find_run(self, run_id: str) -> Any:
        """The ``azureml.core`` run ``run_id`` (a HyperDrive parent comes back as a ``HyperDriveRun``), or None."""
        from azureml.core import Run

        try:
            return azure_call(Run.get, self.workspace, run_id)
        except Exception as error:
            if is_not_found(error):
                return None
            raise

    def attach(self, run_id: str) -> "AzureMLRun":
        run = self.find_run(run_id)
        if run is None:
            raise KerasJobError(f"No Azure ML run {run_id!r} in workspace {self.workspace.name!r}.")
        return AzureMLRun(run, poll_seconds=self.poll_seconds)

    def endpoints(self) -> Any:
        """Managed online endpoints in the same workspace, through azure-ai-ml: SDK v1's ACI/AKS web services
        are deprecated (``kerasjob.azure_endpoints.v1_workspace_endpoints``)."""
        from ..azure_endpoints import v1_workspace_endpoints

        return v1_workspace_endpoints(self._client, **self._workspace_arguments)


class AzureMLModelRegistry(TaggedAliasRegistry):
    """A workspace's model registry through SDK v1, which has no aliases: the champion carries the tag
    ``champion=true``, moved with ``Model.update_tags_properties`` (azureml/core/model.py: one PATCH of
    ``/kvTags`` per version)."""

    def __init__(self, workspace: Any) -> None:
        self.workspace = workspace

    def _models(self, name: str, run_id: str | None = None) -> list[Any]:
        from azureml.core import Model

        return sorted(azure_call(Model.list, self.workspace, name=name, run_id=run_id), key=lambda m: m.version)

    @staticmethod
    def _version(model: Any) -> RegisteredVersion:
        tags = dict(model.tags or {})
        return RegisteredVersion(model.name, str(model.version), model.run_id, model.url or "", tags,
                                 tag_aliases(tags))

    def entities(self, name: str) -> list[tuple[RegisteredVersion, Any]]:
        return [(self._version(model), model) for model in self._models(name)]

    def registered_from(self, name: str, run_id: str) -> RegisteredVersion | None:
        found = self._models(name, run_id)
        return self._version(found[-1]) if found else None

    def retag(self, entity: Any, tag: str, *, add: bool) -> None:
        if add:
            azure_call(entity.update_tags_properties, add_tags={tag: ALIAS_TAG_VALUE})
        else:
            azure_call(entity.update_tags_properties, remove_tags=[tag])


def last_metric(run: Any, name: str) -> float | None:
    """The last value ``run`` (an ``azureml.core`` run) logged for metric ``name``; None when absent or NaN."""
    value = azure_call(run.get_metrics).get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _run_row(run: Any, backend: str) -> dict[str, Any]:
    """An ``azureml.core`` run as listed (``Experiment.get_runs``) in a ``local_runs.list_runs`` row, from what
    the listing brought: no call per run."""
    import datetime

    listed = run._run_dto  # the RunDto the listing returned (as a dict): its creation time, which Run lacks
    created = listed.get("created_utc") if isinstance(listed, dict) else None
    if isinstance(created, str):
        created = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    if isinstance(created, datetime.datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)  # run history's times are UTC
    return {"run_id": run.id, "mlflow_run_id": run.id, "name": run.display_name, "experiment": run.experiment.name,
            "status": map_status(run.status).value,
            "start_time": int(created.timestamp() * 1000) if isinstance(created, datetime.datetime) else None,
            "duration_s": None, "primary_metric": None, "primary_metric_value": None, "backend": backend,
            "parent_run_id": None, "is_sweep": run.type == "hyperdrive", "url": run.get_portal_url()}


def new_run_id(experiment_name: str) -> str:
    """A run id fixed before the first submit, as ``Experiment.submit`` would make one."""
    return f"{experiment_name}_{int(time.time())}_{uuid.uuid4().hex[:8]}"


class AzureMLRun(JobRun):
    """Handle on an ``azureml.core.Run``."""

    backend = "azureml"

    def __init__(self, run: Any, poll_seconds: float | None = None) -> None:
        self.run = run
        self.poll_seconds = DEFAULT_POLL_SECONDS if poll_seconds is None else poll_seconds

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def url(self) -> str:
        return self.run.get_portal_url()

    def status(self) -> RunStatus:
        return map_status(azure_call(self.run.get_status))

    def _driver_log(self) -> list[str]:
        details = azure_call(self.run.get_details_with_logs)
        logs = details.get("logFiles") or {}
        for name in sorted(logs):
            if any(marker in name for marker in DRIVER_LOG_MARKERS):
                return str(logs[name]).splitlines()
        return []

    def stream_logs(self) -> Iterator[str]:
        seen = 0
        while True:
            final = self.status().is_final
            lines = self._driver_log()
            yield from lines[seen:]
            seen = max(seen, len(lines))
            if final:
                return
            time.sleep(self.poll_seconds)

    @property
    def is_sweep(self) -> bool:
        """Whether this is a HyperDrive parent (``Run.get`` hands one back as a ``HyperDriveRun``)."""
        try:
            from azureml.train.hyperdrive import HyperDriveRun
        except ImportError:  # azureml-train-core absent: no run can be one
            return False
        return isinstance(self.run, HyperDriveRun)

    def cancel(self) -> None:
        """Cancel on the service. A HyperDrive parent goes through ``HyperDriveRun.cancel``, the HyperDrive
        service's ``cancel_experiment``, which stops its trials too; ``Run.cancel`` would only post a "canceled"
        event to run history and leave the trials running (azureml/train/hyperdrive/run.py, azureml/core/run.py).
        Any other run: ``Run.cancel`` is what ``ScriptRun.cancel`` does for a remote target, without
        first rebuilding the run's ``RunConfiguration`` from the service, which fails for a run this process
        did not submit (``attach``): azureml/core/script_run.py, a None project path in runconfig.py."""
        from azureml.core import Run

        if self.is_sweep:
            azure_call(self.run.cancel)
        else:
            azure_call(Run.cancel, self.run)

    def sweep_best(self) -> SweepBest | None:
        """For a HyperDrive parent: its best completed trial by the sweep's own primary metric and goal
        (``HyperDriveConfig._primary_metric_config``, rebuilt from the parent's system tags by ``Run.get``) and
        the values HyperDrive gave it (``get_hyperparameters``); None for any other run. A parent holds no
        ``outputs/model``: its ``register_model`` raises ``ModelPathNotFoundException``."""
        if not self.is_sweep:
            return None
        config = self.run.hyperdrive_config._primary_metric_config
        metric, goal = str(config["name"]), str(config["goal"]).lower()
        children = {child.id: child for child in azure_call(lambda: list(self.run.get_children()))}
        states = {trial: str(azure_call(child.get_status)) for trial, child in children.items()}
        scored = [(last_metric(children[trial], metric), trial) for trial, state in states.items()
                  if state == "Completed"]
        best = best_of(self.id, scored, goal, states)
        sampled = json.loads(azure_call(self.run.get_hyperparameters).get(best) or "{}")
        parameters = {flag.lstrip("-").replace("-", "_"): value for flag, value in sampled.items()}
        value = next(value for value, trial in scored if trial == best)
        return SweepBest(AzureMLRun(children[best], poll_seconds=self.poll_seconds), metric, goal, value, parameters)

    def metrics(self) -> dict[str, float]:
        values = azure_call(self.run.get_metrics)
        return {name: value[-1] if isinstance(value, list) else value for name, value in values.items()}

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._driver_log()[-lines:])

    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        """Register a version of ``name`` from this run; a version this run already registered is reused."""
        model = create_once(lambda: self.run.register_model(model_name=name, model_path=model_path, tags=tags),
                            find=lambda: self.model_registry().registered_from(name, self.id),
                            what=f"model {name} from run {self.id}")
        return ModelVersion(name=model.name, version=str(model.version), source=f"{self.id}/{model_path}")

    def model_registry(self) -> "AzureMLModelRegistry":
        """The workspace's model registry, where the champion alias is a tag (``AzureMLModelRegistry``)."""
        return AzureMLModelRegistry(self.run.experiment.workspace)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """Download the run's files under ``prefix`` (refusing any that would land outside)."""
        root = Path(destination)
        for name in azure_call(self.run.get_file_names):
            if name.startswith(prefix.rstrip("/") + "/"):
                target = safe_destination(root, name[len(prefix.rstrip("/")) + 1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                azure_call(self.run.download_file, name=name, output_file_path=str(target))
        return root
