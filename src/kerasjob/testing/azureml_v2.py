"""A fake Azure ML (SDK v2, ``azure-ai-ml``) at its network boundary: the ``MLClient`` operation groups.

``FakeMLClient`` gives you a real ``MLClient`` (built offline with a fake
credential) whose operation groups -- ``jobs``, ``compute``, ``environments``,
``data``, ``models`` and ``workspaces`` -- are fakes while the ``with`` block
lasts, for every ``MLClient`` (so ``MLClient.from_config`` works too). The job
entities kerasjob builds (``command(...)``, ``Environment``, ``AmlCompute``,
``Data``, ``Model``) are real and reach the fake as they would reach Azure. The
job's metrics live in a real MLflow store that ``workspaces.get`` points at, as
Azure's workspace tracking URI does.

Example:
    >>> from kerasjob import submit_training
    >>> from kerasjob.testing import FakeMLClient
    >>> with FakeMLClient(final_status="Completed") as azure:                                   # doctest: +SKIP
    ...     result = submit_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False)
    >>> azure.submissions[0].command                                                           # doctest: +SKIP
    'python keras_mnist.py --data-folder ${{inputs.data_folder}} --batch-size ${{inputs.batch_size}} ...'
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from ._service import FakeService, spread

OPERATION_GROUPS = ("jobs", "compute", "environments", "data", "models", "workspaces")


class FakeCredential:
    """A credential that is never asked for a token (nothing reaches Azure)."""

    def get_token(self, *scopes, **kwargs):
        raise AssertionError("FakeMLClient: a real token was requested, so a call escaped the fake")


class FakePoller:
    """What a ``begin_*`` call returns: ``result()`` gives the outcome (or raises it)."""

    def __init__(self, outcome=None, error: BaseException | None = None):
        self._outcome, self._error = outcome, error

    def result(self, timeout=None):
        if self._error is not None:
            raise self._error
        return self._outcome


@dataclass
class FakeJob:
    """The service's view of a submitted job: its name, state and the job entity that was sent."""

    name: str
    experiment_name: str
    entity: object
    status: str = "NotStarted"
    inputs: dict = field(default_factory=dict)
    parent: str | None = None

    @property
    def studio_url(self) -> str:
        return f"https://ml.azure.com/runs/{self.name}"


def _not_found(kind: str, name: str) -> Exception:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError(f"{kind} {name!r} was not found in the fake workspace")


class _Group:
    def __init__(self, fake: "FakeMLClient"):
        self.fake = fake

    def _record(self, name: str, detail: object = None) -> None:
        self.fake._record(f"{type(self).__name__.removeprefix('Fake')}.{name}", detail)


class FakeJobs(_Group):
    def create_or_update(self, job, *, experiment_name=None, **kwargs):
        self._record("create_or_update", experiment_name)
        fake = self.fake
        entity = job._to_job() if hasattr(job, "_to_job") else job  # the service receives the CommandJob
        experiment = experiment_name or getattr(entity, "experiment_name", None) or "Default"
        run_id = fake._create_tracking_run(experiment, fake.metrics)
        submitted = FakeJob(name=run_id, experiment_name=experiment, entity=entity)
        fake.submissions.append(entity)
        fake.jobs_by_name[run_id] = submitted
        fake._pending_statuses[run_id] = list(fake.statuses) + [fake.final_status]
        if getattr(entity, "type", None) == "sweep":
            self._start_trials(submitted)
        return submitted

    def _start_trials(self, sweep: FakeJob) -> None:
        """One child job per trial: the swept inputs spread over the space, outcomes as the fake was told."""
        fake, entity = self.fake, sweep.entity
        total = entity.limits.max_total_trials
        for index in range(total):
            inputs = {}
            for name, expression in entity.search_space.items():
                kind = type(expression).__name__
                values = expression.values if kind == "Choice" else [
                    getattr(expression, attribute) for attribute in ("min_value", "max_value", "mu")
                    if getattr(expression, attribute, None) is not None]
                inputs[name] = spread(kind, values, index, total)
            metrics, status = fake.trial_outcome(index)
            child = FakeJob(name=fake._create_tracking_run(sweep.experiment_name, metrics),
                            experiment_name=sweep.experiment_name, entity=None, status=status, inputs=inputs,
                            parent=sweep.name)
            fake.jobs_by_name[child.name] = child
            fake._pending_statuses[child.name] = [status]

    def list(self, parent_job_name=None, **kwargs):
        self._record("list", parent_job_name)
        return [job for job in self.fake.jobs_by_name.values() if job.parent == parent_job_name]

    def get(self, name):
        self._record("get", name)
        if name not in self.fake.jobs_by_name:
            raise _not_found("Job", name)
        job = self.fake.jobs_by_name[name]
        pending = self.fake._pending_statuses[name]
        if job.status != "Canceled":
            job.status = pending.pop(0) if len(pending) > 1 else pending[0]
        return job

    def stream(self, name):
        """Prints the job's output and returns once it has ended, as the real one does."""
        self._record("stream", name)
        job = self.fake.jobs_by_name[name]
        for line in self.fake.log_lines:
            print(line)
        if job.status != "Canceled":
            self.fake._pending_statuses[name] = [self.fake.final_status]
        if self.fake.final_status == "Failed" and job.status != "Canceled":
            from azure.ai.ml.exceptions import JobException

            raise JobException(message=f"Job {name} failed", no_personal_data_message="job failed")

    def begin_cancel(self, name):
        self._record("begin_cancel", name)
        self.fake.jobs_by_name[name].status = "Canceled"
        return FakePoller()

    def download(self, name, download_path=".", output_name=None, all=False):
        self._record("download", name)
        root = Path(download_path) / "artifacts"
        for relative, content in self.fake.run_files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


