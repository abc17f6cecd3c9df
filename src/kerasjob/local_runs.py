"""Browse local runs and the MLflow model registry that the local backend fills.

Example:
    >>> [run["run_id"] for run in list_runs()]                  # doctest: +SKIP
    >>> download_registered_model("keras-mnist", "1", "model")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from . import tracking
from .errors import ValidationError


def list_runs(experiment: str | None = None, limit: int = 50) -> list[dict]:
    """Local kerasjob runs, newest first: id, experiment, status, start and final accuracy."""
    client = tracking.client()
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if experiment is not None:
        experiments = {key: name for key, name in experiments.items() if name == experiment}
    if not experiments:
        return []
    runs = client.search_runs(list(experiments), filter_string="tags.`kerasjob.backend` = 'local'",
                              order_by=["attributes.start_time DESC"], max_results=limit)
    return [{
        "run_id": run.info.run_id, "experiment": experiments[run.info.experiment_id], "status": run.info.status,
        "start_time": run.info.start_time, "final_test_accuracy": run.data.metrics.get("Final test accuracy"),
    } for run in runs]


def show_run(run_id: str) -> dict:
    """One run's status, parameters, latest metrics and tags."""
    from mlflow.exceptions import MlflowException

    try:
        run = tracking.client().get_run(run_id)
    except MlflowException:
        raise ValidationError("run_id", "the id of a run in the MLflow store", run_id) from None
    return {"run_id": run_id, "status": run.info.status, "params": dict(run.data.params),
            "metrics": dict(run.data.metrics), "tags": {k: v for k, v in run.data.tags.items()
                                                         if not k.startswith("mlflow.")},
            "artifact_uri": run.info.artifact_uri}


def list_models() -> list[dict]:
    """Registered models with their latest version."""
    client = tracking.client()
    models = []
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        latest = max(versions, key=lambda v: int(v.version)) if versions else None
        models.append({"name": model.name, "latest_version": str(latest.version) if latest else None,
                       "run_id": latest.run_id if latest else None, "versions": len(versions)})
    return models


def download_registered_model(name: str, version: str | None, destination: str | os.PathLike) -> Path:
    """Download version ``version`` (default: the latest) of model ``name`` into ``destination``."""
    from .backends.local import LocalRun
    from .run import download_model

    client = tracking.client()
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise ValidationError("name", "the name of a registered model", name)
    chosen = max(versions, key=lambda v: int(v.version)) if version is None else next(
        (v for v in versions if str(v.version) == str(version)), None)
    if chosen is None:
        raise ValidationError("version", f"one of {sorted(int(v.version) for v in versions)}", version)
    run = LocalRun.from_id(chosen.run_id)
    model_path = chosen.source.split(f"/{chosen.run_id}/artifacts/", 1)[-1] if chosen.run_id in chosen.source \
        else "outputs/model"
    return download_model(run, destination, model_path=model_path)
