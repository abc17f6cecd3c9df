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
import sys
from typing import Any, Literal, overload

from .backends import Backend, JobRun, RunStatus, resolve_backend
from .backends.base import LineSink
from .azure_errors import azure_access
from .champion import SUBMIT_CRITERION, Criterion
from .errors import TrainingFailed, ValidationError
from .job import TrainingJob
from .plan import SubmissionPlan, build_plan
# A run's registration and result sit below the backends (the local supervisor registers too); here for callers
# that import them from ``kerasjob.run``.
from .registration import (DEFAULT_MODEL_NAME, Registration, TrainingResult, _register, check_destination,
                           criterion_of, download_model, model_registry_of, read_history, register_run_model,
                           register_trained_model)

__all__ = ["Registration", "TrainingResult", "check_destination", "download_model", "finish_attached_run",
           "finish_attached_sweep", "finish_training", "make_job", "model_registry_of", "register_run_model",
           "register_trained_model", "submit_training"]

logger = logging.getLogger(__name__)


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


#: A run that ended without success and said nothing of why, in words ("The run ended failed" read badly).
_ENDED_AS = {RunStatus.FAILED: "The run failed", RunStatus.CANCELED: "The run was canceled"}


def _ended(run: JobRun, on_line: LineSink | None) -> RunStatus:
    """Wait for ``run``; ``TrainingFailed`` (carrying the log tail) unless it completed."""
    status = run.wait(on_line=on_line)
    if status is not RunStatus.COMPLETED:
        reason = getattr(run, "reason", lambda: "")() or _ENDED_AS.get(status, f"The run ended {status.value}")
        raise TrainingFailed(reason[0].upper() + reason[1:], run_id=run.id, status=status.value,
                             log_tail=run.log_tail())
    return status


def _result(run: JobRun, status: RunStatus, registration: Registration, workers: int,
            job: TrainingJob | None = None) -> TrainingResult:
    model = registration.model
    model_job = job is not None and job.is_model_job
    return TrainingResult(run_id=run.id, status=status.value, metrics=registration.metrics, model_name=model.name,
                          model_version=model.version, url=run.url, backend=run.backend, run=run, workers=workers,
                          champion=registration.champion, history=read_history(run) if model_job else {},
                          package=str(job.model) if job is not None and model_job else None,
                          model_path=job.model_path if job is not None else "outputs/model")


def finish_training(run: JobRun, job: TrainingJob, *, on_line: LineSink | None = None) -> TrainingResult:
    """Wait for ``run``; on success only, register the model (once), linked to the run.

    Raises ``TrainingFailed`` (carrying the log tail) when the run did not complete.
    """
    status = _ended(run, on_line)
    return _result(run, status, register_trained_model(run, job, criterion=criterion_of(job)), job.worker_count, job)


def finish_attached_run(run: JobRun, *, model_name: str | None = None, model_path: str = "outputs/model",
                        on_line: LineSink | None = None) -> TrainingResult:
    """Follow a run submitted earlier (``wait=False``; ``kerasjob runs wait ID``) to its end and register its
    model, once: a version the run registered already (e.g. the local supervisor's) is returned as it is.

    ``model_name`` defaults to the name the run registered under, else ``TrainingJob``'s default.

    Example:
        >>> run = submit_training(wait=False, data="../shared/data/mnist")   # doctest: +SKIP
        >>> finish_attached_run(LocalBackend().attach(run.id)).model_version  # doctest: +SKIP
        '4'
    """
    if getattr(run, "is_sweep", False):  # a sweep parent holds no model: its best trial's is registered
        return finish_attached_sweep(run, model_name=model_name, model_path=model_path, on_line=on_line)[0]
    status = _ended(run, on_line)
    recorded = run.registered_model()
    name = model_name or (recorded.name if recorded is not None else DEFAULT_MODEL_NAME)
    registration = _register(run, model_name=name, model_path=model_path, hyperparameters={},
                             tensorflow_version=None, extra_tags=None, criterion=SUBMIT_CRITERION)
    return _result(run, status, registration, int(getattr(run, "workers", 1)))


def finish_attached_sweep(run: JobRun, *, model_name: str | None = None, model_path: str = "outputs/model",
                          on_line: LineSink | None = None) -> tuple[TrainingResult, Any]:
    """Follow a sweep submitted earlier (``kerasjob runs wait SWEEP_ID``) to its end and register its best
    trial's model as ``tune`` does: judged by the sweep's own metric and goal (the champion rule), tagged
    with the sweep, once. Returns the result (the best trial's) and the run's ``sweep_best()``.

    Raises ``TrainingFailed`` when no trial completed (nothing is registered).

    Example:
        >>> result, best = finish_attached_sweep(backend.attach("HD_1234"))   # doctest: +SKIP
        >>> best.run.id, result.model_version                                  # doctest: +SKIP
        ('HD_1234_3', '2')
    """
    run.wait(on_line=on_line)
    best = run.sweep_best()  # type: ignore[attr-defined]  # the Azure runs' hook (backends._azure.SweepBest)
    recorded = best.run.registered_model()
    name = model_name or (recorded.name if recorded is not None else DEFAULT_MODEL_NAME)
    registration = _register(best.run, model_name=name, model_path=model_path, hyperparameters=best.parameters,
                             tensorflow_version=None, extra_tags={"sweep_run_id": run.id},
                             criterion=Criterion(best.metric, best.goal))
    return _result(best.run, RunStatus.COMPLETED, registration, 1), best


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
        wait: False returns the ``JobRun`` handle at once (nothing is registered: ``register_trained_model``
            does it once the run has completed).
        dry_run: return the ``SubmissionPlan`` without contacting anything.
        show_output: stream the run's log lines to stdout while waiting; in a Jupyter notebook, one display
            updated in place instead (``kerasjob.progress``: epoch, metrics so far, time left, the log folded).

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
    from .progress import live_progress

    with live_progress(f"Run {run.id}", enabled=show_output):  # in a notebook: one display, updated in place
        return finish_training(run, job, on_line=_print_line if show_output else None)
