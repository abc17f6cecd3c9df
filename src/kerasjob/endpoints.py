"""Serve a trained model at a named endpoint: ``deploy_model``, and the ``Endpoint`` handle it returns.

Every backend serves models in its own way, behind its ``endpoints()`` hook (an
:class:`EndpointHost`: deploy, get, list); the handle has the same verbs everywhere
(``url``, ``invoke``, ``logs``, ``delete``):

- **local** (this module): MLflow's scoring server (its FastAPI app, run by uvicorn
  as ``mlflow models serve --env-manager local`` runs it) behind a request body limit
  (default 50 MB, answered 413) and an optional bearer token (``kerasjob.serving_app``),
  bound to 127.0.0.1 on a free port (or ``port``), detached in its own process group,
  recorded under ``$KERASJOB_HOME/endpoints/NAME.json`` (pid and start time, port,
  model, log file) so that any later process finds it. ``deploy_model`` returns once
  ``/ping`` answers; redeploying a name starts the new server first and stops the old
  one only once the new one answers. ``delete`` stops the whole group, only if the
  recorded process (pid *and* start time) still leads it. Ctrl-C while deploying
  stops the new server.
- **azureml-v2** and **azureml**: Azure ML managed online endpoints
  (``kerasjob.azure_endpoints``).

An endpoint name follows Azure ML's rule on every backend (:data:`ENDPOINT_NAME`),
so a name tried locally works on Azure too.

Example:
    >>> endpoint = deploy_model("keras-mnist:1", endpoint="mnist")        # doctest: +SKIP
    >>> endpoint.invoke("seven.png").digits                               # doctest: +SKIP
    [7]
    >>> endpoint.delete()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DeploymentFailed, KerasJobError, ValidationError
from .home import ensure_writable
from .optional import PREDICT
from .prediction import ModelSchema, Prediction, load_inputs, model_location, read_schema, request_body
from .processes import ProcessIdentity, pid_running
from .quiet import quiet_environment
from .serving_app import DEFAULT_MAX_BODY_BYTES, MAX_BODY_ENV, TOKEN_ENV

if TYPE_CHECKING:
    from .backends import Backend

#: Where MLflow's scoring app finds its model (``mlflow.pyfunc.scoring_server._SERVER_MODEL_PATH``).
MODEL_PATH_ENV = "__pyfunc_model_path__"

__all__ = ["DEFAULT_INSTANCE_COUNT", "DEFAULT_INSTANCE_TYPE", "DEFAULT_TIMEOUT_SECONDS", "ENDPOINT_NAME", "Endpoint",
           "EndpointHost", "LocalEndpoint", "LocalEndpoints", "check_endpoint_name", "deploy_model", "describe",
           "get_endpoint", "list_endpoints", "prediction_from"]

#: Azure ML's rule for online endpoint (and deployment) names, as azure-ai-ml checks it before any call
#: (``validate_endpoint_or_deployment_name`` in azure/ai/ml/entities/_endpoint/_endpoint_helpers.py, with
#: ``EndpointConfigurations`` in azure/ai/ml/constants/_endpoint.py): 3-32 characters, a letter first, then
#: letters, digits or '-', ending with a letter or digit. Local endpoints follow the same rule, so a name works on
#: both. Azure also wants the name unique in its region, which only the service can tell.
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
#: Azure ML's defaults for a managed online deployment; the local backend has no use for them.
DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"
DEFAULT_INSTANCE_COUNT = 1
#: How long a local scoring server may take to answer ``/ping``.
DEFAULT_TIMEOUT_SECONDS = 180.0
_STOP_SECONDS = 10.0


def check_endpoint_name(name: object) -> str:
    """``name`` when it follows :data:`ENDPOINT_NAME`, else ``ValidationError`` (nothing is contacted).

    Example:
        >>> check_endpoint_name("mnist-1")
        'mnist-1'
    """
    if not isinstance(name, str) or not ENDPOINT_NAME.match(name):
        raise ValidationError("endpoint", "3-32 letters, digits or '-', starting with a letter and not ending with "
                              "'-' (Azure ML's rule for online endpoints)", name)
    return name


def prediction_from(outputs: Any) -> Prediction:
    """The ``Prediction`` for what a scoring server answers: rows of class scores (the digits and probabilities),
    values, or a dict of them for a multi-output model."""
    if isinstance(outputs, dict) and all(isinstance(value, list) for value in outputs.values()):
        return Prediction.of(outputs)
    if isinstance(outputs, list) and outputs and all(isinstance(row, dict) for row in outputs):
        outputs = [list(row.values()) for row in outputs]  # a DataFrame answered as records: one row of scores each
    if not isinstance(outputs, list) or not outputs or not all(
            isinstance(row, (int, float)) or isinstance(row, list) for row in outputs):
        raise KerasJobError(f"The endpoint answered {str(outputs)[:200]!r}, not rows of predictions.")
    try:
        return Prediction.of(outputs)
    except (TypeError, ValueError):
        raise KerasJobError(f"The endpoint answered {str(outputs)[:200]!r}, not rows of numbers.") from None


class Endpoint(abc.ABC):
    """A model served at a named endpoint: where it answers, what it serves, and the same verbs on every backend."""

    name: str
    backend: str
    url: str
    model: str

    @abc.abstractmethod
    def invoke(self, inputs: Any) -> Prediction:
        """What the served model answers for ``inputs`` (any form ``predict`` takes for its signature)."""

    @abc.abstractmethod
    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the server's log."""

    @abc.abstractmethod
    def delete(self) -> None:
        """Stop serving and forget the endpoint."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The endpoint as the CLI prints it: at least name, backend, url, model and running."""

    def _repr_html_(self) -> str:
        """In a notebook: the endpoint as a small table, with a link to where it answers."""
        from .html import html_table

        described = self.describe()
        return html_table(f"Endpoint {self.name}", [("backend", self.backend), ("model", self.model),
                                                    ("running", described.get("running")), ("url", self.url)],
                          link=self.url)


