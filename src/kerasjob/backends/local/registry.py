"""The local model registry: MLflow's, in the store local runs are tracked in, with real aliases.

It is the ``ModelRegistry`` (see ``kerasjob.champion``) of every local run:
versions are read through ``tracking.open_view`` (fast), an alias is moved with
``MlflowClient.set_registered_model_alias`` (an alias names one version at a time).

Example:
    >>> registry = MlflowModelRegistry("sqlite:////nonexistent/mlflow.db")
    >>> registry.holder("keras-mnist") is None
    True
"""

from __future__ import annotations

from typing import Any, ContextManager

from . import tracking
from ...champion import CHAMPION, ModelRegistry, RegisteredVersion, check_alias

__all__ = ["MlflowModelRegistry"]


class MlflowModelRegistry(ModelRegistry):
    """The MLflow model registry of store ``uri`` (default: ``tracking.tracking_uri()``)."""

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or tracking.tracking_uri()

    def versions(self, name: str) -> list[RegisteredVersion]:
        return tracking.open_view(self.uri).versions(name)

    def set_alias(self, name: str, version: str, alias: str = CHAMPION) -> None:
        check_alias(alias)
        with tracking.store_lock(self.uri):
            tracking.client(self.uri).set_registered_model_alias(name, alias, str(version))

    def lock(self) -> ContextManager[Any]:
        """A file lock beside an SQLite store, so that two processes finishing the same run register it once.

        (Not ``tracking.store_lock``: the registration inside takes that one.)
        """
        database = tracking.sqlite_path(self.uri)
        if database is None:
            return super().lock()
        from filelock import FileLock

        database.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(database) + ".registration.lock", timeout=300)

    def model_uri(self, name: str, version: str) -> tuple[str, str]:
        return f"models:/{name}/{version}", self.uri
