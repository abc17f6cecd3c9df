"""The Azure ML SDK v2 backend (``azure-ai-ml``): the same job as ``azureml``, one argument away.

Microsoft ended support for SDK v1 (``azureml-core``) on 2026-06-30; this
module alone imports ``azure.ai.ml``. The translation ``TrainingJob`` ->
``azure.ai.ml.command(...)`` (:func:`build_command_job`) is pure and makes no
call; :class:`AzureMLv2Backend` then gets or creates the data asset, the
environment and the cluster through ``MLClient`` and submits.

Example:
    >>> backend = AzureMLv2Backend(workspace_config="config.json")    # doctest: +SKIP
    >>> run = backend.submit(TrainingJob())                          # doctest: +SKIP
    >>> run.wait(on_line=print)                                      # doctest: +SKIP
    <RunStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from .._sdk import require_azure_ai_ml
from ..dataset import DATASET_SOURCES_TAG, _sources_digest, mnist_urls
from ..environment import ENVIRONMENT_PREFIX, read_conda_file
from ..errors import DataError, SubmissionError
from ..job import MpiDistribution, TensorflowDistribution, TrainingJob
from ..retry import azure_call
from ..training.contract import DATA_FOLDER_FLAG, flag_for
from ..workspace import check_workspace_arguments
from .base import Backend, JobRun, LineSink, ModelVersion, RunStatus, move_files

logger = logging.getLogger(__name__)

#: Azure ML v2 job states -> kerasjob's.
STATUS_MAP = {
    "NotStarted": RunStatus.QUEUED, "Queued": RunStatus.QUEUED, "Paused": RunStatus.QUEUED,
    "Starting": RunStatus.PREPARING, "Preparing": RunStatus.PREPARING, "Provisioning": RunStatus.PREPARING,
    "Running": RunStatus.RUNNING, "Finalizing": RunStatus.RUNNING, "CancelRequested": RunStatus.RUNNING,
    "Completed": RunStatus.COMPLETED, "Failed": RunStatus.FAILED, "NotResponding": RunStatus.FAILED,
    "Canceled": RunStatus.CANCELED,
}
DATA_INPUT = "data_folder"
LOG_TAIL_LINES = 200


def environment_version(job: TrainingJob) -> tuple[str, str]:
    """Name and version of the job's environment asset; the version hashes conda file + image.

        >>> environment_version(TrainingJob())[0]
        'kerasjob-keras-env'
    """
    spec = read_conda_file(job.conda_file, job.base_image)
    return ENVIRONMENT_PREFIX, spec.content_hash[:16]


def data_input(job: TrainingJob, mnist_asset: str | None = None):
    """The ``uri_folder`` input for the job's data: a registered asset, the MNIST asset, or a local folder."""
    from azure.ai.ml import Input
    from azure.ai.ml.constants import AssetTypes, InputOutputModes

    mode = InputOutputModes.DOWNLOAD if job.data_mode == "download" else InputOutputModes.RO_MOUNT
    if job.registered_dataset:
        name, version = job.registered_dataset
        path = f"azureml:{name}:{version}" if version else f"azureml:{name}@latest"
    elif job.local_data_folder is not None:
        path = str(job.local_data_folder)  # uploaded by Azure ML on submit
    else:
        path = mnist_asset or f"azureml:{job.dataset_name}@latest"
    return Input(type=AssetTypes.URI_FOLDER, path=path, mode=mode)


def distribution_config(job: TrainingJob):
    """``TensorFlowDistribution`` / ``MpiDistribution`` for the job, or None."""
    from azure.ai.ml import MpiDistribution as AzureMpi
    from azure.ai.ml import TensorFlowDistribution as AzureTensorFlow

    if isinstance(job.distribution, TensorflowDistribution):
        # No parameter servers: multi-worker data parallel (TF >= 2.13 rejects an empty "ps" entry).
        return AzureTensorFlow(worker_count=job.distribution.worker_count, parameter_server_count=0)
    if isinstance(job.distribution, MpiDistribution):
        return AzureMpi(process_count_per_instance=job.distribution.process_count_per_node)
    return None


