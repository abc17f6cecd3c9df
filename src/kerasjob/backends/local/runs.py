"""Browse local runs and the local model registry; the one place a registered-model reference is resolved.

Everything here reads the store through ``tracking.open_view`` (no ``import
mlflow`` for an SQLite store kerasjob knows), so ``kerasjob runs list`` and
``kerasjob models list`` answer in a fraction of a second. Statuses are
kerasjob's ``RunStatus`` values, never MLflow's words.

A model reference is ``NAME`` (its ``champion``, else its latest version),
``NAME@ALIAS``, ``NAME:VERSION`` or ``NAME/VERSION``, each also as ``models:/...``.

Example:
    >>> [run["run_id"] for run in list_runs()]                   # doctest: +SKIP
    >>> resolve_model("keras-mnist").version                     # doctest: +SKIP
    '3'
    >>> download_registered_model("keras-mnist@champion", None, "model")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from . import tracking
from ...champion import CHAMPION, SUBMIT_CRITERION, RegisteredVersion, check_alias
from ...errors import KerasJobError, ValidationError
from .registry import MlflowModelRegistry
from .tracking import RunRecord, show_run  # one run's record is the store's to read

__all__ = ["PRIMARY_METRIC_TAG", "REFERENCE_FORMS", "download_registered_model", "list_models", "list_runs", "resolve_model",
           "set_model_alias", "show_model", "show_run"]

#: The forms ``resolve_model`` takes, in words (for error messages).
REFERENCE_FORMS = "'NAME' (its champion, else its latest version), 'NAME@ALIAS', 'NAME:VERSION' or 'models:/NAME/VERSION'"
#: The tag a script of your own sets on its run to name the metric ``runs list`` shows (default: the packaged
#: script's ``Final test accuracy``): ``mlflow.set_tag("kerasjob.primary_metric", "val_loss")``.
PRIMARY_METRIC_TAG = "kerasjob.primary_metric"
_REFERENCE = re.compile(r"^(?:models:/)?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*?)"
                        r"(?:[/:](?P<version>[0-9]+)|@(?P<alias>[\w-]+))?$")
#: A local sweep's parent run: tagged so, with its metric as a param and its best value as ``best <metric>``.
SWEEP_TAG = "kerasjob.sweep"
#: kerasjob's own id of a local run, when it differs from its MLflow run's id (``LocalRun.from_id`` takes both).
RUN_ID_TAG = "kerasjob.run_id"


def _number(value: float | None) -> float | None:
    """A metric value fit for JSON (NaN and infinities become None)."""
    return value if value is not None and math.isfinite(value) else None


def _row(run: RunRecord, metric: str, value: float | None) -> dict[str, Any]:
    return {"run_id": run.tags.get(RUN_ID_TAG) or run.run_id, "mlflow_run_id": run.run_id, "name": run.name,
            "experiment": run.experiment,
            "status": tracking.run_status(run.status).value, "start_time": run.start_time,
            "duration_s": run.duration_s, "primary_metric": metric, "primary_metric_value": _number(value),
            "backend": run.tags.get(tracking.BACKEND_TAG), "parent_run_id": run.parent_run_id,
            "is_sweep": run.tags.get(SWEEP_TAG) == "true"}


def list_runs(experiment: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Up to ``limit`` local runs, newest first, each sweep followed by its trials (``parent_run_id``).

    Each row: ``run_id`` (kerasjob's id), ``mlflow_run_id``, ``name`` (MLflow's run name),
    ``experiment``, ``status`` (a ``RunStatus`` value), ``start_time`` (ms since the epoch),
    ``duration_s`` (so far, for a run not ended), ``primary_metric`` and its
    ``primary_metric_value`` (``Final test accuracy``; a sweep's best value of its metric; a
    trial's value of its sweep's metric), ``backend``, ``parent_run_id`` (the sweep's
    ``run_id``) and ``is_sweep``. ``limit`` counts runs that are no trial.

    Example:
        >>> list_runs(limit=0)
        Traceback (most recent call last):
        ...
        kerasjob.errors.ValidationError: Invalid `limit`: expected an integer >= 1. Received: limit=0
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit", "an integer >= 1", limit)
    if experiment is not None and (not isinstance(experiment, str) or not experiment):
        raise ValidationError("experiment", "an experiment name", experiment)
    view = tracking.open_view()
    parents = view.runs(experiment, limit)
    children: dict[str, list[RunRecord]] = {}
    for child in view.children([run.run_id for run in parents if run.tags.get(SWEEP_TAG) == "true"]):
        children.setdefault(child.parent_run_id or "", []).append(child)
    rows = []
    for run in parents:
        if run.tags.get(SWEEP_TAG) == "true":
            metric = run.params.get("primary_metric", "Accuracy")
            rows.append(_row(run, metric, run.metrics.get(f"best {metric}")))
            rows += [_row(trial, metric, trial.metrics.get(metric)) for trial in children.get(run.run_id, [])]
        else:
            metric = run.tags.get(PRIMARY_METRIC_TAG, SUBMIT_CRITERION.metric)  # a model job's or a script's own metric
            rows.append(_row(run, metric, run.metrics.get(metric)))
    return [_settled(row) for row in rows]


def _settled(row: dict[str, Any]) -> dict[str, Any]:
    """A local run the store still calls running, as its folder says it stands: a run whose supervisor is gone is
    settled (recovered, or failed) by this reader, at once."""
    if row["status"] not in ("running", "queued", "preparing") or row.get("backend") != "local" or row.get("is_sweep"):
        return row
    from .run import LocalRun

    try:
        status = LocalRun.from_id(row["run_id"]).status()
    except (ValidationError, KerasJobError):  # no folder (removed by hand) or a damaged one: the store's word
        return row
    return {**row, "status": status.value}


def _versions(name: str, argument: str = "name") -> list[RegisteredVersion]:
    """Every version of ``name`` (``ValidationError`` naming the registered models when there is none)."""
    if not isinstance(name, str) or not name:
        raise ValidationError(argument, "the name of a registered model", name)
    versions = MlflowModelRegistry().versions(name)
    if not versions:
        known = ", ".join(tracking.open_view().model_names()) or "none"
        raise ValidationError(argument, f"the name of a registered model (registered: {known})", name)
    return versions


def _aliases(versions: list[RegisteredVersion]) -> dict[str, str]:
    return {alias: each.version for each in versions for alias in each.aliases}


def _metric_of(version: RegisteredVersion, run: RunRecord | None = None) -> tuple[str, float | None]:
    """The metric a version was judged by (its ``primary_metric`` tag) and its value: as tagged, else as its
    run logged it."""
    metric = version.tags.get("primary_metric", SUBMIT_CRITERION.metric)
    try:
        return metric, _number(float(version.tags[metric]))
    except (KeyError, ValueError):
        return metric, _number(run.metrics.get(metric)) if run is not None else None


def list_models() -> list[dict[str, Any]]:
    """Registered models: ``name``, ``versions`` (how many), ``latest_version``, ``champion_version`` (None when
    no version holds the alias), ``aliases`` (alias -> version), and the champion's (else the latest's)
    ``primary_metric`` with its ``primary_metric_value``."""
    view = tracking.open_view()
    models = []
    for name in view.model_names():
        versions = view.versions(name)
        aliases = _aliases(versions)
        champion = aliases.get(CHAMPION)
        shown = next((each for each in versions if each.version == champion), versions[-1] if versions else None)
        metric, value = _metric_of(shown) if shown else (SUBMIT_CRITERION.metric, None)
        models.append({"name": name, "versions": len(versions),
                       "latest_version": versions[-1].version if versions else None, "champion_version": champion,
                       "aliases": aliases, "primary_metric": metric, "primary_metric_value": value})
    return models


def show_model(name: str, version: str | int | None = None) -> dict[str, Any]:
    """Model ``name`` with every version (or only ``version``): its aliases, run id, source, creation time
    (ms), the metrics its run logged, its hyperparameters and its tags.

    Example:
        >>> show_model("keras-mnist", version=2)["versions"][0]["aliases"]   # doctest: +SKIP
        ['champion']
    """
    versions = _versions(name)
    aliases = _aliases(versions)
    shown = versions if version is None else [_one_version(versions, version)]
    view = tracking.open_view()
    described = []
    for each in shown:
        run = view.run(each.run_id) if each.run_id else None
        metric, value = _metric_of(each, run)
        described.append({
            "version": each.version, "aliases": list(each.aliases),
            "run_id": (run.tags.get(RUN_ID_TAG) if run else None) or each.run_id, "mlflow_run_id": each.run_id,
            "source": each.source,
            "created": each.created, "primary_metric": metric, "primary_metric_value": value,
            "metrics": {key: _number(number) for key, number in run.metrics.items()} if run else {},
            "hyperparameters": {key[3:]: text for key, text in each.tags.items() if key.startswith("hp.")},
            "tags": {key: text for key, text in each.tags.items() if not key.startswith("hp.")}})
    return {"name": name, "latest_version": versions[-1].version, "champion_version": aliases.get(CHAMPION),
            "aliases": aliases, "versions": described}


def _one_version(versions: list[RegisteredVersion], version: str | int) -> RegisteredVersion:
    found = next((each for each in versions if each.version == str(version)), None)
    if found is None:
        raise ValidationError("version", f"one of {', '.join(each.version for each in versions)}", version)
    return found


def set_model_alias(name: str, version: str | int, alias: str = CHAMPION) -> dict[str, Any]:
    """Give ``alias`` (default ``champion``) to version ``version`` of local model ``name``, taking it from the
    version that held it; returns ``show_model(name, version)``. A hand-set champion stays until a newly
    registered version beats it.

    Example:
        >>> set_model_alias("keras-mnist", 2)["champion_version"]   # doctest: +SKIP
        '2'
    """
    check_alias(alias)
    chosen = _one_version(_versions(name), version)
    MlflowModelRegistry().set_alias(name, chosen.version, alias)
    return show_model(name, chosen.version)


def resolve_model(reference: str, version: str | int | None = None) -> RegisteredVersion:
    """The local registry's version that ``reference`` names (see the module docstring); ``version``, when
    given, picks it instead of an alias or the default.

    Example:
        >>> resolve_model("keras mnist")
        Traceback (most recent call last):
        ...
        kerasjob.errors.ValidationError: Invalid `model`: expected a registered model: 'NAME' (its champion, else its latest version), 'NAME@ALIAS', 'NAME:VERSION' or 'models:/NAME/VERSION'. Received: model='keras mnist'
    """
    match = _REFERENCE.match(reference) if isinstance(reference, str) else None
    if match is None:
        raise ValidationError("model", f"a registered model: {REFERENCE_FORMS}", reference)
    name, named_version, alias = match.group("name", "version", "alias")
    if version is not None and (named_version or alias):
        raise ValidationError("version", f"no version: {reference!r} names one already", version)
    versions = _versions(name, "model")
    if version is not None or named_version:
        return _one_version(versions, version if version is not None else named_version)
    holder = next((each for each in versions if (alias or CHAMPION) in each.aliases), None)
    if holder is None and alias:
        known = ", ".join(sorted(_aliases(versions))) or "none"
        raise ValidationError("alias", f"an alias of model {name!r} (its aliases: {known})", alias)
    return holder or versions[-1]


def download_registered_model(name: str, version: str | int | None, destination: str | os.PathLike[str]) -> Path:
    """Download the version of model ``name`` that ``version`` picks (default: the champion, else the latest;
    ``name`` may be any ``resolve_model`` reference) into ``destination``."""
    from .run import LocalRun
    from ...registration import check_destination, download_model

    check_destination(destination)  # before the registry: the cheap mistake first
    chosen = resolve_model(name, version)
    run_id, source = chosen.run_id, chosen.source
    if not run_id:  # registered by hand, not from a run: there is no run to download it from
        raise ValidationError("version", "a version registered from a kerasjob run", chosen.version)
    run = LocalRun.from_id(run_id)
    model_path = source.split(f"/{run_id}/artifacts/", 1)[-1] if run_id in source else "outputs/model"
    return download_model(run, destination, model_path=model_path)
