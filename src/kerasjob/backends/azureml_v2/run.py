"""An Azure ML SDK v2 job (``azure-ai-ml``): the translation ``TrainingJob`` -> ``azure.ai.ml.command(...)``
(:func:`build_command_job`, pure: it makes no call), its submission under a fixed name (:func:`submit_once`), the run
handle (:class:`AzureMLv2Run`) and the workspace's model registry (:class:`AzureMLv2ModelRegistry`). ``log`` turns
what ``jobs.stream`` prints into log lines; ``backend`` prepares the assets and submits.

Example:
    >>> backend = AzureMLv2Backend(workspace_config="config.json")    # doctest: +SKIP
    >>> run = backend.submit(TrainingJob())                          # doctest: +SKIP
    >>> run.wait(on_line=print)                                      # doctest: +SKIP
    <RunStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from ...azure_errors import is_not_found
from ...champion import ALIAS_TAG_VALUE, RegisteredVersion, TaggedAliasRegistry, tag_aliases
from ...environment import environment_version
from ...errors import DataError, WorkspaceNotFound, was_interrupted
from ...job import MpiDistribution, TrainingJob
from ...quiet import is_framework_noise
from ...retry import azure_call, create_once
from ...training.compile_cache import COMPILE_CACHE_FLAG, OFF
from ...training.contract import DATA_FOLDER_FLAG, flag_for
from .._azure.workspace import tracking_client
from .._azure import (CHECKPOINT_FLAG, CHECKPOINT_OUTPUT, COMPILE_CACHE_DATASTORE, COMPILE_CACHE_OUTPUT,
                      COMPILE_CACHE_PATH, FINAL_STATES, STATUS_MAP, SweepBest, best_of, keeps_checkpoints, map_status,
                      translate_distribution)
from .log import JobLog, LineWriter, service_error
from ..base import JobRun, LineSink, ModelVersion, RunStatus, move_files

__all__ = ["DATA_INPUT", "JOB_TAG", "LOG_TAIL_LINES", "POLL_SECONDS", "STATUS_MAP", "AzureMLv2ModelRegistry",
           "AzureMLv2Run", "build_command_job", "command_line", "compile_cache_uri", "data_input",
           "distribution_config", "find_job", "submit_once",
           "verify_workspace"]

logger = logging.getLogger(__name__)

DATA_INPUT = "data_folder"
LOG_TAIL_LINES = 200
#: Seconds between two ``jobs.get`` once ``jobs.stream`` has returned before the job ended.
POLL_SECONDS = 10
#: Tag that ties a registered model version to the job it came from (its identity on a retry).
JOB_TAG = "kerasjob.job"


def data_input(job: TrainingJob, mnist_asset: str | None = None) -> Any:
    """The ``uri_folder`` input for the job's data: a registered asset, the MNIST asset, or a local folder."""
    from azure.ai.ml import Input
    from azure.ai.ml.constants import AssetTypes, InputOutputModes

    mode = InputOutputModes.DOWNLOAD if job.data_mode == "download" else InputOutputModes.RO_MOUNT
    if job.is_model_job and mnist_asset:  # a model job's data, registered once as a versioned asset
        path = mnist_asset
    elif job.registered_dataset and not mnist_asset:
        name, version = job.registered_dataset
        path = f"azureml:{name}:{version}" if version else f"azureml:{name}@latest"
    elif job.local_data_folder is not None:
        path = str(job.local_data_folder)  # uploaded by Azure ML on submit
    else:
        path = mnist_asset or f"azureml:{job.dataset_name}@latest"
    return Input(type=AssetTypes.URI_FOLDER, path=path, mode=mode)


def distribution_config(job: TrainingJob) -> Any:
    """``TensorFlowDistribution`` / ``MpiDistribution`` for the job, or None."""
    from azure.ai.ml import MpiDistribution as AzureMpi
    from azure.ai.ml import TensorFlowDistribution as AzureTensorFlow

    def mpi(distribution: MpiDistribution) -> Any:
        return AzureMpi(process_count_per_instance=distribution.process_count_per_node)

    return translate_distribution(
        job, tensorflow=lambda workers: AzureTensorFlow(worker_count=workers, parameter_server_count=0), mpi=mpi)


