"""Serve a trained model at a named endpoint: ``deploy_model``, and the ``Endpoint`` handle it returns.

Every backend serves models in its own way, behind its ``endpoints()`` hook (an
:class:`EndpointHost`: deploy, get, list); the handle has the same verbs everywhere
(``url``, ``invoke``, ``logs``, ``delete``):

- **local** (this module): ``mlflow models serve --env-manager local`` bound to
  127.0.0.1 on a free port, detached in its own process group, recorded under
  ``$KERASJOB_HOME/endpoints/NAME.json`` (pid, port, model, log file) so that any
  later process finds it. ``deploy_model`` returns once ``/ping`` answers;
  redeploying a name starts the new server first and stops the old one only once
  the new one answers. ``delete`` stops the whole group.
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
from .optional import PREDICT
from .prediction import Images, Prediction, load_images, model_location
from .processes import pid_running
from .quiet import quiet_environment

if TYPE_CHECKING:
    from .backends import Backend

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


def prediction_from(probabilities: Any) -> Prediction:
    """The ``Prediction`` for rows of ten probabilities, as a scoring server answers them."""
    if not isinstance(probabilities, list) or not all(isinstance(row, list) and len(row) == 10
                                                      for row in probabilities):
        raise KerasJobError(f"The endpoint answered {str(probabilities)[:200]!r}, not rows of ten probabilities.")
    rows = [[float(value) for value in row] for row in probabilities]
    return Prediction(digits=[max(range(len(row)), key=row.__getitem__) for row in rows],
                      probabilities=[[round(value, 6) for value in row] for row in rows])


class Endpoint(abc.ABC):
    """A model served at a named endpoint: where it answers, what it serves, and the same verbs on every backend."""

    name: str
    backend: str
    url: str
    model: str

    @abc.abstractmethod
    def invoke(self, images: Images) -> Prediction:
        """The digits the served model sees in ``images`` (any form ``predict`` takes)."""

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

    def invoke(self, images: Images, timeout: float = 60.0) -> Prediction:
        """POST ``images`` (any form ``predict`` takes) in MLflow's JSON format; the digits and probabilities."""
        rows = load_images(images).tolist()
        request = urllib.request.Request(f"{self.url}/invocations", data=json.dumps({"inputs": rows}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
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

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        """Whether the server's process still runs."""
        return pid_running(self.pid)

    def delete(self) -> None:
        """Stop the server's whole process group and forget the endpoint."""
        _stop_group(self.pid)
        with contextlib.suppress(FileNotFoundError):
            (_endpoints_dir() / f"{self.name}.json").unlink()
        own_log = re.compile(re.escape(self.name) + r"-\d+\.log")  # this one's and earlier deployments'
        for log in _endpoints_dir().glob(f"{self.name}-*.log"):
            if own_log.fullmatch(log.name):
                log.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "running": self.alive()}


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start_server(name: str, model_uri: str, tracking_uri: str | None, timeout: float) -> LocalEndpoint:
    """Start ``mlflow models serve`` detached and wait until ``/ping`` answers (else stop it, with its log)."""
    port = _free_port()
    log_path = _endpoints_dir() / f"{name}-{port}.log"
    python_bin = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": python_bin + os.pathsep + os.environ.get("PATH", ""),  # uvicorn lives there
           **quiet_environment()}
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)  # its own process group: delete stops all of it
    endpoint = LocalEndpoint(name=name, backend="local", url=f"http://127.0.0.1:{port}", model=model_uri,
                        pid=process.pid, log_path=str(log_path))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers(endpoint.url):
            return endpoint
        time.sleep(0.5)
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


class LocalEndpoints(EndpointHost):
    """The local backend's endpoints: MLflow scoring servers recorded under ``$KERASJOB_HOME/endpoints``."""

    def deploy(self, model: object, name: str, *, instance_type: str = DEFAULT_INSTANCE_TYPE,
               instance_count: int = DEFAULT_INSTANCE_COUNT, timeout: float | None = None) -> LocalEndpoint:
        """Start a server for ``model`` (as ``predict`` takes it); the one it replaces stops once it answers.

        ``instance_type`` and ``instance_count`` are Azure's: one local server serves on this machine.
        """
        PREDICT.require()
        model_uri, tracking_uri = model_location(model)
        _endpoints_dir().mkdir(parents=True, exist_ok=True)
        previous = _find(name)
        started = _start_server(name, model_uri, tracking_uri, DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout)
        record = _endpoints_dir() / f"{name}.json"
        with tempfile.NamedTemporaryFile("w", dir=record.parent, prefix=f".{name}.", suffix=".json",
                                         delete=False) as staging:
            json.dump(asdict(started), staging)
        os.replace(staging.name, record)  # the new server answers before the record points at it
        if previous is not None:
            _stop_group(previous.pid)
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
                 timeout: float | None = None, **workspace: Any) -> Endpoint:
    """Serve ``model`` at endpoint ``endpoint`` and return its handle once it answers.

    Args:
        model: a ``TrainingResult``, ``"models:/NAME/VERSION"`` or ``"NAME:VERSION"`` (the backend's registry:
            the local MLflow registry, or the Azure ML workspace's models), or, locally, a model folder.
        endpoint: the endpoint's name, checked against :data:`ENDPOINT_NAME` before anything else.
        backend: ``"local"`` (default, unless a workspace is named), ``"azureml-v2"``, ``"azureml"`` (served
            through azure-ai-ml in the same workspace) or a ``Backend``.
        instance_type, instance_count: the Azure VMs behind the deployment (ignored locally).
        timeout: seconds to wait for the server (local default 180; Azure: until the service is done).
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
    return _host(backend, workspace).deploy(model, name, instance_type=instance_type, instance_count=instance_count,
                                            timeout=timeout)


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
