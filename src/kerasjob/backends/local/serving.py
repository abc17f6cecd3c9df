"""The local backend's endpoints: MLflow's scoring server on this machine.

MLflow's scoring server (its FastAPI app, run by uvicorn as ``mlflow models serve --env-manager local`` runs it)
behind a request body limit (default 50 MB, answered 413) and an optional bearer token
(``kerasjob.serving_app``), bound to 127.0.0.1 on a free port (or ``port``), detached in its own process group,
recorded under ``$KERASJOB_HOME/endpoints/NAME.json`` (pid and start time, port, model, log file) so that any
later process finds it. ``deploy`` returns once ``/ping`` answers; redeploying a name starts the new server first
and stops the old one only once the new one answers. ``delete`` stops the whole group, only if the recorded
process (pid *and* start time) still leads it. Ctrl-C while deploying stops the new server.

Example:
    >>> LocalEndpoints().get("mnist")                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
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
from typing import Any, ClassVar

from ...errors import DeploymentFailed, KerasJobError, ValidationError
from ...home import ensure_writable
from ...hosting import DEFAULT_INSTANCE_COUNT, DEFAULT_INSTANCE_TYPE, Endpoint, EndpointHost, prediction_from
from ...optional import PREDICT
from ...prediction import ModelSchema, Prediction, load_inputs, model_location, read_schema, request_body
from ...processes import ProcessIdentity, pid_running
from ...quiet import quiet_environment
from ...serving_app import DEFAULT_MAX_BODY_BYTES, MAX_BODY_ENV, TOKEN_ENV

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "MODEL_PATH_ENV", "LocalEndpoint", "LocalEndpoints"]

#: Where MLflow's scoring app finds its model (``mlflow.pyfunc.scoring_server._SERVER_MODEL_PATH``).
MODEL_PATH_ENV = "__pyfunc_model_path__"
#: How long a local scoring server may take to answer ``/ping``.
DEFAULT_TIMEOUT_SECONDS = 180.0
_STOP_SECONDS = 10.0


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

    server_options: ClassVar[bool] = True

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