class EndpointHost(abc.ABC):
    """Where a backend serves models (``Backend.endpoints()``): deploys, finds and lists its endpoints."""

    @abc.abstractmethod
    def deploy(self, model: object, name: str, *, instance_type: str, instance_count: int,
               timeout: float | None) -> Endpoint:
        """Serve ``model`` at endpoint ``name`` (already checked); returns once it answers."""

    @abc.abstractmethod
    def get(self, name: str) -> Endpoint | None:
        """The endpoint called ``name``, or None."""

    @abc.abstractmethod
    def list(self) -> list[Endpoint]:
        """Every endpoint, by name."""


def _endpoints_dir() -> Path:
    from .tracking import kerasjob_home

    return kerasjob_home() / "endpoints"


@dataclass(frozen=True)
class LocalEndpoint(Endpoint):
    """MLflow's scoring server on this machine: where it answers, what it serves, its process and log."""

    name: str
    backend: str
    url: str
    model: str
    pid: int
    log_path: str
    started: float | None = None  # the server's start time: with ``pid``, which process it is
    max_body_bytes: int | None = None
    auth: str | None = None  # "bearer token ...xyz" (its last characters only) when a token is required

    def invoke(self, inputs: Any, timeout: float = 60.0) -> Prediction:
        """POST ``inputs`` (any form ``predict`` takes for the served model's signature) in MLflow's JSON format;
        what the model answers (digits and probabilities for a classifier)."""
        body = request_body(load_inputs(inputs, self._schema()))
        headers = {"Content-Type": "application/json"}
        token = os.environ.get(TOKEN_ENV)
        if self.auth and token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{self.url}/invocations", data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our own loopback server
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise KerasJobError(f"Endpoint {self.name!r} answered HTTP {error.code}: "
                                f"{error.read().decode(errors='replace')[:500]}") from None
        except (urllib.error.URLError, OSError) as error:
            raise KerasJobError(f"Endpoint {self.name!r} at {self.url} does not answer ({error}); "
                                f"see `kerasjob endpoints logs {self.name}`.") from None
        return prediction_from(answer.get("predictions") if isinstance(answer, dict) else answer)

    def _schema(self) -> ModelSchema:
        """The served model's input schema, read from its MLmodel (the local registry's, for ``models:/``)."""
        from .tracking import tracking_uri

        return read_schema(self.model, tracking_uri() if self.model.startswith("models:/") else None)

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        """Whether the server's process still runs (this very process: its pid and start time)."""
        identity = self._identity()
        return identity is not None and identity.running()

    def _identity(self) -> ProcessIdentity | None:
        """The recorded server; None for a record without a start time whose pid now runs something else."""
        if self.started is not None:
            return ProcessIdentity(self.pid, self.started)
        current = ProcessIdentity.of(self.pid)  # an older record: trust the pid only if it still runs a server
        return current if current is not None and _is_server(self.pid) else None

    def delete(self) -> None:
        """Stop the server's whole process group (never a process that took over its pid) and forget it."""
        identity = self._identity()
        if identity is not None and identity.running():
            _stop_group(self.pid)
        with contextlib.suppress(FileNotFoundError):
            (_endpoints_dir() / f"{self.name}.json").unlink()
        own_log = re.compile(re.escape(self.name) + r"-\d+\.log")  # this one's and earlier deployments'
        for log in _endpoints_dir().glob(f"{self.name}-*.log"):
            if own_log.fullmatch(log.name):
                log.unlink(missing_ok=True)

    def delete_process(self) -> None:
        """Stop the server's process group if it is still the recorded one (the record stays)."""
        identity = self._identity()
        if identity is not None and identity.running():
            _stop_group(self.pid)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "running": self.alive()}


