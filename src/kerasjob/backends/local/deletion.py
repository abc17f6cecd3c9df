"""Deleting local runs and registered model versions, with the champion rule kept.

A run that is still going, or whose model is registered, is not deleted (cancel it, or delete the model
version first). Deleting the version that holds ``@champion`` moves the alias to the best version left
(``champion.successor``), or removes it when none has the metric.

Example:
    >>> delete_model_version("keras-mnist")
    Traceback (most recent call last):
    ...
    kerasjob.errors.ValidationError: Invalid `model`: expected NAME:VERSION (a version named explicitly). Received: model='keras-mnist'
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

from ...champion import CHAMPION, RUN_ID_TAG, RegisteredVersion, successor
from ...errors import ValidationError

__all__ = ["DeletedVersion", "delete_local_run", "delete_model_version"]

_EXPLICIT_VERSION = re.compile(r"^(?:models:/)?[A-Za-z0-9][A-Za-z0-9._-]*[:/][0-9]+$")


@dataclass(frozen=True)
class DeletedVersion:
    """What ``delete_model_version`` did: the version deleted and, if it was the champion, who took the alias
    (``champion``, None when nobody could)."""

    version: RegisteredVersion
    was_champion: bool
    champion: RegisteredVersion | None


def delete_model_version(reference: str) -> DeletedVersion:
    """Delete ``NAME:VERSION`` (or ``models:/NAME/VERSION``) from the local registry; the champion rule moves
    ``@champion`` to the best version left. The registered model goes with its last version."""
    from . import tracking
    from .registry import MlflowModelRegistry
    from .runs import resolve_model

    if not isinstance(reference, str) or not _EXPLICIT_VERSION.match(reference):
        raise ValidationError("model", "NAME:VERSION (a version named explicitly)", reference)
    chosen = resolve_model(reference)
    registry = MlflowModelRegistry()
    with registry.lock():
        versions = registry.versions(chosen.name)
        removed = next(each for each in versions if each.version == chosen.version)
        client = tracking.client(registry.uri)
        with tracking.store_lock(registry.uri):
            client.delete_model_version(chosen.name, chosen.version)
            if len(versions) == 1:
                client.delete_registered_model(chosen.name)
        was_champion = CHAMPION in removed.aliases
        heir = successor(versions, removed) if was_champion else None
        if heir is not None:
            registry.set_alias(chosen.name, heir.version)
    return DeletedVersion(removed, was_champion, heir)


def delete_local_run(run_id: str) -> str:
    """Delete local run ``run_id`` (kerasjob's id or its MLflow run's): its MLflow run and its folder. Returns
    kerasjob's id of the run."""
    from . import tracking
    from .files import read_run_id, runs_root
    from .run import LocalRun
    from .registry import MlflowModelRegistry

    run = LocalRun.from_id(run_id)
    if not run.status().is_final:
        raise ValidationError("run_id", "a run that has ended", run_id,
                              hint=f"It is {run.status().value}: kerasjob runs cancel {run.id} stops it.")
    mlflow_run_id = read_run_id(run.run_dir)
    registry = MlflowModelRegistry()
    view = tracking.open_view(registry.uri)
    for name in view.model_names():
        version = next((each for each in view.versions(name)
                        if each.tags.get(RUN_ID_TAG) in (run.id, mlflow_run_id) or each.run_id == mlflow_run_id), None)
        if version is not None:
            raise ValidationError("run_id", "a run whose model is not registered", run_id,
                                  hint=f"Its model is {name!r} version {version.version}: kerasjob models delete "
                                       f"{name}:{version.version} first.")
    if mlflow_run_id is not None:
        with tracking.store_lock(registry.uri):
            tracking.client(registry.uri).delete_run(mlflow_run_id)
        (runs_root() / mlflow_run_id).unlink(missing_ok=True)  # the link by MLflow's id
    shutil.rmtree(run.run_dir)
    return run.id