def command_line(job: TrainingJob) -> str:
    """``python SCRIPT --data-folder ${{inputs.data_folder}} --batch-size ${{inputs.batch_size}} ...``."""
    parts = ["python", job.entry_script, DATA_FOLDER_FLAG, "${{inputs.%s}}" % DATA_INPUT]
    for name in job.hyperparameters:
        parts += [flag_for(name), "${{inputs.%s}}" % name]
    return " ".join(parts)


def build_command_job(job: TrainingJob, *, environment: str, data=None):
    """The pure translation: ``TrainingJob`` -> ``azure.ai.ml.command(...)`` (nothing is sent).

    ``environment`` is ``"name:version"`` of an environment asset (see
    :func:`environment_version`); ``data`` the data input (default: :func:`data_input`).
    """
    from azure.ai.ml import command

    inputs = {DATA_INPUT: data if data is not None else data_input(job), **job.hyperparameters}
    return command(
        code=str(job.source_dir),
        command=command_line(job),
        inputs=inputs,
        environment=environment,
        compute=job.compute_config.name,
        experiment_name=job.experiment,
        display_name=f"{job.experiment}-{job.entry_script.rsplit('.', 1)[0]}",
        description="Submitted by kerasjob",
        tags={"kerasjob.backend": "azureml-v2", **{f"hp.{k}": str(v) for k, v in job.hyperparameters.items()}},
        distribution=distribution_config(job),
        instance_count=job.distribution.node_count if job.distribution is not None else 1,
        timeout=int(job.timeout) if job.timeout else None,
    )


def credential_for(auth: str = "default"):
    """The ``azure-identity`` credential for ``auth`` (the same choices as the v1 backend's)."""
    import azure.identity as identity

    return {
        "default": identity.DefaultAzureCredential,
        "interactive": identity.InteractiveBrowserCredential,
        "cli": identity.AzureCliCredential,
        "service-principal": identity.EnvironmentCredential,  # AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET
        "managed-identity": identity.ManagedIdentityCredential,
    }[auth]()


def load_ml_client(config=None, *, subscription_id=None, resource_group=None, workspace_name=None,
                   auth: str = "default", credential=None):
    """``MLClient`` from explicit ids, else from ``config.json`` (given, or searched upward).

    ``credential`` (any ``azure-identity`` credential) wins over ``auth``.
    """
    from azure.ai.ml import MLClient

    path = check_workspace_arguments(config, subscription_id=subscription_id, resource_group=resource_group,
                                     workspace_name=workspace_name, auth=auth)
    credential = credential or credential_for(auth)
    if path is None:
        return MLClient(credential, subscription_id, resource_group, workspace_name)
    return MLClient.from_config(credential=credential, path=str(path))


def _not_found(error: BaseException) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(error, ResourceNotFoundError)


def get_or_create_environment(ml_client, job: TrainingJob) -> str:
    """``name:version`` of the job's environment, created only when that version is absent."""
    from azure.ai.ml.entities import Environment

    name, version = environment_version(job)
    try:
        azure_call(ml_client.environments.get, name=name, version=version)
    except Exception as error:  # noqa: BLE001 - only "not found" means create
        if not _not_found(error):
            raise
        azure_call(ml_client.environments.create_or_update, Environment(
            name=name, version=version, image=job.base_image, conda_file=str(job.conda_file),
            description="kerasjob training environment (conda_dependencies.yml on a GPU image)"))
        logger.info("Created environment %s:%s", name, version)
    return f"{name}:{version}"


def get_or_create_compute(ml_client, job: TrainingJob):
    """The job's ``AmlCompute`` cluster, created (and waited for) when absent."""
    from azure.ai.ml.entities import AmlCompute

    config = job.compute_config
    try:
        return azure_call(ml_client.compute.get, config.name)
    except Exception as error:  # noqa: BLE001 - only "not found" means create
        if not _not_found(error):
            raise
    cluster = AmlCompute(name=config.name, size=config.vm_size, min_instances=config.min_nodes,
                         max_instances=config.max_nodes, idle_time_before_scale_down=config.idle_seconds_before_scaledown,
                         tier="low_priority" if config.low_priority else "dedicated")
    logger.info("Creating compute %s (%s, %d-%d nodes)", config.name, config.vm_size, config.min_nodes,
                config.max_nodes)
    try:
        return azure_call(ml_client.compute.begin_create_or_update, cluster).result()
    except Exception as error:  # noqa: BLE001 - surfaced with the cluster named
        raise SubmissionError(f"Could not create compute {config.name!r}: {error}") from error