def command_line(job: TrainingJob) -> str:
    """``python SCRIPT --data-folder ${{inputs.data_folder}} --batch-size ${{inputs.batch_size}} ...``."""
    import shlex

    parts = ["python", job.entry_script, DATA_FOLDER_FLAG, "${{inputs.%s}}" % DATA_INPUT, *job.model_arguments]
    for name in job.script_inputs:
        parts += [flag_for(name), "${{inputs.%s}}" % name]
    if keeps_checkpoints(job):  # resumed from by a restart after preemption (see keeps_checkpoints)
        parts += [CHECKPOINT_FLAG, "${{outputs.%s}}" % CHECKPOINT_OUTPUT,
                  COMPILE_CACHE_FLAG, "${{outputs.%s}}" % COMPILE_CACHE_OUTPUT if job.compile_cache else OFF]
    return " ".join(parts + [shlex.quote(argument) for argument in job.arguments])


def compile_cache_uri() -> str:
    """The datastore folder every v2 job of kerasjob's trainers mounts as its compile cache."""
    return f"azureml://datastores/{COMPILE_CACHE_DATASTORE}/paths/{COMPILE_CACHE_PATH}/"


def build_command_job(job: TrainingJob, *, environment: str, data: Any = None) -> Any:
    """The pure translation: ``TrainingJob`` -> ``azure.ai.ml.command(...)`` (nothing is sent).

    ``environment`` is ``"name:version"`` of an environment asset (see
    ``kerasjob.environment.environment_version``); ``data`` the data input (default: :func:`data_input`).
    """
    from azure.ai.ml import Output, command

    inputs = {DATA_INPUT: data if data is not None else data_input(job), **job.script_inputs}
    outputs = {CHECKPOINT_OUTPUT: Output(type="uri_folder", mode="rw_mount")} if keeps_checkpoints(job) else None
    if outputs is not None and job.compile_cache:  # one folder for every job: the next one reads what this compiles
        outputs[COMPILE_CACHE_OUTPUT] = Output(type="uri_folder", mode="rw_mount", path=compile_cache_uri())
    return command(
        outputs=outputs,
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


def find_job(ml_client: Any, name: str) -> Any:
    """The job called ``name``, or None when the workspace has none."""
    try:
        return azure_call(ml_client.jobs.get, name)
    except Exception as error:  # noqa: BLE001 - only "not found" means None
        if not is_not_found(error):
            raise
        return None


def verify_workspace(ml_client: Any) -> Any:
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


def submit_once(ml_client: Any, azure_job: Any, *, experiment: str) -> Any:
    """``jobs.create_or_update`` under a fixed name; a lost response is looked up, never sent twice."""
    if not azure_job.name:
        azure_job.name = f"{experiment}-{uuid.uuid4().hex[:12]}".lower()
    return create_once(lambda: ml_client.jobs.create_or_update(azure_job, experiment_name=experiment),
                       find=lambda: find_job(ml_client, azure_job.name), what=f"Azure ML job {azure_job.name}")


class AzureMLv2ModelRegistry(TaggedAliasRegistry):
    """A workspace's model registry through SDK v2, which has no aliases: the champion carries the tag
    ``champion=true``. A version's tags change by sending it again: ``models.create_or_update`` of the same
    name and version is a PUT of that version (azure/ai/ml/operations/_model_operations.py), which Azure
    takes for tags and description (not the path). Versions are tied to their job by the tag ``JOB_TAG``."""

    def __init__(self, ml_client: Any) -> None:
        self.ml_client = ml_client

    def entities(self, name: str) -> list[tuple[RegisteredVersion, Any]]:
        try:
            models = azure_call(lambda: list(self.ml_client.models.list(name=name)))
        except Exception as error:  # noqa: BLE001 - only "not found" means none
            if not is_not_found(error):
                raise
            return []
        found = []
        for model in sorted(models, key=lambda each: int(each.version)):
            tags = dict(model.tags or {})
            found.append((RegisteredVersion(model.name, str(model.version), tags.get(JOB_TAG), model.path or "",
                                            tags, tag_aliases(tags)), model))
        return found

    def retag(self, entity: Any, tag: str, *, add: bool) -> None:
        tags = {key: value for key, value in (entity.tags or {}).items() if key != tag}
        entity.tags = {**tags, tag: ALIAS_TAG_VALUE} if add else tags
        azure_call(self.ml_client.models.create_or_update, entity)


class AzureMLv2Run(JobRun):
    """Handle on a submitted ``azure.ai.ml`` job (the job entity, or its name to look up)."""

    backend = "azureml-v2"

    def __init__(self, ml_client: Any, job: Any) -> None:
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
        return map_status(self.job.status)

    def reason(self) -> str:
        """The service's error message for a failed job (empty when there is none)."""
        return self._reason

    def _stream(self, sink: LineSink) -> None:
        """Runs ``jobs.stream`` (which prints the job's output until it ends), handing each log line to ``sink``.

        Raises ``KeyboardInterrupt`` on Ctrl-C (the SDK wraps it in a ``JobException``).
        """
        log = JobLog(sink)

        def stream() -> None:
            log.restart()
            writer = LineWriter(log, sys.stdout)
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
            if on_line is not None and not is_framework_noise(line):
                on_line(line)

        try:
            self._stream(sink)
            return self._poll_until_final()
        except KeyboardInterrupt:
            self.cancel()
            raise

    @property
    def is_sweep(self) -> bool:
        """Whether this is a sweep job (its trials are child jobs)."""
        return str(getattr(self.job, "type", "")).lower() == "sweep"

    def cancel(self) -> None:
        """``jobs.begin_cancel``: for a sweep, the service cancels its unfinished trials too."""
        azure_call(self.ml_client.jobs.begin_cancel, self.id).result()

    def sweep_best(self) -> SweepBest | None:
        """For a sweep job: its best completed trial by the sweep's own objective (the service's
        ``best_child_run_id`` when set, else the trials' MLflow metrics) and the swept values the trial's
        script logged; None for any other job. A sweep parent holds no ``outputs/model`` to register."""
        if not self.is_sweep:
            return None
        objective = self.job.objective
        metric, goal = str(objective.primary_metric), str(objective.goal).lower()
        children = [child for child in azure_call(lambda: list(self.ml_client.jobs.list(parent_job_name=self.id)))
                    if child is not None]
        states = {child.name: str(child.status) for child in children}
        completed = [name for name, state in states.items() if state == "Completed"]
        named = (self.job.properties or {}).get("best_child_run_id")
        runs = {name: AzureMLv2Run(self.ml_client, name) for name in completed}
        scored = [(runs[name].metrics().get(metric), name) for name in completed]
        best = named if named in runs else best_of(self.id, scored, goal, states)
        params = runs[best].params()
        swept = {name: params[name] for name in (self.job.search_space or {}) if name in params}
        return SweepBest(runs[best], metric, goal, dict((name, value) for value, name in scored).get(best), swept)

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
        model = Model(name=name, path=path, type=AssetTypes.MLFLOW_MODEL, tags={**tags, JOB_TAG: self.id},
                      description=f"Trained by Azure ML job {self.id}, registered by kerasjob")

        registered = create_once(lambda: self.ml_client.models.create_or_update(model),
                                 find=lambda: self.model_registry().registered_from(name, self.id),
                                 what=f"model {name} from job {self.id}")
        return ModelVersion(name=registered.name, version=str(registered.version), source=path)

    def model_registry(self) -> "AzureMLv2ModelRegistry":
        """The workspace's model registry, where the champion alias is a tag (``AzureMLv2ModelRegistry``)."""
        return AzureMLv2ModelRegistry(self.ml_client)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """The job's artifacts under ``prefix`` (``jobs.download``; refusing any that would land outside)."""
        with tempfile.TemporaryDirectory() as staging:
            azure_call(self.ml_client.jobs.download, self.id, download_path=staging, all=True)
            artifacts = Path(staging) / "artifacts" / prefix.strip("/")
            if not artifacts.is_dir():
                raise DataError(f"Job {self.id} has no files under {prefix!r}.")
            return move_files(artifacts, Path(destination))
