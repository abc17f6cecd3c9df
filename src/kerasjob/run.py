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
from typing import Any, Literal, Mapping, overload

from .backends import Backend, JobRun, ModelVersion, RunStatus, resolve_backend
from .backends.base import LineSink
from .azure_errors import azure_access
from .champion import CHAMPION, RUN_ID_TAG, SUBMIT_CRITERION, Criterion, ModelRegistry, metric_tags
from .errors import TrainingFailed, ValidationError
from .job import TrainingJob
from .plan import SubmissionPlan, build_plan

__all__ = ["Registration", "TrainingResult", "check_destination", "download_model", "finish_attached_run",
           "finish_attached_sweep", "finish_training", "make_job", "model_registry_of", "register_run_model", "register_trained_model",
           "submit_training"]

logger = logging.getLogger(__name__)
#: The model name a run registers under when nothing says otherwise (``TrainingJob``'s default).
DEFAULT_MODEL_NAME: str = next(each.default for each in dataclasses.fields(TrainingJob)
                               if each.name == "model_name")  # type: ignore[assignment]


@dataclass(frozen=True)
class TrainingResult:
    """What a completed run left: its id, final metrics and the registered model.

    ``url`` is the Azure portal page, or the MLflow tracking URI for local runs;
    ``champion``: whether the model version holds the ``champion`` alias (see ``kerasjob.champion``).
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
    champion: bool = False
    #: Keras's history of a model job (``kerasjob.fit``): ``{"loss": [...], "val_loss": [...], ...}``, one value
    #: per epoch; empty for a script's run.
    history: dict[str, list[float]] = field(default_factory=dict)
    #: The model job's source folder (``kerasjob.model_package``): where ``load_model`` finds its custom objects.
    package: str | None = field(default=None, repr=False)
    model_path: str = field(default="outputs/model", repr=False)

    def load_model(self) -> Any:
        """The trained ``keras.Model``, back in this process (custom objects of the caller's included).

        Example:
            >>> model = kerasjob.fit(model, x, y, epochs=2).load_model()   # doctest: +SKIP
            >>> model.predict(x[:3]).shape                                   # doctest: +SKIP
            (3, 10)
        """
        from .model_package import load_trained_model

        with tempfile.TemporaryDirectory() as scratch:
            folder = self.run.download_files(self.model_path, Path(scratch) / "model")
            return load_trained_model(folder, Path(self.package) if self.package else None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI prints with ``--json`` (``status``: a ``RunStatus`` value)."""
        return {"run_id": self.run_id, "status": self.status, "metrics": self.metrics,
                "model": {"name": self.model_name, "version": self.model_version, "champion": self.champion},
                "backend": self.backend, "workers": self.workers, "url": self.url}

    def _repr_html_(self) -> str:
        """In a notebook: the run, its model and its final metrics as a small table, with a link to the run."""
        from .html import html_table, metric_rows

        model = f"{self.model_name} version {self.model_version}" + (" (@champion)" if self.champion else "")
        return html_table(f"Run {self.run_id} {self.status}", [
            ("backend", self.backend + (f", {self.workers} workers" if self.workers > 1 else "")),
            ("model", model), *metric_rows(self.metrics)], link=self.run.browser_url())


@dataclass(frozen=True)
class Registration:
    """What registering a run's model gave: the run's metrics, the model version, whether that version
    is the champion, and whether this call registered it (False: the run had registered it before)."""

    metrics: dict[str, float]
    model: ModelVersion
    champion: bool
    new: bool


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


def read_history(run: JobRun) -> dict[str, list[float]]:
    """Keras's history a model job's trainer wrote (``outputs/history.json``); empty when there is none."""
    import json

    local = getattr(run, "run_dir", None)
    candidates = [Path(local) / "outputs" / "history.json"] if local is not None else []
    with tempfile.TemporaryDirectory() as scratch:
        if not any(path.is_file() for path in candidates):
            try:
                run.download_files("outputs/history.json", Path(scratch) / "history")
            except Exception as exc:  # noqa: BLE001 - a run without history still has its metrics
                logger.debug("No history.json for run %s: %s", run.id, exc)
            candidates += sorted(Path(scratch).rglob("history.json"))
        for path in candidates:
            if path.is_file():
                try:
                    data = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                return {str(k): [float(v) for v in values] for k, values in data.items() if isinstance(values, list)}
    return {}


def finish_training(run: JobRun, job: TrainingJob, *, on_line: LineSink | None = None) -> TrainingResult:
    """Wait for ``run``; on success only, register the model (once), linked to the run.

    Raises ``TrainingFailed`` (carrying the log tail) when the run did not complete.
    """
    status = _ended(run, on_line)
    return _result(run, status, register_trained_model(run, job, criterion=criterion_of(job)), job.worker_count, job)


def criterion_of(job: TrainingJob) -> Criterion:
    """What a run of ``job`` is judged by: ``Final test accuracy`` for the packaged script, a model job's primary
    metric (``TrainingJob.primary_metric``) otherwise."""
    metric, goal = job.primary_metric
    return SUBMIT_CRITERION if metric == SUBMIT_CRITERION.metric else Criterion(metric, goal)


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


def model_registry_of(run: JobRun) -> ModelRegistry:
    """The registry ``run``'s model is registered in (the run's ``model_registry()`` hook)."""
    registry: ModelRegistry = run.model_registry()
    return registry


def register_trained_model(run: JobRun, job: TrainingJob, extra_tags: dict[str, str] | None = None, *,
                           criterion: Criterion = SUBMIT_CRITERION) -> Registration:
    """Register ``job.model_path`` of completed ``run`` under ``job.model_name``, once per run, and give it
    the ``champion`` alias if its ``criterion`` metric beats the current champion's (``kerasjob.champion``).

    Tagged with the run id, hyperparameters, every metric's last value, the criterion and the TensorFlow
    version. A second call for the same run registers nothing and returns the version the first made.

    Example:
        >>> registration = register_trained_model(run, job)   # doctest: +SKIP
        >>> registration.model.version, registration.champion  # doctest: +SKIP
        ('3', True)
    """
    return _register(run, model_name=job.model_name, model_path=job.model_path, hyperparameters=job.hyperparameters,
                     tensorflow_version=run.tensorflow_version(job), extra_tags=extra_tags, criterion=criterion,
                     keras_backend=job.keras_backend)


def register_run_model(run: JobRun, *, model_name: str, model_path: str, hyperparameters: Mapping[str, Any],
                       tensorflow_version: str | None = None, primary_metric: str | None = None,
                       goal: str = "maximize") -> ModelVersion:
    """``register_trained_model`` for a completed run whose ``TrainingJob`` is gone (the local supervisor
    registers a ``wait=False`` run with what its launch recorded); once per run, champion rule included.

    Example:
        >>> register_run_model(run, model_name="keras-mnist", model_path="outputs/model",
        ...                    hyperparameters={"epochs": 2}).version                      # doctest: +SKIP
        '5'
    """
    criterion = Criterion(primary_metric, goal) if primary_metric else SUBMIT_CRITERION
    return _register(run, model_name=model_name, model_path=model_path, hyperparameters=hyperparameters,
                     tensorflow_version=tensorflow_version, extra_tags=None, criterion=criterion).model


def _register(run: JobRun, *, model_name: str, model_path: str, hyperparameters: Mapping[str, Any],
              tensorflow_version: str | None, extra_tags: Mapping[str, str] | None, keras_backend: str | None = None,
              criterion: Criterion) -> Registration:
    """The one registration: looked up by run id first (at most one version per run), judged, registered."""
    metrics = run.metrics()
    registry = model_registry_of(run)
    with registry.lock():
        existing = registry.registered_from(model_name, run.id)
        if existing is not None:
            logger.info("Run %s registered model %s version %s already", run.id, existing.name, existing.version)
            holder = registry.holder(model_name, CHAMPION)
            return Registration(metrics, existing.model_version,
                                champion=holder is not None and holder.version == existing.version, new=False)
        crowned = criterion.crowns(metrics.get(criterion.metric), registry.holder(model_name, CHAMPION))
        tags = {**metric_tags(metrics, criterion), RUN_ID_TAG: run.id, "backend": run.backend,
                **({"keras_backend": keras_backend} if keras_backend else {}),
                **({"tensorflow_version": tensorflow_version} if tensorflow_version else {}),
                **{f"hp.{name}": str(value) for name, value in hyperparameters.items()},
                **(extra_tags or {}), **(registry.birth_tags(CHAMPION) if crowned else {})}
        model = run.register_model(model_name, model_path, tags)
        if crowned:
            registry.set_alias(model.name, model.version, CHAMPION)
    logger.info("Registered model %s version %s from run %s%s", model.name, model.version, run.id,
                " (champion)" if crowned else "")
    return Registration(metrics, model, champion=crowned, new=True)


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


def check_destination(destination: str | os.PathLike) -> Path:
    """``destination`` as a folder to download into: one that does not exist yet or is empty (never a file)."""
    target = Path(destination)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValidationError("destination", "a folder that does not exist yet or is empty", str(target),
                              hint="It is a file." if not target.is_dir() else "")
    return target


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
    target = check_destination(destination)
    if target.is_symlink():  # a link to an empty folder: fill the folder it leads to, keep the link
        target = target.resolve()
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