def check_data_asset(ml_client, name: str, version: str | None) -> None:
    """Raises ``DataError`` when data asset ``name`` (at ``version``, else any) is not registered."""
    try:
        azure_call(ml_client.data.get, name=name, **({"version": version} if version else {"label": "latest"}))
    except Exception as error:  # noqa: BLE001 - "not found" becomes a DataError, the rest propagates
        if not _not_found(error):
            raise
        raise DataError(f"No data asset {name!r} (version {version or 'latest'}) is registered in the "
                        "workspace.") from error


def get_or_register_mnist_asset(ml_client, name: str, urls: list[str] | None = None) -> str:
    """``azureml:NAME:VERSION`` of the MNIST ``uri_folder`` asset; a new version only when its source changed."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    urls = urls or mnist_urls()
    folder = urls[0].rsplit("/", 1)[0] + "/"
    digest = _sources_digest(urls)
    try:
        latest = azure_call(ml_client.data.get, name=name, label="latest")
    except Exception as error:  # noqa: BLE001 - only "not found" means register
        if not _not_found(error):
            raise
        latest = None
    if latest is not None and (latest.tags or {}).get(DATASET_SOURCES_TAG) == digest:
        return f"azureml:{name}:{latest.version}"
    version = str(int(latest.version) + 1) if latest is not None and str(latest.version).isdigit() else "1"
    asset = azure_call(ml_client.data.create_or_update, Data(
        name=name, version=version, path=folder, type=AssetTypes.URI_FOLDER,
        description="MNIST (four IDX files), registered by kerasjob", tags={DATASET_SOURCES_TAG: digest}))
    logger.info("Registered data asset %s version %s from %s", name, asset.version, folder)
    return f"azureml:{name}:{asset.version}"


class AzureMLv2Backend(Backend):
    """Runs jobs on an Azure ML workspace through SDK v2 (``azure-ai-ml``).

    Args:
        ml_client: an ``azure.ai.ml.MLClient``; else one is made from
            ``workspace_config`` (or ``config.json`` searched upward) or the explicit ids.
        credential: any ``azure-identity`` credential (default ``DefaultAzureCredential``).
    """

    name = "azureml-v2"

    def __init__(self, ml_client=None, *, workspace_config: str | os.PathLike | None = None,
                 subscription_id: str | None = None, resource_group: str | None = None,
                 workspace_name: str | None = None, auth: str = "default", credential=None):
        self._ml_client = ml_client
        self._client_arguments = dict(config=workspace_config, subscription_id=subscription_id,
                                      resource_group=resource_group, workspace_name=workspace_name, auth=auth)
        self._credential = credential

    def check(self, job: TrainingJob) -> None:
        require_azure_ai_ml()
        if self._ml_client is None:
            check_workspace_arguments(**self._client_arguments)

    @property
    def ml_client(self):
        if self._ml_client is None:
            self._ml_client = load_ml_client(**self._client_arguments, credential=self._credential)
        return self._ml_client

    def environment_name(self, job: TrainingJob) -> str:
        return ":".join(environment_version(job))

    def describe_data(self, job: TrainingJob) -> str:
        if job.registered_dataset:
            name, version = job.registered_dataset
            return f"data asset {name} (version {version or 'latest'}), {job.data_mode}"
        if job.local_data_folder is not None:
            return f"local folder {job.local_data_folder}, uploaded on submit, {job.data_mode}"
        return f"MNIST data asset {job.dataset_name!r} from {mnist_urls()[0].rsplit('/', 1)[0]}/, {job.data_mode}"

    def prepare(self, job: TrainingJob):
        """Get or create the job's data asset, environment and cluster; return (environment, data input)."""
        self.check(job)
        client = self.ml_client
        mnist_asset = None
        if job.registered_dataset is not None:
            check_data_asset(client, *job.registered_dataset)
        elif job.local_data_folder is None:
            mnist_asset = get_or_register_mnist_asset(client, job.dataset_name)
        environment = get_or_create_environment(client, job)
        get_or_create_compute(client, job)
        return environment, data_input(job, mnist_asset)

    def submit(self, job: TrainingJob) -> "AzureMLv2Run":
        environment, data = self.prepare(job)
        command_job = build_command_job(job, environment=environment, data=data)
        submitted = azure_call(self.ml_client.jobs.create_or_update, command_job, experiment_name=job.experiment)
        logger.info("Submitted Azure ML v2 job %s", submitted.name)
        return AzureMLv2Run(self.ml_client, submitted)


