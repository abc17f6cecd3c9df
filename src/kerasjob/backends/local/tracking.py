"""Where local runs are tracked: an MLflow store, the user's or kerasjob's own.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else an SQLite store at
``$KERASJOB_HOME/mlflow.db`` (``~/.local/share/kerasjob`` on Linux) with
artifacts beside it in ``mlartifacts/``. ``mlflow ui --backend-store-uri <uri>``
shows every run and the model registry.

Reading the store must be fast (``kerasjob runs list``), and ``import mlflow``
alone takes 1-2 s: an SQLite store whose schema is the one kerasjob was checked
against (``SCHEMA_REVISION``) is read straight from its file, read-only, with
``sqlite3`` (``SqliteView``, tens of milliseconds); any other store (a tracking
server, another schema) through ``MlflowClient`` (``ClientView``). Both give the
same records. Writes always go through MLflow. MLflow's run states stay in
MLflow: ``run_status`` gives kerasjob's word for each.

Example:
    >>> tracking_uri().startswith(("sqlite:", "http", "file:", "databricks"))  # doctest: +SKIP
    True
    >>> run_status("KILLED").value
    'canceled'
"""

from __future__ import annotations

import abc
import contextlib
import os
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager, Iterable

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

from ..base import RunStatus
from ...champion import RegisteredVersion
from ...errors import ValidationError

__all__ = ["BACKEND_TAG", "PARENT_TAG", "RUN_STATUS", "SCHEMA_REVISION", "ClientView", "RunRecord", "SqliteView",
           "StoreView", "bounded_http", "check_store", "client", "ensure_store_writable", "get_or_create_experiment", "kerasjob_home", "open_view",
           "run_status", "show_run", "sqlite_path", "store_lock", "tracking_uri"]

#: MLflow's run states in kerasjob's words: the one place they are translated.
RUN_STATUS = {"SCHEDULED": RunStatus.QUEUED, "RUNNING": RunStatus.RUNNING, "FINISHED": RunStatus.COMPLETED,
              "FAILED": RunStatus.FAILED, "KILLED": RunStatus.CANCELED}


def run_status(mlflow_status: str) -> RunStatus:
    """kerasjob's ``RunStatus`` for an MLflow run state (``FINISHED`` -> ``completed``)."""
    return RUN_STATUS[mlflow_status]


def kerasjob_home() -> Path:
    """``KERASJOB_HOME``, else the user's data directory for kerasjob (``kerasjob.home``)."""
    from ...home import kerasjob_home as home

    return home()


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


#: MLflow's HTTP client retries 7 times with a backoff factor of 2 and waits 120 s per request by default
#: (mlflow/environment_variables.py: MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
#: MLFLOW_HTTP_REQUEST_TIMEOUT): minutes before an unreachable server is an error. kerasjob's own bounds, unless the
#: user set them: about 10 s per call.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_CONNECT_TIMEOUT_S = 5.0
_SQLITE_HEADER = b"SQLite format 3\x00"


def bounded_http() -> dict[str, str]:
    """MLflow's HTTP retry and timeout settings as kerasjob uses them (the user's own values win); also set in
    this process's environment, for the MLflow client it makes."""
    bounds = {name: os.environ.get(name, value) for name, value in HTTP_BOUNDS.items()}
    for name, value in bounds.items():
        os.environ.setdefault(name, value)
    return bounds


def check_store(uri: str) -> None:
    """``ValidationError`` naming ``MLFLOW_TRACKING_URI`` (nothing started, nothing written) when the store is not
    usable: a tracking server that does not answer within seconds, an SQLite file that is empty or no MLflow store.

    Example:
        >>> try:
        ...     check_store("http://127.0.0.1:1")
        ... except ValidationError as error:
        ...     print(error.argument, error.expected)
        MLFLOW_TRACKING_URI a reachable MLflow tracking server
    """
    if uri.startswith(("http://", "https://")):
        _check_reachable(uri)
        return
    database = sqlite_path(uri)
    if database is None or not database.exists():
        return
    hint = (f"Move {database} away (kerasjob makes a new store) or restore it from a backup; or set "
            "MLFLOW_TRACKING_URI or KERASJOB_HOME to another store.")
    try:
        with open(database, "rb") as stream:
            header = stream.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise ValidationError("MLFLOW_TRACKING_URI", "a readable MLflow store", uri,
                              hint=f"{database}: {exc.strerror or exc}.") from exc
    if not header:
        raise ValidationError("MLFLOW_TRACKING_URI", "an MLflow store", uri,
                              hint=f"{database} is empty (0 bytes). {hint}")
    if header != _SQLITE_HEADER or SqliteView(database).revision() is None:
        raise ValidationError("MLFLOW_TRACKING_URI", "an MLflow store", uri,
                              hint=f"{database} is not an MLflow SQLite store (damaged, or another file). {hint}")


