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
import json
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

from ..optional import AZUREML_V2
from ..dataset import DATASET_SOURCES_TAG, _sources_digest, mnist_urls
from ..environment import ENVIRONMENT_PREFIX, read_conda_file
from ..errors import DataError, KerasJobError, SubmissionError, WorkspaceNotFound, causes, was_interrupted
from ..job import MpiDistribution, TensorflowDistribution, TrainingJob
from ..retry import azure_call, create_once
from ..training.contract import DATA_FOLDER_FLAG, flag_for
from ..workspace import check_workspace_arguments
from .base import Backend, BackendOptions, JobRun, LineSink, ModelVersion, RunStatus, move_files

logger = logging.getLogger(__name__)

#: Azure ML v2 job states -> kerasjob's.
STATUS_MAP = {
    "NotStarted": RunStatus.QUEUED, "Queued": RunStatus.QUEUED, "Paused": RunStatus.QUEUED,
    "Starting": RunStatus.PREPARING, "Preparing": RunStatus.PREPARING, "Provisioning": RunStatus.PREPARING,
    "Running": RunStatus.RUNNING, "Finalizing": RunStatus.RUNNING, "CancelRequested": RunStatus.RUNNING,
    # NotResponding: the service lost contact for a while; the job may recover, so it is not final.
    "NotResponding": RunStatus.RUNNING,
    "Completed": RunStatus.COMPLETED, "Failed": RunStatus.FAILED, "Canceled": RunStatus.CANCELED,
}
FINAL_STATES = ("Completed", "Failed", "Canceled")
DATA_INPUT = "data_folder"
LOG_TAIL_LINES = 200
#: Seconds between two ``jobs.get`` once ``jobs.stream`` has returned before the job ended.
POLL_SECONDS = 10
#: Tag that ties a registered model version to the job it came from (its identity on a retry).
JOB_TAG = "kerasjob.job"
_BLOB_URL = re.compile(r"^https://([a-z0-9]+)\.blob\.core\.windows\.net/([^/]+)/?(.*)$")


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
    if job.registered_dataset and not mnist_asset:
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


def is_not_found(error: BaseException) -> bool:
    """True when the service said "not found" (404), however the SDK wrapped it.

    ``data.get(name, label="latest")`` raises ``MlException`` from a
    ``ValidationException`` from the ``ResourceNotFoundError``; the cause chain tells.
    """
    from azure.core.exceptions import ResourceNotFoundError

    return any(isinstance(each, ResourceNotFoundError) or getattr(each, "status_code", None) == 404
               for each in causes(error))


def find_job(ml_client, name: str):
    """The job called ``name``, or None when the workspace has none."""
    try:
        return azure_call(ml_client.jobs.get, name)
    except Exception as error:  # noqa: BLE001 - only "not found" means None
        if not is_not_found(error):
            raise
        return None


def verify_workspace(ml_client):
    """Reads the workspace once before anything is created, so that a bad login, a workspace that does not
    exist or a missing role stops here (``kerasjob.azure_errors`` names the fix) and not halfway."""
    try:
        return azure_call(ml_client.workspaces.get, ml_client.workspace_name)
    except Exception as error:  # noqa: BLE001 - only "not found" is re-worded here
        if not is_not_found(error):
            raise
        raise WorkspaceNotFound(
            f"No Azure ML workspace {ml_client.workspace_name!r} in resource group {ml_client.resource_group_name!r} "
            f"of subscription {ml_client.subscription_id!r} (or this login cannot see it). Check config.json "
            "(download it again from the workspace's page in the Azure portal) or --subscription-id, "
            "--resource-group and --workspace-name.") from error


def submit_once(ml_client, azure_job, *, experiment: str):
    """``jobs.create_or_update`` under a fixed name; a lost response is looked up, never sent twice."""
    if not azure_job.name:
        azure_job.name = f"{experiment}-{uuid.uuid4().hex[:12]}".lower()
    return create_once(lambda: ml_client.jobs.create_or_update(azure_job, experiment_name=experiment),
                       find=lambda: find_job(ml_client, azure_job.name), what=f"Azure ML job {azure_job.name}")


def get_or_create_environment(ml_client, job: TrainingJob) -> str:
    """``name:version`` of the job's environment, created only when that version is absent."""
    from azure.ai.ml.entities import Environment

    name, version = environment_version(job)
    try:
        azure_call(ml_client.environments.get, name=name, version=version)
    except Exception as error:  # noqa: BLE001 - only "not found" means create
        if not is_not_found(error):
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
        if not is_not_found(error):
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


def check_data_asset(ml_client, name: str, version: str | None) -> str:
    """``azureml:NAME:VERSION`` of data asset ``name`` (``version``, else the latest); ``DataError`` when absent.

    The version is resolved here: azure-ai-ml does not resolve an ``azureml:NAME@latest`` job input.
    """
    try:
        asset = azure_call(ml_client.data.get, name=name, **({"version": version} if version else {"label": "latest"}))
    except Exception as error:  # noqa: BLE001 - "not found" becomes a DataError, the rest propagates
        if not is_not_found(error):
            raise
        raise DataError(f"No data asset {name!r} (version {version or 'latest'}) is registered in the "
                        "workspace.") from error
    return f"azureml:{name}:{asset.version}"


