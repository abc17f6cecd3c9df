"""What the two Azure ML backends share, whichever SDK they speak.

- :data:`STATUS_MAP`: both SDKs' run/job state names (the same run-history
  states) onto :class:`RunStatus`;
- :func:`translate_distribution`: the one shape of the distribution translation,
  each SDK giving its own TensorFlow and MPI constructors;
- :class:`SweepBest` and :func:`best_of`: a sweep followed by id (``runs wait``) ends as ``tune`` does,
  with its best completed trial judged by the sweep's own metric and goal;
- :class:`AzureBackend`: the workspace arguments (a client object, else
  ``config.json`` or explicit ids with a login), their offline check, and the
  dry-run's words for the data.

Example:
    >>> STATUS_MAP["NotResponding"]
    <RunStatus.RUNNING: 'running'>
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, TypeVar

from ...dataset import mnist_urls
from ...job import MpiDistribution, TensorflowDistribution, TrainingJob
from ...optional import Extra
from ...errors import TrainingFailed
from .workspace import WorkspaceIds, check_workspace_arguments, read_config
from ..base import Backend, BackendOptions, JobRun, RunStatus

__all__ = ["BACKEND_TAG", "CHECKPOINT_FLAG", "CHECKPOINT_OUTPUT", "COMPILE_CACHE_DATASTORE", "COMPILE_CACHE_OUTPUT",
           "COMPILE_CACHE_PATH", "describe_compile_cache", "FINAL_STATES", "STATUS_MAP", "AzureBackend",
           "SweepBest", "best_of", "keeps_checkpoints", "map_status", "translate_distribution", "workspace_arguments"]

#: The output that holds the packaged trainers' per-epoch checkpoints on Azure ML, and the flag they read it from.
CHECKPOINT_OUTPUT, CHECKPOINT_FLAG = "checkpoints", "--checkpoint-dir"
#: The compile cache on Azure ML (``kerasjob.training.compile_cache``): one folder on the default datastore
#: (``workspaceblobstore``, the name both SDKs default an output to) that outlives every job, mounted read-write
#: by each run of kerasjob's trainers, so that a sweep's trials and later jobs read the programs the first one
#: compiled (v2: an output ``uri_folder`` in ``rw_mount`` mode with this ``azureml://`` path; v1:
#: ``OutputFileDatasetConfig(destination=(datastore name, path)).as_mount()``).
COMPILE_CACHE_OUTPUT, COMPILE_CACHE_DATASTORE, COMPILE_CACHE_PATH = ("compile_cache", "workspaceblobstore",
                                                                     "kerasjob/compile-cache")


def describe_compile_cache(job: Any) -> str:
    """Where an Azure ML job keeps its compiled programs, for the dry-run plan."""
    if not job.compile_cache:
        return "off (compile_cache=False)"
    if not keeps_checkpoints(job):
        return "the script's own affair (kerasjob's trainers mount one; a script of your own is left as it is)"
    return (f"{COMPILE_CACHE_PATH}/ on datastore {COMPILE_CACHE_DATASTORE}, mounted read-write by every job and sweep "
            "trial (clear it by deleting that folder in the datastore)")


def keeps_checkpoints(job: Any) -> bool:
    """Whether the job's script is one of kerasjob's trainers (``keras_mnist.py``, ``keras_fit.py``), which write a
    checkpoint after every epoch into ``--checkpoint-dir`` and resume from the newest one when they start.

    Why a location outside the node: a low-priority node is preempted when Azure needs it back, and Azure ML
    then starts the same job again, from the beginning of its command, on another node ("the risk [...] of
    having the job interrupted and later re-started", hi-ml: "Using Cheap Low Priority VMs",
    https://hi-ml.readthedocs.io/en/latest/lowpriority.html; Azure Batch, on which AmlCompute runs, requeues a
    preempted task and loses "all work that wasn't appropriately checkpointed", MicrosoftDocs azure-docs,
    batch-spot-vms). The node's disk, ``./outputs`` included, does not come along, so the checkpoints go to
    the workspace's default datastore, keyed by the job, which a restart of the same job sees again:

    - v2: an output ``uri_folder`` in ``rw_mount`` mode (``azure.ai.ml.constants.InputOutputModes.RW_MOUNT``)
      without a path, so the service puts it on the workspace's default datastore under the job's name and the
      output's name (the SDK leaves the default to the service), passed as
      ``--checkpoint-dir ${{outputs.checkpoints}}``;
    - v1: ``OutputFileDatasetConfig(name="checkpoints").as_mount()`` (azureml/data/output_dataset_config.py:
      destination defaults to ``workspaceblobstore`` at ``dataset/{run-id}/{output-name}``), passed the same way.
    """
    return bool(job.uses_packaged_script or getattr(job, "is_model_job", False))

T = TypeVar("T")

#: The tag each kerasjob run carries in a workspace (its value: the backend's name); ``runs list`` looks for it.
BACKEND_TAG = "kerasjob.backend"

#: Azure ML run states (SDK v1 ``azureml._restclient.constants.RunStatus``; SDK v2 ``JobStatus``) -> kerasjob's.
STATUS_MAP: dict[str, RunStatus] = {
    "NotStarted": RunStatus.QUEUED, "Queued": RunStatus.QUEUED, "Unapproved": RunStatus.QUEUED,
    "Paused": RunStatus.QUEUED,
    "Starting": RunStatus.PREPARING, "Preparing": RunStatus.PREPARING, "Provisioning": RunStatus.PREPARING,
    "Running": RunStatus.RUNNING, "Finalizing": RunStatus.RUNNING, "CancelRequested": RunStatus.RUNNING,
    "Pausing": RunStatus.RUNNING,
    # NotResponding: the service lost contact for a while; the run may recover, so it is not final.
    "NotResponding": RunStatus.RUNNING,
    "Completed": RunStatus.COMPLETED, "Failed": RunStatus.FAILED, "Canceled": RunStatus.CANCELED,
}
#: The native states after which a run never changes.
FINAL_STATES = ("Completed", "Failed", "Canceled")


@dataclass(frozen=True)
class SweepBest:
    """A sweep's best completed trial: its handle, the sweep's metric and goal, its value, its swept values."""

    run: JobRun
    metric: str
    goal: str
    value: float | None
    parameters: dict[str, Any] = field(default_factory=dict)


def best_of(sweep_id: str, scored: list[tuple[float | None, str]], goal: str, states: dict[str, str]) -> str:
    """The id of the best completed trial among ``scored`` (``(metric value, trial id)``); ``TrainingFailed``
    with ``tune``'s words when no trial completed with the metric (``states``: trial id -> native state)."""
    values = [(value, trial) for value, trial in scored if value is not None]
    if not values:
        listed = ", ".join(f"{trial} {state.lower()}" for trial, state in sorted(states.items())) or "none"
        raise TrainingFailed(f"No trial of sweep {sweep_id} completed ({listed}); nothing was registered",
                             run_id=sweep_id, status="failed")
    return (max if goal == "maximize" else min)(values, key=lambda pair: pair[0])[1]


