"""The Azure ML SDK v2 backend (``azure-ai-ml``): the same job as ``azureml``, one argument away.

Microsoft ended support for SDK v1 (``azureml-core``) on 2026-06-30. :class:`AzureMLv2Backend` gets or creates
the data asset, the environment and the cluster through the helpers that own them (``kerasjob.dataset``,
``kerasjob.environment``, ``_azure.compute``) and submits the translation of ``run`` (``build_command_job``);
``_azure.workspace`` makes the ``MLClient``.

Example:
    >>> backend = AzureMLv2Backend(workspace_config="config.json")    # doctest: +SKIP
    >>> run = backend.submit(TrainingJob())                          # doctest: +SKIP
    >>> run.wait(on_line=print)                                      # doctest: +SKIP
    <RunStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from .._azure.compute import get_or_create_compute_v2
from ...dataset import check_data_asset, get_or_register_folder_asset, get_or_register_mnist_asset
from ...environment import environment_version, get_or_create_environment, read_conda_file
from ...errors import KerasJobError
from ...job import TrainingJob
from ...optional import AZUREML_V2
from ...retry import azure_call
from .._azure.workspace import load_ml_client
from .._azure import AzureBackend, map_status, workspace_arguments
from ..base import BackendOptions, RunStatus
from .run import AzureMLv2Run, build_command_job, data_input, find_job, submit_once, verify_workspace

if TYPE_CHECKING:
    from .._azure.endpoints import AzureEndpoints
    from ...search_space import Sweep
    from ...tuning_results import TuningResult

__all__ = ["AzureMLv2Backend"]

logger = logging.getLogger(__name__)


class AzureMLv2Backend(AzureBackend):
    """Runs jobs on an Azure ML workspace through SDK v2 (``azure-ai-ml``).

    Args:
        ml_client: an ``azure.ai.ml.MLClient``; else one is made from
            ``workspace_config`` (or ``config.json`` searched upward) or the explicit ids.
        credential: any ``azure-identity`` credential (default: the one ``auth`` names).
    """

    name = "azureml-v2"
    chatty_loggers = ("azure.ai.ml",)  # INFO handlers on stderr, added by azure-ai-ml at import
    extra = AZUREML_V2
    registered_data_noun = "data asset"
    mnist_data_noun = "MNIST data asset"

    @classmethod
    def from_options(cls, options: BackendOptions) -> "AzureMLv2Backend":
        return cls(options.ml_client, credential=options.credential, **workspace_arguments(options))

    def __init__(self, ml_client: Any = None, *, workspace_config: str | os.PathLike[str] | None = None,
                 subscription_id: str | None = None, resource_group: str | None = None,
                 workspace_name: str | None = None, auth: str = "default", credential: Any = None) -> None:
        super().__init__(ml_client, workspace_config=workspace_config, subscription_id=subscription_id,
                         resource_group=resource_group, workspace_name=workspace_name, auth=auth)
        self._credential = credential

    @property
    def ml_client(self) -> Any:
        """The ``azure.ai.ml.MLClient`` (made on first use)."""
        if self._client is None:
            self._client = load_ml_client(**self._workspace_arguments, credential=self._credential)
        return self._client

    def environment_name(self, job: TrainingJob) -> str:
        return ":".join(environment_version(read_conda_file(job.conda_file, job.base_image)))

    def list_runs(self, experiment: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The workspace's kerasjob jobs (tagged ``kerasjob.backend``), newest first: ``ml_client.jobs.list()``
        (the service lists newest first), read no further than ``limit`` of them."""
        import itertools

        jobs = (each for each in azure_call(self.ml_client.jobs.list)
                if "kerasjob.backend" in (each.tags or {})
                and (experiment is None or each.experiment_name == experiment))
        rows = []
        for each in itertools.islice(jobs, limit):
            created = getattr(each.creation_context, "created_at", None)
            rows.append({"run_id": each.name, "mlflow_run_id": each.name, "name": each.display_name,
                         "experiment": each.experiment_name, "status": map_status(each.status).value,
                         "start_time": int(created.timestamp() * 1000) if created is not None else None,
                         "duration_s": None, "primary_metric": None, "primary_metric_value": None,
                         "backend": self.name, "parent_run_id": None, "is_sweep": each.type == "sweep",
                         "url": each.studio_url})
        return rows

    def prepare(self, job: TrainingJob) -> tuple[str, Any]:
        """Get or create the job's data asset, environment and cluster; return (environment, data input)."""
        self.check(job)
        client = self.ml_client
        verify_workspace(client)
        mnist_asset = None
        if job.registered_dataset is not None:
            mnist_asset = check_data_asset(client, *job.registered_dataset)
        elif job.is_model_job and job.local_data_folder is not None:
            mnist_asset = get_or_register_folder_asset(client, job.dataset_name, job.local_data_folder)
        elif job.local_data_folder is None:
            mnist_asset = get_or_register_mnist_asset(client, job.dataset_name)
        environment = get_or_create_environment(client, read_conda_file(job.conda_file, job.base_image))
        get_or_create_compute_v2(client, job.compute_config)
        return environment, data_input(job, mnist_asset)

    def submit(self, job: TrainingJob) -> "AzureMLv2Run":
        environment, data = self.prepare(job)
        command_job = build_command_job(job, environment=environment, data=data)
        submitted = submit_once(self.ml_client, command_job, experiment=job.experiment)
        logger.info("Submitted Azure ML v2 job %s", submitted.name)
        return AzureMLv2Run(self.ml_client, submitted)

    def attach(self, run_id: str) -> "AzureMLv2Run":
        """The handle of job ``run_id`` (its name), submitted earlier; ``KerasJobError`` when there is none."""
        AZUREML_V2.require()
        verify_workspace(self.ml_client)
        job = find_job(self.ml_client, run_id)
        if job is None:
            raise KerasJobError(f"No Azure ML job named {run_id!r} in workspace {self.ml_client.workspace_name!r}.")
        return AzureMLv2Run(self.ml_client, job)

    def sweep(self, job: TrainingJob, sweep: "Sweep", *, show_output: bool = True) -> "TuningResult":
        """A ``command(...).sweep(...)`` job over trials of ``job`` (``sweep.run_sweep_v2``)."""
        from .sweep import run_sweep_v2

        return run_sweep_v2(self, job, sweep, show_output=show_output)

    def endpoints(self) -> "AzureEndpoints":
        """The workspace's managed online endpoints (``_azure.endpoints.AzureEndpoints``)."""
        from .._azure.endpoints import AzureEndpoints

        AZUREML_V2.require()
        return AzureEndpoints(self.ml_client, backend=self.name)
