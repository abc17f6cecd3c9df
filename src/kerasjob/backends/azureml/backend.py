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
import os
from typing import TYPE_CHECKING, Any

from ...azure_errors import is_not_found
from .._azure.compute import DEFAULT_TIMEOUT_MINUTES, get_or_create_compute
from ...dataset import dataset_input, get_or_register_mnist, get_or_upload_folder_dataset, get_registered_dataset
from ...environment import build_environment, read_conda_file
from ...errors import DataError, KerasJobError, ValidationError
from ...job import MpiDistribution, TrainingJob
from ...optional import AZUREML
from ...retry import azure_call, create_once
from .._azure.workspace import load_workspace
from ...training.compile_cache import COMPILE_CACHE_FLAG, OFF
from .._azure import (BACKEND_TAG, CHECKPOINT_FLAG, CHECKPOINT_OUTPUT, COMPILE_CACHE_DATASTORE, COMPILE_CACHE_OUTPUT,
                     COMPILE_CACHE_PATH, AzureBackend, keeps_checkpoints, map_status, translate_distribution,
                     workspace_arguments)
from ..base import BackendOptions
from .run import AzureMLRun, new_run_id

if TYPE_CHECKING:
    from .._azure.endpoints import AzureEndpoints
    from ...search_space import Sweep
    from ...tuning_results import TuningResult

__all__ = ["AzureMLBackend", "build_script_run_config", "distributed_job_config"]

logger = logging.getLogger(__name__)



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
        ``backends.local.runs.list_runs`` rows: ``Experiment.list`` (one experiment when named), then each one's
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

    def sweep(self, job: TrainingJob, sweep: "Sweep", *, show_output: bool = True) -> "TuningResult":
        """A HyperDrive run over trials of ``job`` (``sweep.run_hyperdrive``)."""
        from .sweep import run_hyperdrive

        return run_hyperdrive(self, job, sweep, show_output=show_output)

    def endpoints(self) -> "AzureEndpoints":
        """Managed online endpoints in the same workspace, through azure-ai-ml: SDK v1's ACI/AKS web services
        are deprecated (``_azure.endpoints.v1_workspace_endpoints``)."""
        from .._azure.endpoints import v1_workspace_endpoints

        return v1_workspace_endpoints(self._client, **self._workspace_arguments)


def _run_row(run: Any, backend: str) -> dict[str, Any]:
    """An ``azureml.core`` run as listed (``Experiment.get_runs``) in a ``backends.local.runs.list_runs`` row, from
    what the listing brought: no call per run."""
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