def blob_folder_uri(url: str) -> str:
    """The ``wasbs://`` form Azure ML mounts for an Azure Blob folder given as an ``https://`` URL.

        >>> blob_folder_uri("https://azureopendatastorage.blob.core.windows.net/mnist/")
        'wasbs://mnist@azureopendatastorage.blob.core.windows.net/'

    Any other mirror is refused (``DataError``): Azure ML can't list a plain HTTP
    server as a folder. Use ``data=`` a local folder (``kerasjob.download_mnist()``) instead.
    """
    match = _BLOB_URL.match(url)
    if not match:
        raise DataError(f"The MNIST mirror {url!r} is not an Azure Blob folder, which the azureml-v2 backend "
                        "needs to register it as a data asset. Pass data= a local folder instead "
                        "(kerasjob.download_mnist() fetches and verifies the four files), or a registered asset.")
    account, container, path = match.groups()
    return f"wasbs://{container}@{account}.blob.core.windows.net/{path.strip('/') + '/' if path.strip('/') else ''}"


def get_or_register_mnist_asset(ml_client, name: str, urls: list[str] | None = None) -> str:
    """``azureml:NAME:VERSION`` of the MNIST ``uri_folder`` asset; a new version only when its source changed."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    urls = urls or mnist_urls()
    folder = blob_folder_uri(urls[0].rsplit("/", 1)[0] + "/")
    digest = _sources_digest(urls)
    try:
        latest = azure_call(ml_client.data.get, name=name, label="latest")
    except Exception as error:  # noqa: BLE001 - only "not found" means register
        if not is_not_found(error):
            raise
        latest = None
    if latest is not None and (latest.tags or {}).get(DATASET_SOURCES_TAG) == digest:
        return f"azureml:{name}:{latest.version}"
    version = str(int(latest.version) + 1) if latest is not None and str(latest.version).isdigit() else "1"
    # A PUT of name:version is idempotent, so a plain retry can't register twice.
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
    sweeper = "kerasjob.sweep_v2:run_sweep_v2"
    chatty_loggers = ("azure.ai.ml",)  # INFO handlers on stderr, added by azure-ai-ml at import

    @classmethod
    def from_options(cls, options: BackendOptions) -> "AzureMLv2Backend":
        return cls(options.ml_client, workspace_config=options.workspace_config,
                   subscription_id=options.subscription_id, resource_group=options.resource_group,
                   workspace_name=options.workspace_name, auth=options.auth, credential=options.credential)

    def __init__(self, ml_client=None, *, workspace_config: str | os.PathLike | None = None,
                 subscription_id: str | None = None, resource_group: str | None = None,
                 workspace_name: str | None = None, auth: str = "default", credential=None):
        self._ml_client = ml_client
        self._client_arguments = dict(config=workspace_config, subscription_id=subscription_id,
                                      resource_group=resource_group, workspace_name=workspace_name, auth=auth)
        self._credential = credential

    def check(self, job: TrainingJob) -> None:
        AZUREML_V2.require()
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
        verify_workspace(client)
        mnist_asset = None
        if job.registered_dataset is not None:
            mnist_asset = check_data_asset(client, *job.registered_dataset)
        elif job.local_data_folder is None:
            mnist_asset = get_or_register_mnist_asset(client, job.dataset_name)
        environment = get_or_create_environment(client, job)
        get_or_create_compute(client, job)
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


class _JobLog:
    """Turns what ``stream_logs_until_completion`` prints into the job's own log lines.

    Drops the SDK's banner (``RunId:``, ``Web View:``, ``Streaming <file>`` and its
    underline, blank spacing, everything from ``Execution Summary`` on) and, since
    a retried stream prints the log again from its start, lines already delivered.
    """

    def __init__(self, sink: LineSink):
        self.sink, self.delivered, self.seen, self.summary, self.underline = sink, 0, 0, False, False

    def restart(self) -> None:
        self.seen, self.summary, self.underline = 0, False, False

    def __call__(self, line: str) -> None:
        if self.summary or line == "Execution Summary":
            self.summary = True
            return
        if self.underline and re.fullmatch(r"=+", line):
            self.underline = False
            return
        self.underline = bool(re.fullmatch(r"Streaming \S+", line))
        if self.underline or not line.strip() or line.startswith(("RunId: ", "Web View: ")):
            return
        self.seen += 1
        if self.seen > self.delivered:
            self.delivered += 1
            self.sink(line)


def service_error(error: BaseException) -> str:
    """The service's error message from the ``JobException`` ``jobs.stream`` raises for a failed job."""
    text = str(getattr(error, "message", "") or error)
    start = text.find("{")
    try:
        details = json.loads(text[start:text.rfind("}") + 1]) if start >= 0 else None
    except ValueError:
        details = None
    if isinstance(details, dict):
        inner = details.get("error", details)
        return str(inner.get("message") or inner.get("code") or text.strip())
    return text.strip()


