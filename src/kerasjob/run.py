"""``submit_training()``: the one call that runs a job anywhere, and its result.

Example:
    >>> result = submit_training(data="../shared/data/mnist", hyperparameters={"epochs": 2})  # doctest: +SKIP
    >>> result.metrics["Final test accuracy"] > 0.95                                          # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from .backends import Backend, JobRun, ModelVersion, RunStatus, resolve_backend
from .backends.base import LineSink
from .azure_errors import azure_access
from .errors import TrainingFailed, ValidationError
from .job import TrainingJob
from .plan import SubmissionPlan, build_plan
from .training.contract import FINAL_METRICS

__all__ = ["TrainingResult", "download_model", "finish_training", "make_job", "register_trained_model",
           "submit_training"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    """What a completed run left: its id, final metrics and the registered model.

    ``url`` is the Azure portal page, or the MLflow tracking URI for local runs.
    """

    run_id: str
    status: str
    metrics: dict[str, float]
    model_name: str
    model_version: str
    url: str
    backend: str
    run: JobRun = field(repr=False, compare=False)
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI prints with ``--json``."""
        return {"run_id": self.run_id, "status": self.status, "metrics": self.metrics,
                "model": {"name": self.model_name, "version": self.model_version},
                "backend": self.backend, "workers": self.workers, self.run.url_key: self.url}


def make_job(job: TrainingJob | None = None, **changes: Any) -> TrainingJob:
    """``job`` (default: the seed's job) with ``changes`` applied, validated again."""
    job = job if job is not None else TrainingJob()
    if job is not None and not isinstance(job, TrainingJob):
        raise ValidationError("job", "a TrainingJob or None", job)
    known = {f.name for f in dataclasses.fields(TrainingJob)}
    for name in changes:
        if name not in known:
            raise ValidationError(name, f"a TrainingJob field ({', '.join(sorted(known))})", changes[name])
    return job.with_changes(**changes) if changes else job


def finish_training(run: JobRun, job: TrainingJob, *, on_line: LineSink | None = None) -> TrainingResult:
    """Wait for ``run``; on success only, register the model, linked to the run.

    Raises ``TrainingFailed`` (carrying the log tail) when the run did not complete.
    """
    status = run.wait(on_line=on_line)
    if status is not RunStatus.COMPLETED:
        reason = getattr(run, "reason", lambda: "")() or f"The run ended {status.value}"
        raise TrainingFailed(reason[0].upper() + reason[1:], run_id=run.id, status=status.value,
                             log_tail=run.log_tail())
    metrics, model = register_trained_model(run, job)
    return TrainingResult(run_id=run.id, status=status.value, metrics=metrics, model_name=model.name,
                          model_version=model.version, url=run.url, backend=run.backend, run=run,
                          workers=job.worker_count)


def register_trained_model(run: JobRun, job: TrainingJob, extra_tags: dict[str, str] | None = None
                           ) -> tuple[dict[str, float], ModelVersion]:
    """Register ``job.model_path`` of completed ``run`` under ``job.model_name``; return (metrics, version).

    Tagged with the run id, hyperparameters, final metrics and TensorFlow version.
    """
    metrics = run.metrics()
    tags = {"run_id": run.id, "tensorflow_version": run.tensorflow_version(job), "backend": run.backend}
    tags.update({f"hp.{name}": str(value) for name, value in job.hyperparameters.items()})
    tags.update({name: f"{metrics[name]:.6g}" for name in FINAL_METRICS if name in metrics})
    tags.update(extra_tags or {})
    model = run.register_model(job.model_name, job.model_path, tags)
    logger.info("Registered model %s version %s from run %s", model.name, model.version, run.id)
    return metrics, model


def _print_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@overload
def submit_training(job: TrainingJob | None = ..., *, wait: Literal[True] = ..., dry_run: Literal[False] = ...,
                    **options: Any) -> TrainingResult: ...
@overload
def submit_training(job: TrainingJob | None = ..., *, wait: Literal[False], dry_run: Literal[False] = ...,
                    **options: Any) -> JobRun: ...
@overload
def submit_training(job: TrainingJob | None = ..., *, wait: bool = ..., dry_run: Literal[True],
                    **options: Any) -> SubmissionPlan: ...
def submit_training(job: TrainingJob | None = None, *, backend: str | Backend | None = None, workspace: Any = None,
                    ml_client: Any = None, workspace_config: str | os.PathLike[str] | None = None,
                    subscription_id: str | None = None, resource_group: str | None = None,
                    workspace_name: str | None = None, auth: str = "default", credential: Any = None,
                    wait: bool = True, dry_run: bool = False, show_output: bool = True,
                    **job_fields: Any) -> TrainingResult | JobRun | SubmissionPlan:
    """Run a Keras training job and register its model: the one call.

    Everything is validated before the first side effect. The backend is
    ``local`` unless a ``workspace`` (or ``workspace_config``) is given.

    Args:
        job: a ``TrainingJob``; default the seed's job. ``job_fields`` (any
            ``TrainingJob`` field, e.g. ``data=``, ``hyperparameters=``) adjust it.
        backend: ``"local"``, ``"azureml"`` (SDK v1), ``"azureml-v2"`` (SDK v2) or a ``Backend`` object.
        workspace, workspace_config, subscription_id, resource_group, workspace_name, auth: the Azure ML
            workspace (see ``load_workspace``); a login, workspace or permission refused by Azure raises
            ``AzureAccessError`` before anything starts.
        ml_client, credential: for ``azureml-v2``, an ``MLClient`` or an ``azure-identity`` credential.
        wait: False returns the ``JobRun`` handle at once (nothing is registered).
        dry_run: return the ``SubmissionPlan`` without contacting anything.
        show_output: stream the run's log lines to stdout while waiting.

    Returns:
        A ``TrainingResult``; a ``JobRun`` with ``wait=False``; a ``SubmissionPlan`` with ``dry_run=True``.

    Raises:
        ValidationError: bad input (nothing was started).
        TrainingFailed: the run failed, was canceled or timed out (nothing registered).

    Example:
        >>> submit_training(hyperparameters={"epochs": 0})
        Traceback (most recent call last):
        ...
        kerasjob.errors.ValidationError: Invalid `hyperparameters['epochs']`: expected an integer >= 1. Received: hyperparameters['epochs']=0
    """
    job = make_job(job, **job_fields)
    chosen = resolve_backend(backend, workspace=workspace, ml_client=ml_client, workspace_config=workspace_config,
                             subscription_id=subscription_id, resource_group=resource_group,
                             workspace_name=workspace_name, auth=auth, credential=credential)
    chosen.check(job)
    if dry_run:
        return build_plan(job, chosen)
    with azure_access():
        run = chosen.submit(job)
    if not wait:
        return run
    return finish_training(run, job, on_line=_print_line if show_output else None)


def download_model(result: TrainingResult | JobRun, destination: str | os.PathLike,
                   model_path: str = "outputs/model") -> Path:
    """Download the run's ``model_path`` folder (``outputs/model/**`` only) into ``destination``.

    The files land in a temporary folder first and are moved into place once
    all have arrived; a path that would land outside ``destination`` is refused.

    Example:
        >>> folder = download_model(result, "./model")   # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())     # doctest: +SKIP
        ['model.keras']
    """
    run = result.run if isinstance(result, TrainingResult) else result
    if not isinstance(run, JobRun):
        raise ValidationError("result", "a TrainingResult or a JobRun", result)
    target = Path(destination)
    if target.exists() and any(target.iterdir()):
        raise ValidationError("destination", "a folder that does not exist yet or is empty", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        run.download_files(model_path, staging)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