class _LineWriter(io.TextIOBase):
    """A stdout stand-in that hands complete lines to ``sink``, with the real stdout back in place meanwhile
    (so a sink that prints does not write into itself)."""

    def __init__(self, sink: LineSink, real_stdout):
        self.sink, self.real_stdout, self.pending = sink, real_stdout, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            with contextlib.redirect_stdout(self.real_stdout):
                self.sink(line)
        return len(text)

    def close(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            with contextlib.redirect_stdout(self.real_stdout):
                self.sink(line)
        super().close()


class AzureMLv2Run(JobRun):
    """Handle on a submitted ``azure.ai.ml`` job."""

    backend = "azureml-v2"

    def __init__(self, ml_client, job):
        self.ml_client = ml_client
        self.job = job
        self._tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)

    @property
    def id(self) -> str:
        return self.job.name

    @property
    def url(self) -> str:
        return self.job.studio_url or ""

    def status(self) -> RunStatus:
        self.job = azure_call(self.ml_client.jobs.get, self.id)
        return STATUS_MAP.get(self.job.status, RunStatus.RUNNING)

    def _stream(self, sink: LineSink) -> None:
        """Runs ``jobs.stream`` (which prints the job's output until it ends), handing each line to ``sink``."""
        writer = _LineWriter(sink, sys.stdout)
        with contextlib.redirect_stdout(writer):
            try:
                azure_call(self.ml_client.jobs.stream, self.id)
            except Exception as error:  # noqa: BLE001 - a failed job makes stream() raise; status() tells
                logger.debug("jobs.stream ended with %r", error)
        writer.close()

    def stream_logs(self) -> Iterator[str]:
        """The job's output, line by line, once the job has ended (``wait(on_line=...)`` streams it live)."""
        lines: list[str] = []
        self._stream(lines.append)
        yield from lines

    def wait(self, *, on_line: LineSink | None = None) -> RunStatus:
        def sink(line: str) -> None:
            self._tail.append(line)
            if on_line is not None:
                on_line(line)

        try:
            self._stream(sink)
            return self.status()
        except KeyboardInterrupt:
            self.cancel()
            raise

    def cancel(self) -> None:
        azure_call(self.ml_client.jobs.begin_cancel, self.id).result()

    def metrics(self) -> dict[str, float]:
        """The job's last value of each metric, read through MLflow from the workspace."""
        from mlflow.tracking import MlflowClient

        workspace = azure_call(self.ml_client.workspaces.get, self.ml_client.workspace_name)
        run = MlflowClient(tracking_uri=workspace.mlflow_tracking_uri).get_run(self.id)
        return dict(run.data.metrics)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._tail)[-lines:])

    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        path = f"azureml://jobs/{self.id}/outputs/artifacts/paths/{model_path.strip('/')}/"
        model = azure_call(self.ml_client.models.create_or_update, Model(
            name=name, path=path, type=AssetTypes.CUSTOM_MODEL, tags=tags,
            description=f"Trained by Azure ML job {self.id}, registered by kerasjob"))
        return ModelVersion(name=model.name, version=str(model.version), source=path)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """The job's artifacts under ``prefix`` (``jobs.download``; refusing any that would land outside)."""
        with tempfile.TemporaryDirectory() as staging:
            azure_call(self.ml_client.jobs.download, self.id, download_path=staging, all=True)
            artifacts = Path(staging) / "artifacts" / prefix.strip("/")
            if not artifacts.is_dir():
                raise DataError(f"Job {self.id} has no files under {prefix!r}.")
            return move_files(artifacts, Path(destination))