def map_status(state: str | None) -> RunStatus:
    """kerasjob's state for a native one; an unknown (or new) state counts as still running."""
    return STATUS_MAP.get(state or "", RunStatus.RUNNING)


def translate_distribution(job: TrainingJob, *, tensorflow: Callable[[int], T],
                           mpi: Callable[[MpiDistribution], T]) -> T | None:
    """The job's distribution in an SDK's terms: ``tensorflow(worker_count)``, ``mpi(distribution)``, or None.

    TensorFlow gets no parameter servers (multi-worker data parallel; TF >= 2.13
    rejects an empty "ps" entry): each SDK's constructor passes ``parameter_server_count=0``.
    """
    distribution = job.distribution
    if isinstance(distribution, TensorflowDistribution):
        return tensorflow(distribution.worker_count)
    if isinstance(distribution, MpiDistribution):
        return mpi(distribution)
    return None


def workspace_arguments(options: BackendOptions) -> dict[str, Any]:
    """The keyword arguments an Azure backend takes from ``options`` besides its client object."""
    return dict(workspace_config=options.workspace_config, subscription_id=options.subscription_id,
                resource_group=options.resource_group, workspace_name=options.workspace_name, auth=options.auth)


class AzureBackend(Backend):
    """A backend on an Azure ML workspace: a client object given, or one loaded on first use from
    ``workspace_config`` (else ``config.json`` searched upward) or the explicit ids, with ``auth``."""

    #: The optional dependency this backend's SDK comes from.
    extra: ClassVar[Extra]
    #: How the dry-run plan calls a registered dataset and the MNIST one on this SDK.
    registered_data_noun: ClassVar[str]
    mnist_data_noun: ClassVar[str]

    def __init__(self, client: Any = None, *, workspace_config: str | os.PathLike[str] | None = None,
                 subscription_id: str | None = None, resource_group: str | None = None,
                 workspace_name: str | None = None, auth: str = "default") -> None:
        self._client = client
        self._workspace_arguments: dict[str, Any] = dict(
            config=workspace_config, subscription_id=subscription_id, resource_group=resource_group,
            workspace_name=workspace_name, auth=auth)

    def check(self, job: TrainingJob) -> None:
        self.extra.require()
        if self._client is None:
            check_workspace_arguments(**self._workspace_arguments)

    def describe_compile_cache(self, job: TrainingJob) -> str:
        return describe_compile_cache(job)

    def describe_workspace(self) -> str | None:
        arguments = self._workspace_arguments
        if self._client is not None:  # a v1 Workspace or a v2 MLClient, given by the caller
            client = self._client
            group = getattr(client, "resource_group", None) or getattr(client, "resource_group_name", "?")
            name = getattr(client, "workspace_name", None) or getattr(client, "name", "?")
            ids = WorkspaceIds(str(getattr(client, "subscription_id", "?")), str(group), str(name))
            source, login = "the client given", "the client's"
        else:
            path = check_workspace_arguments(**arguments)
            ids = read_config(path) if path is not None else WorkspaceIds(
                arguments["subscription_id"], arguments["resource_group"], arguments["workspace_name"])
            source, login = (str(path) if path is not None else "explicit ids"), arguments["auth"]
        return (f"{ids.workspace_name} (subscription {ids.subscription_id}, resource group {ids.resource_group}; "
                f"from {source}), login: {login}")

    def describe_data(self, job: TrainingJob) -> str:
        if job.registered_dataset:
            name, version = job.registered_dataset
            return f"{self.registered_data_noun} {name} (version {version or 'latest'}), {job.data_mode}"
        if job.local_data_folder is not None:
            return f"local folder {job.local_data_folder}, uploaded on submit, {job.data_mode}"
        source = mnist_urls()[0].rsplit("/", 1)[0]
        return f"{self.mnist_data_noun} {job.dataset_name!r} from {source}/, {job.data_mode}"