def _is_server(pid: int) -> bool:
    import psutil

    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "mlflow" in command or "serving_app" in command


def _group_running(pgid: int) -> bool:
    """Whether any process of the group is left (its leader, our child when we started it, is reaped first)."""
    pid_running(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(pid: int) -> None:
    """SIGTERM to the server's process group (mlflow and its uvicorn), SIGKILL after a grace period."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sent)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + _STOP_SECONDS
        while time.monotonic() < deadline:
            if not _group_running(pid):
                return
            time.sleep(0.1)


def _free_port(port: int | None = None) -> int:
    """``port`` when it is free on loopback (``ValidationError`` otherwise), else one the OS picks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port or 0))
        except OSError as exc:
            raise ValidationError("port", "a TCP port free on 127.0.0.1", port,
                                  hint=f"It cannot be used ({exc.strerror or exc}).") from exc
        return int(probe.getsockname()[1])


def _token_hint(token: str) -> str:
    """How a token is shown and recorded: never whole."""
    return f"bearer token ...{token[-3:]}" if len(token) >= 12 else "bearer token"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start_server(name: str, model_uri: str, tracking_uri: str | None, timeout: float, port: int | None = None,
                  max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, auth_token: str | None = None) -> LocalEndpoint:
    """Start MLflow's scoring app behind ``RequestLimits`` with uvicorn, detached, and wait until ``/ping``
    answers (else stop it, with its log). Ctrl-C stops it too."""
    port = _free_port(port)
    log_path = _endpoints_dir() / f"{name}-{port}.log"
    python_bin = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": python_bin + os.pathsep + os.environ.get("PATH", ""),
           MODEL_PATH_ENV: model_uri, MAX_BODY_ENV: str(max_body_bytes),
           **quiet_environment()}
    env.pop(TOKEN_ENV, None)
    if auth_token:
        env[TOKEN_ENV] = auth_token  # the environment, never the command line (ps shows that)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    command = [sys.executable, "-m", "uvicorn", "kerasjob.serving_app:app", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)  # its own process group: delete stops all of it
    try:
        identity = ProcessIdentity.of(process.pid)
        endpoint = LocalEndpoint(name=name, backend="local", url=f"http://127.0.0.1:{port}", model=model_uri,
                                 pid=process.pid, log_path=str(log_path),
                                 started=identity.started if identity else None, max_body_bytes=max_body_bytes,
                                 auth=_token_hint(auth_token) if auth_token else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _answers(endpoint.url):
                return endpoint
            time.sleep(0.5)
    except KeyboardInterrupt:
        _stop_group(process.pid)
        raise KeyboardInterrupt(f"interrupted; the scoring server for endpoint {name!r} was stopped "
                                "(nothing is served or recorded)") from None
    _stop_group(process.pid)
    reason = "exited" if process.poll() is not None else f"did not answer /ping within {timeout:.0f} s"
    raise DeploymentFailed(f"The scoring server for endpoint {name!r} {reason} (its log: {log_path}).",
                           endpoint=name, log_tail=endpoint.logs(20))


def _find(name: str) -> LocalEndpoint | None:
    path = _endpoints_dir() / f"{name}.json"
    try:
        return LocalEndpoint(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError) as exc:
        raise KerasJobError(f"{path} cannot be read ({exc}): remove it to forget endpoint {name!r}.") from exc


class LocalEndpoints(EndpointHost):
    """The local backend's endpoints: MLflow scoring servers recorded under ``$KERASJOB_HOME/endpoints``."""

    def deploy(self, model: object, name: str, *, instance_type: str = DEFAULT_INSTANCE_TYPE,
               instance_count: int = DEFAULT_INSTANCE_COUNT, timeout: float | None = None, port: int | None = None,
               max_body_bytes: int | None = None, auth_token: str | None = None) -> LocalEndpoint:
        """Start a server for ``model`` (as ``predict`` takes it); the one it replaces stops once it answers.

        ``instance_type`` and ``instance_count`` are Azure's: one local server serves on this machine.
        ``port`` (default: a free one), ``max_body_bytes`` (default 50 MB) and ``auth_token`` (a bearer token
        every request but ``/ping`` must carry) are this server's.
        """
        PREDICT.require()
        ensure_writable(_endpoints_dir(), "its endpoints")  # before the model: the cheap mistake first
        model_uri, tracking_uri = model_location(model)
        previous = _find(name)
        started = _start_server(name, model_uri, tracking_uri, DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout,
                                port, DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes, auth_token)
        record = _endpoints_dir() / f"{name}.json"
        try:
            with tempfile.NamedTemporaryFile("w", dir=record.parent, prefix=f".{name}.", suffix=".json",
                                             delete=False) as staging:
                json.dump(asdict(started), staging)
            os.replace(staging.name, record)  # the new server answers before the record points at it
        except BaseException as exc:  # Ctrl-C or a full disk: an unrecorded server is stopped, never left behind
            _stop_group(started.pid)
            with contextlib.suppress(OSError):
                os.unlink(staging.name)
            if isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt(f"interrupted; the scoring server for endpoint {name!r} was stopped") from None
            raise
        if previous is not None:
            previous.delete_process()
        return started

    def get(self, name: str) -> LocalEndpoint | None:
        return _find(name)

    def list(self) -> list[Endpoint]:
        folder = _endpoints_dir()
        found = [_find(path.stem) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
        return [endpoint for endpoint in found if endpoint is not None]


def _host(backend: str | Backend | None, workspace: dict[str, Any]) -> EndpointHost:
    """The backend's endpoint host; ``workspace`` holds ``BackendOptions`` fields (checked by name)."""
    from .backends import BackendOptions, resolve_backend

    known = sorted(field.name for field in dataclasses.fields(BackendOptions))
    unknown = sorted(set(workspace) - set(known))
    if unknown:
        raise ValidationError(unknown[0], f"a workspace argument ({', '.join(known)})", workspace[unknown[0]])
    host: EndpointHost = resolve_backend(backend, **workspace).endpoints()
    return host


def deploy_model(model: object, *, endpoint: str, backend: str | Backend | None = None,
                 instance_type: str = DEFAULT_INSTANCE_TYPE, instance_count: int = DEFAULT_INSTANCE_COUNT,
                 timeout: float | None = None, port: int | None = None, max_body_bytes: int | None = None,
                 auth_token: str | None = None, **workspace: Any) -> Endpoint:
    """Serve ``model`` at endpoint ``endpoint`` and return its handle once it answers.

    Args:
        model: a ``TrainingResult``, ``"models:/NAME/VERSION"`` or ``"NAME:VERSION"`` (the backend's registry:
            the local MLflow registry, or the Azure ML workspace's models), or, locally, a model folder.
        endpoint: the endpoint's name, checked against :data:`ENDPOINT_NAME` before anything else.
        backend: ``"local"`` (default, unless a workspace is named), ``"azureml-v2"``, ``"azureml"`` (served
            through azure-ai-ml in the same workspace) or a ``Backend``.
        instance_type, instance_count: the Azure VMs behind the deployment (ignored locally).
        timeout: seconds to wait for the server (local default 180; Azure: until the service is done).
        port, max_body_bytes, auth_token: the local server's port (default: a free one), request body limit
            (default 50 MB; a bigger body is answered 413) and bearer token (default none; never printed or
            logged whole). Local only.
        workspace: the Azure ML workspace as ``submit_training`` takes it (``workspace_config``,
            ``subscription_id``, ``resource_group``, ``workspace_name``, ``auth``, ``ml_client``, ...).

    Raises:
        ValidationError: a bad name, model or instance argument (nothing was contacted or started).
        DeploymentFailed: the model did not come up; on Azure the old deployment keeps serving.
        DeploymentInterrupted: Ctrl-C while waiting; its message says what exists and how to remove it.

    Example:
        >>> deploy_model("keras-mnist:1", endpoint="mnist-1")                          # doctest: +SKIP
        >>> deploy_model("keras-mnist:3", endpoint="mnist", backend="azureml-v2",
        ...              workspace_config="config.json").url                              # doctest: +SKIP
        'https://mnist.westeurope.inference.ml.azure.com/score'
    """
    name = check_endpoint_name(endpoint)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValidationError("timeout", "None (the backend's default) or a number of seconds > 0", timeout)
    local = {key: value for key, value in (("port", port), ("max_body_bytes", max_body_bytes),
                                           ("auth_token", auth_token)) if value is not None}
    _check_local_options(local)
    host = _host(backend, workspace)
    if local and not isinstance(host, LocalEndpoints):
        argument = next(iter(local))
        raise ValidationError(argument, "None on Azure ML (its endpoints set their own port, limits and keys)",
                              "<token>" if argument == "auth_token" else local[argument])
    return host.deploy(model, name, instance_type=instance_type, instance_count=instance_count, timeout=timeout,
                       **local)


def _check_local_options(local: dict[str, Any]) -> None:
    port, limit, token = local.get("port"), local.get("max_body_bytes"), local.get("auth_token")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise ValidationError("port", "a TCP port from 1 to 65535", port)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError("max_body_bytes", "a number of bytes >= 1", limit)
    if token is not None and (not isinstance(token, str) or len(token) < 8 or any(c.isspace() for c in token)):
        raise ValidationError("auth_token", "a token of at least 8 characters without spaces",
                              "<hidden>" if isinstance(token, str) else token)


def get_endpoint(name: str, *, backend: str | Backend | None = None, **workspace: Any) -> Endpoint:
    """The endpoint called ``name`` on ``backend`` (``ValidationError`` when there is none).

    Example:
        >>> get_endpoint("mnist").url                                                  # doctest: +SKIP
        'http://127.0.0.1:5123'
    """
    check_endpoint_name(name)
    host = _host(backend, workspace)
    found = host.get(name)
    if found is None:
        deployed = ", ".join(each.name for each in host.list()) or "none"
        raise ValidationError("endpoint", f"one of the deployed endpoints ({deployed})", name)
    return found


def list_endpoints(*, backend: str | Backend | None = None, **workspace: Any) -> list[Endpoint]:
    """Every endpoint on ``backend`` (default: those deployed from this kerasjob home), by name.

    Example:
        >>> [endpoint.name for endpoint in list_endpoints()]                           # doctest: +SKIP
        ['mnist']
    """
    return _host(backend, workspace).list()


def describe(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint as the CLI prints it (name, backend, url, model, running, and what its backend adds)."""
    return endpoint.describe()
