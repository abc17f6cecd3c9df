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
from .tracking import show_run  # one run's record is the store's to read

__all__ = ["download_registered_model", "list_models", "list_runs", "show_run"]


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
    run_id, source = chosen.run_id, chosen.source or ""
    if run_id is None:  # registered by hand, not from a run: there is no run to download it from
        raise ValidationError("version", "a version registered from a kerasjob run", chosen.version)
    run = LocalRun.from_id(run_id)
    model_path = source.split(f"/{run_id}/artifacts/", 1)[-1] if run_id in source else "outputs/model"
    return download_model(run, destination, model_path=model_path)