class AzureMLv2Run(JobRun):
    """Handle on a submitted ``azure.ai.ml`` job (the job entity, or its name to look up)."""

    backend = "azureml-v2"

    def __init__(self, ml_client, job):
        self.ml_client = ml_client
        self.job = azure_call(ml_client.jobs.get, job) if isinstance(job, str) else job
        self._tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self._reason = ""

    @property
    def id(self) -> str:
        return self.job.name

    @property
    def url(self) -> str:
        return self.job.studio_url or ""

    def status(self) -> RunStatus:
        self.job = azure_call(self.ml_client.jobs.get, self.id)
        return STATUS_MAP.get(self.job.status, RunStatus.RUNNING)

    def reason(self) -> str:
        """The service's error message for a failed job (empty when there is none)."""
        return self._reason

    def _stream(self, sink: LineSink) -> None:
        """Runs ``jobs.stream`` (which prints the job's output until it ends), handing each log line to ``sink``.

        Raises ``KeyboardInterrupt`` on Ctrl-C (the SDK wraps it in a ``JobException``).
        """
        log = _JobLog(sink)

        def stream() -> None:
            log.restart()
            writer = _LineWriter(log, sys.stdout)
            try:
                with contextlib.redirect_stdout(writer):
                    self.ml_client.jobs.stream(self.id)
            finally:
                writer.close()

        try:
            azure_call(stream)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 - a failed job makes stream() raise; status() tells
            if was_interrupted(error):
                raise KeyboardInterrupt from error
            self._reason = service_error(error)
            logger.debug("jobs.stream ended with %r", error)

    def _poll_until_final(self) -> RunStatus:
        """``jobs.stream`` may return early (CancelRequested, NotResponding, Paused, Finalizing): poll on."""
        while True:
            status = self.status()
            if self.job.status in FINAL_STATES:
                return status
            time.sleep(POLL_SECONDS)

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
            return self._poll_until_final()
        except KeyboardInterrupt:
            self.cancel()
            raise

    def cancel(self) -> None:
        azure_call(self.ml_client.jobs.begin_cancel, self.id).result()

    def metrics(self) -> dict[str, float]:
        """The job's last value of each metric, read through MLflow from the workspace."""
        run = tracking_client(self.ml_client).get_run(self.id)
        return dict(run.data.metrics)

    def params(self) -> dict[str, str]:
        """The parameters the job's script logged to MLflow (strings, as MLflow keeps them)."""
        return dict(tracking_client(self.ml_client).get_run(self.id).data.params)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._tail)[-lines:])

    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        """A new version of model ``name``; a retry after a lost response finds the version it made."""
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        path = f"azureml://jobs/{self.id}/outputs/artifacts/paths/{model_path.strip('/')}/"
        model = Model(name=name, path=path, type=AssetTypes.CUSTOM_MODEL, tags={**tags, JOB_TAG: self.id},
                      description=f"Trained by Azure ML job {self.id}, registered by kerasjob")

        def find():
            try:
                versions = azure_call(lambda: list(self.ml_client.models.list(name=name)))
            except Exception as error:  # noqa: BLE001 - only "not found" means none
                if not is_not_found(error):
                    raise
                return None
            return next((each for each in versions if (each.tags or {}).get(JOB_TAG) == self.id), None)

        registered = create_once(lambda: self.ml_client.models.create_or_update(model), find=find,
                                 what=f"model {name} from job {self.id}")
        return ModelVersion(name=registered.name, version=str(registered.version), source=path)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """The job's artifacts under ``prefix`` (``jobs.download``; refusing any that would land outside)."""
        with tempfile.TemporaryDirectory() as staging:
            azure_call(self.ml_client.jobs.download, self.id, download_path=staging, all=True)
            artifacts = Path(staging) / "artifacts" / prefix.strip("/")
            if not artifacts.is_dir():
                raise DataError(f"Job {self.id} has no files under {prefix!r}.")
            return move_files(artifacts, Path(destination))


def tracking_client(ml_client):
    """An ``MlflowClient`` on the workspace's ``azureml://`` tracking URI, authenticated as ``ml_client`` is.

    The azureml-mlflow plugin, left alone, signs in with its own chain
    (``DefaultAzureCredential``, then browser, then device code). It keeps one
    service context per tracking URI (``_AzureMLServiceContextLoader``), so we put
    in one holding the ``MLClient``'s credential first (a private azureml-mlflow API).
    """
    from urllib.parse import urlparse

    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader
    from azureml.mlflow._internal.utils import ServiceContext
    from mlflow.tracking import MlflowClient

    workspace = azure_call(ml_client.workspaces.get, ml_client.workspace_name)
    uri = workspace.mlflow_tracking_uri
    if uri.startswith("azureml://"):
        _AzureMLServiceContextLoader.add_service_context(uri, ServiceContext(
            host_url="https://" + urlparse(uri).netloc, subscription_id=ml_client.subscription_id,
            workspace_name=ml_client.workspace_name, resource_group_name=ml_client.resource_group_name,
            auth=ml_client._credential))
    return MlflowClient(tracking_uri=uri)
