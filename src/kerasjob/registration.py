"""A completed run's model, registered once under the champion rule, and what the caller gets back.

Below every backend and every facade: the local supervisor registers the runs nobody waits for through
``register_run_model``; ``submit_training`` and the sweeps through ``register_trained_model``.

Example:
    >>> criterion_of(TrainingJob()).metric
    'Final test accuracy'
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .backends.base import JobRun, ModelVersion
from .champion import CHAMPION, RUN_ID_TAG, SUBMIT_CRITERION, Criterion, ModelRegistry, metric_tags
from .errors import ValidationError
from .job import TrainingJob

__all__ = ["DEFAULT_MODEL_NAME", "Registration", "TrainingResult", "check_destination", "criterion_of",
           "download_model", "model_registry_of", "read_history", "register_run_model", "register_trained_model"]

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


def criterion_of(job: TrainingJob) -> Criterion:
    """What a run of ``job`` is judged by: ``Final test accuracy`` for the packaged script, a model job's primary
    metric (``TrainingJob.primary_metric``) otherwise."""
    metric, goal = job.primary_metric
    return SUBMIT_CRITERION if metric == SUBMIT_CRITERION.metric else Criterion(metric, goal)


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