class FakeCompute(_Group):
    def get(self, name):
        self._record("get", name)
        if name not in self.fake.computes:
            raise _not_found("Compute", name)
        return self.fake.computes[name]

    def begin_create_or_update(self, compute):
        self._record("begin_create_or_update", compute.name)
        self.fake.created_computes.append(compute)
        if self.fake.new_compute_state != "Succeeded":
            return FakePoller(error=RuntimeError(f"Compute {compute.name} provisioning {self.fake.new_compute_state}"))
        self.fake.computes[compute.name] = compute
        return FakePoller(compute)


class _Versioned(_Group):
    """Assets with versions (environments, data, models), stored as the entities that were sent."""

    kind = "Asset"

    def _store(self) -> dict[str, list]:
        raise NotImplementedError

    def get(self, name, version=None, label=None):
        self._record("get", f"{name}:{version or label or 'latest'}")
        versions = self._store().get(name, [])
        if label == "latest" and versions:
            return versions[-1]
        for asset in versions:
            if version is not None and str(asset.version) == str(version):
                return asset
        raise _not_found(self.kind, f"{name}:{version or label}")

    def create_or_update(self, asset):
        self._record("create_or_update", asset.name)
        versions = self._store().setdefault(asset.name, [])
        if asset.version is None:
            asset.version = str(len(versions) + 1)
        versions.append(asset)
        return asset


class FakeEnvironments(_Versioned):
    kind = "Environment"

    def _store(self):
        return self.fake.environments


class FakeData(_Versioned):
    kind = "Data"

    def _store(self):
        return self.fake.data_assets


class FakeModels(_Versioned):
    kind = "Model"

    def _store(self):
        return self.fake.models


class FakeWorkspaces(_Group):
    def get(self, name=None, **kwargs):
        self._record("get", name)
        workspace = mock.NonCallableMock(spec=["name", "mlflow_tracking_uri"])
        workspace.name, workspace.mlflow_tracking_uri = name, self.fake.tracking_uri
        return workspace


@dataclass
class FakeMLClient(FakeService):
    """Patch the ``MLClient`` operation groups for the duration of a ``with`` block.

    Arguments as for :class:`kerasjob.testing._service.FakeService`; call names
    are ``Jobs.create_or_update``, ``Compute.get``, ``Data.get``, ... ``computes``
    may also map names to cluster objects.
    """

    def __post_init__(self):
        super().__post_init__()
        self.jobs_by_name: dict[str, FakeJob] = {}
        self.environments: dict[str, list] = {}
        self.data_assets: dict[str, list] = {}
        self.models: dict[str, list] = {}
        if not isinstance(self.computes, dict):
            self.computes = {name: mock.NonCallableMock(name=name) for name in self.computes}
        for name, compute in self.computes.items():
            compute.name = name
        self._pending_statuses: dict[str, list[str]] = {}
        self._store_dir: str | None = None
        self.ml_client = None

    @property
    def tracking_uri(self) -> str:
        """The MLflow store standing in for the workspace's (created on first use)."""
        if self._store_dir is None:
            self._store_dir = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="fake-azureml-mlflow-"))
        return f"sqlite:///{self._store_dir}/mlflow.db"

    def _create_tracking_run(self, experiment: str, metrics: dict) -> str:
        """An MLflow run holding the job's metrics; its id is the job's name, as on Azure ML."""
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(
            experiment, artifact_location=Path(self._store_dir, "artifacts").as_uri())
        run_id = client.create_run(experiment_id).info.run_id
        logged = []
        for name, value in metrics.items():
            history = value if isinstance(value, list) else [value]
            logged += [Metric(name, float(each), 0, step) for step, each in enumerate(history)]
        client.log_batch(run_id, metrics=logged)
        return run_id

    def __enter__(self) -> "FakeMLClient":
        from azure.ai.ml import MLClient

        groups = {"jobs": FakeJobs(self), "compute": FakeCompute(self), "environments": FakeEnvironments(self),
                  "data": FakeData(self), "models": FakeModels(self), "workspaces": FakeWorkspaces(self)}
        for name in OPERATION_GROUPS:
            self._stack.enter_context(mock.patch.object(MLClient, name, property(lambda _, g=groups[name]: g)))
        self.ml_client = MLClient(FakeCredential(), "00000000-0000-0000-0000-000000000000", "fake-rg",
                                  "fake-workspace")
        return self