def _check_reachable(uri: str) -> None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ValidationError("MLFLOW_TRACKING_URI", "a reachable MLflow tracking server", uri,
                              hint=f"Nothing answers there ({exc.strerror or exc}). Start the server, or unset "
                                   "MLFLOW_TRACKING_URI to use kerasjob's own store.") from exc


def ensure_store_writable(uri: str) -> None:
    """Raise ``ValidationError`` (nothing started) if the store is unusable (``check_store``) or an SQLite
    store's folder cannot be written."""
    check_store(uri)
    database = sqlite_path(uri)
    if database is None:
        return
    hint = "Set the MLFLOW_TRACKING_URI or KERASJOB_HOME environment variable to a writable place."
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError("MLFLOW_TRACKING_URI", "an MLflow store kerasjob can create", uri,
                              hint=f"Its folder cannot be made ({exc.strerror or exc}). {hint}") from exc
    if not os.access(database.parent, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        raise ValidationError("MLFLOW_TRACKING_URI", "an MLflow store kerasjob can write", uri, hint=hint)


def client(uri: str | None = None) -> MlflowClient:
    """An ``MlflowClient`` on ``uri`` (default: ``tracking_uri()``)."""
    from ...optional import TRAIN

    TRAIN.require()
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    bounded_http()
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


#: The Alembic revision of MLflow 3.15's store (mlflow/store/db_migrations/versions/6f8d9c3b2a1e_*.py), whose
#: tables (runs, tags, params, latest_metrics, experiments, model_versions, model_version_tags,
#: registered_model_aliases) SqliteView reads. Any other revision is read through MlflowClient.
SCHEMA_REVISION = "6f8d9c3b2a1e"
#: Runs whose tag ``kerasjob.backend`` is set are kerasjob's; a sweep's trials name it in ``mlflow.parentRunId``.
BACKEND_TAG, PARENT_TAG = "kerasjob.backend", "mlflow.parentRunId"
#: MLflow's workspace when workspaces are off, and its mark of a deleted model version.
_WORKSPACE, _DELETED_VERSION = "default", "Deleted_Internal"
_CLIENT_MAX_RESULTS = 5000


@dataclass(frozen=True)
class RunRecord:
    """One MLflow run, as the store keeps it (``status`` in MLflow's words: see ``tracking.run_status``)."""

    run_id: str
    name: str
    experiment: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get(PARENT_TAG)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; for a run not ended yet, so far."""
        if self.start_time is None:
            return None
        end = self.end_time if self.end_time is not None else int(time.time() * 1000)
        return round(max(end - self.start_time, 0) / 1000, 3)


class StoreView(abc.ABC):
    """Read-only access to one MLflow store: kerasjob's runs and the registered models."""

    @abc.abstractmethod
    def runs(self, experiment: str | None, limit: int) -> list[RunRecord]:
        """Up to ``limit`` kerasjob runs that have no parent, newest first (all experiments when None)."""

    @abc.abstractmethod
    def children(self, parent_ids: list[str]) -> list[RunRecord]:
        """The runs nested under ``parent_ids`` (a sweep's trials), oldest first."""

    @abc.abstractmethod
    def run(self, run_id: str) -> RunRecord | None:
        """Run ``run_id``, or None when the store has no such run."""

    @abc.abstractmethod
    def model_names(self) -> list[str]:
        """The registered models, by name."""

    @abc.abstractmethod
    def versions(self, name: str) -> list[RegisteredVersion]:
        """Every version of model ``name``, oldest first, with its tags and aliases."""


class SqliteView(StoreView):
    """Reads an SQLite store at ``SCHEMA_REVISION`` with ``sqlite3``, read-only (a missing file is an empty store)."""

    def __init__(self, database: Path) -> None:
        self.database = database

    def _query(self, sql: str, parameters: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.database.is_file():
            return []
        connection = sqlite3.connect(f"{self.database.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            return connection.execute(sql, tuple(parameters)).fetchall()
        finally:
            connection.close()

    def revision(self) -> str | None:
        """The store's Alembic revision (None for a missing file or a store without one)."""
        try:
            rows = self._query("SELECT version_num FROM alembic_version")
        except sqlite3.DatabaseError:
            return None
        return rows[0][0] if rows else None

    _RUN_COLUMNS = ("SELECT r.run_uuid, r.name, e.name, r.status, r.start_time, r.end_time, r.artifact_uri "
                    "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id ")

    def _records(self, rows: list[tuple[Any, ...]]) -> list[RunRecord]:
        """Runs from ``_RUN_COLUMNS`` rows, with their tags, params and latest metrics (three queries)."""
        if not rows:
            return []
        ids = [row[0] for row in rows]
        marks = ",".join("?" * len(ids))
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        params: dict[str, dict[str, str]] = defaultdict(dict)
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        for table, into in (("tags", tags), ("params", params)):
            for key, value, run_id in self._query(f"SELECT key, value, run_uuid FROM {table} "
                                                  f"WHERE run_uuid IN ({marks})", ids):
                into[run_id][key] = value
        for key, value, is_nan, run_id in self._query("SELECT key, value, is_nan, run_uuid FROM latest_metrics "
                                                      f"WHERE run_uuid IN ({marks})", ids):
            metrics[run_id][key] = float("nan") if is_nan else float(value)
        return [RunRecord(run_id, name or "", experiment, status, start, end, artifact_uri or "", tags[run_id],
                          params[run_id], metrics[run_id])
                for run_id, name, experiment, status, start, end, artifact_uri in rows]

    def runs(self, experiment: str | None, limit: int) -> list[RunRecord]:
        rows = self._query(
            self._RUN_COLUMNS + "WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' "
            "AND (? IS NULL OR e.name = ?) "
            "AND EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ?) "
            "AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = ?) "
            "ORDER BY r.start_time DESC, r.run_uuid LIMIT ?", (experiment, experiment, BACKEND_TAG, PARENT_TAG, limit))
        return self._records(rows)

    def children(self, parent_ids: list[str]) -> list[RunRecord]:
        if not parent_ids:
            return []
        rows = self._query(
            self._RUN_COLUMNS + "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ? "
            f"WHERE r.lifecycle_stage = 'active' AND t.value IN ({','.join('?' * len(parent_ids))}) "
            "ORDER BY r.start_time, r.run_uuid", (PARENT_TAG, *parent_ids))
        return self._records(rows)

    def run(self, run_id: str) -> RunRecord | None:
        found = self._records(self._query(self._RUN_COLUMNS + "WHERE r.run_uuid = ?", (run_id,)))
        return found[0] if found else None

    def model_names(self) -> list[str]:
        return [name for (name,) in self._query("SELECT name FROM registered_models WHERE workspace = ? "
                                                "ORDER BY name", (_WORKSPACE,))]

    def versions(self, name: str) -> list[RegisteredVersion]:
        rows = self._query("SELECT version, run_id, source, creation_time FROM model_versions "
                           "WHERE workspace = ? AND name = ? AND current_stage != ? ORDER BY version",
                           (_WORKSPACE, name, _DELETED_VERSION))
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        for version, key, value in self._query("SELECT version, key, value FROM model_version_tags "
                                               "WHERE workspace = ? AND name = ?", (_WORKSPACE, name)):
            tags[version][key] = value
        aliases: dict[int, list[str]] = defaultdict(list)
        for version, alias in self._query("SELECT version, alias FROM registered_model_aliases "
                                          "WHERE workspace = ? AND name = ? ORDER BY alias", (_WORKSPACE, name)):
            aliases[version].append(alias)
        return [RegisteredVersion(name, str(version), run_id, source or "", tags[version], tuple(aliases[version]),
                                  created) for version, run_id, source, created in rows]


class ClientView(StoreView):
    """Reads any MLflow store through ``MlflowClient`` (slower: ``import mlflow`` and the store's setup)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def _client(self) -> MlflowClient:
        return client(self.uri)

    def _record(self, run: Run, experiments: dict[str, str]) -> RunRecord:
        info, data = run.info, run.data
        return RunRecord(info.run_id, info.run_name or "", experiments.get(info.experiment_id, ""), info.status,
                         info.start_time, info.end_time, info.artifact_uri or "", dict(data.tags), dict(data.params),
                         dict(data.metrics))

    def _search(self, experiment: str | None, filter_string: str, order: str) -> list[RunRecord]:
        client = self._client()
        experiments = {each.experiment_id: each.name for each in client.search_experiments()
                       if experiment is None or each.name == experiment}
        if not experiments:
            return []
        runs = client.search_runs(list(experiments), filter_string=filter_string, order_by=[order],
                                  max_results=_CLIENT_MAX_RESULTS)
        return [self._record(run, experiments) for run in runs]

    def runs(self, experiment: str | None, limit: int) -> list[RunRecord]:
        # MLflow's filter language cannot ask for a missing tag: the parents are picked out here.
        found = self._search(experiment, f"tags.`{BACKEND_TAG}` != ''", "attributes.start_time DESC")
        return [record for record in found if record.parent_run_id is None][:limit]

    def children(self, parent_ids: list[str]) -> list[RunRecord]:
        found: list[RunRecord] = []
        for parent_id in parent_ids:
            found += self._search(None, f"tags.`{PARENT_TAG}` = '{parent_id}'", "attributes.start_time ASC")
        return found

    def run(self, run_id: str) -> RunRecord | None:
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:
            run = client.get_run(run_id)
        except MlflowException:
            return None
        experiment = client.get_experiment(run.info.experiment_id)
        return self._record(run, {experiment.experiment_id: experiment.name})

    def model_names(self) -> list[str]:
        return sorted(model.name for model in self._client().search_registered_models(max_results=1000))

    def versions(self, name: str) -> list[RegisteredVersion]:
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:  # search_model_versions leaves the aliases out: the registered model has them
            aliases = client.get_registered_model(name).aliases
        except MlflowException:
            return []
        found = client.search_model_versions(f"name = '{name}'", max_results=_CLIENT_MAX_RESULTS)
        return sorted((RegisteredVersion(each.name, str(each.version), each.run_id, each.source or "",
                                         dict(each.tags),
                                         tuple(sorted(alias for alias, version in aliases.items()
                                                      if str(version) == str(each.version))),
                                         each.creation_timestamp)
                       for each in found), key=lambda each: int(each.version))


def open_view(uri: str | None = None) -> StoreView:
    """The fastest faithful reader of store ``uri`` (default: ``tracking.tracking_uri()``)."""
    uri = uri or tracking_uri()
    check_store(uri)  # a damaged store is an error, never rewritten by a reader
    database = sqlite_path(uri)
    if database is not None:
        view = SqliteView(database)
        if not database.exists() or view.revision() == SCHEMA_REVISION:
            return view
    return ClientView(uri)


def show_run(run_id: str) -> dict[str, Any]:
    """One local run: status (a ``RunStatus`` value), times, parameters, latest metrics and tags.

    Example:
        >>> show_run("no-such-run")
        Traceback (most recent call last):
        ...
        kerasjob.errors.ValidationError: Invalid `run_id`: expected the id of a run in the MLflow store. Received: run_id='no-such-run'
    """
    record = open_view().run(run_id)
    if record is None:
        raise ValidationError("run_id", "the id of a run in the MLflow store", run_id)
    return {"run_id": record.run_id, "name": record.name, "experiment": record.experiment,
            "status": run_status(record.status).value, "start_time": record.start_time, "end_time": record.end_time,
            "duration_s": record.duration_s, "backend": record.tags.get(BACKEND_TAG),
            "parent_run_id": record.parent_run_id, "params": dict(record.params), "metrics": dict(record.metrics),
            "tags": {key: value for key, value in record.tags.items() if not key.startswith("mlflow.")},
            "artifact_uri": record.artifact_uri, "url": tracking_uri()}
