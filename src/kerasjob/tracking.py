"""Where local runs are tracked: an MLflow store, the user's or kerasjob's own.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else an SQLite store at
``$KERASJOB_HOME/mlflow.db`` (``~/.local/share/kerasjob`` on Linux) with
artifacts beside it in ``mlartifacts/``. ``mlflow ui --backend-store-uri <uri>``
shows every run and the model registry.

Example:
    >>> tracking_uri().startswith(("sqlite:", "http", "file:", "databricks"))  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

from .errors import SubmissionError, ValidationError

__all__ = ["client", "ensure_store_writable", "get_or_create_experiment", "kerasjob_home", "show_run", "sqlite_path",
           "store_lock", "tracking_uri"]


def kerasjob_home() -> Path:
    """``KERASJOB_HOME``, else the user's data directory for kerasjob."""
    configured = os.environ.get("KERASJOB_HOME")
    if configured:
        return Path(configured).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("kerasjob"))


def tracking_uri() -> str:
    """The MLflow tracking URI local runs use (see the module docstring)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{kerasjob_home() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of an ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):]).absolute()


def store_lock(uri: str) -> ContextManager[Any]:
    """A file lock that serialises kerasjob's writes to an SQLite store (a no-op otherwise).

    SQLite allows one writer; two submits that create the same experiment or
    register the same model at once would otherwise race.
    """
    database = sqlite_path(uri)
    if database is None:
        return contextlib.nullcontext()
    from filelock import FileLock

    return FileLock(str(database) + ".lock", timeout=120)


def ensure_store_writable(uri: str) -> None:
    """Raise ``SubmissionError`` if an SQLite store's folder cannot be written."""
    database = sqlite_path(uri)
    if database is None:
        return
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SubmissionError(f"The MLflow store {uri} cannot be created: {exc}. Set MLFLOW_TRACKING_URI "
                              "or KERASJOB_HOME to a writable place.") from exc
    if not os.access(database.parent, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        raise SubmissionError(f"The MLflow store {uri} is not writable. Set MLFLOW_TRACKING_URI "
                              "or KERASJOB_HOME to a writable place.")


def client(uri: str | None = None) -> MlflowClient:
    """An ``MlflowClient`` on ``uri`` (default: ``tracking_uri()``)."""
    from .optional import TRAIN

    TRAIN.require()
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def get_or_create_experiment(mlflow_client: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, created when absent.

    In an SQLite store its artifacts go beside the database (``mlartifacts/``),
    not into ``./mlruns`` of whatever folder the user happens to be in.
    """
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    database = sqlite_path(uri)
    location = (database.parent / "mlartifacts" / name).as_uri() if database else None
    return mlflow_client.create_experiment(name, artifact_location=location)


def show_run(run_id: str) -> dict:
    """One run's status, parameters, latest metrics and tags."""
    from mlflow.exceptions import MlflowException

    try:
        run = client().get_run(run_id)
    except MlflowException:
        raise ValidationError("run_id", "the id of a run in the MLflow store", run_id) from None
    return {"run_id": run_id, "status": run.info.status, "params": dict(run.data.params),
            "metrics": dict(run.data.metrics), "tags": {k: v for k, v in run.data.tags.items()
                                                         if not k.startswith("mlflow.")},
            "artifact_uri": run.info.artifact_uri}
