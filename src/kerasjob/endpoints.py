"""Serve a trained model: ``deploy_model`` starts MLflow's own scoring server for it, ``Endpoint`` talks to it.

The local endpoint is ``mlflow models serve --env-manager local`` bound to
127.0.0.1 on a free port, detached in its own process group, recorded under
``$KERASJOB_HOME/endpoints/NAME.json`` (pid, port, model, log file) so that any
later process finds it. ``deploy_model`` returns once ``/ping`` answers;
redeploying a name starts the new server first and stops the old one only once
the new one answers. ``delete`` stops the whole group.

Example:
    >>> endpoint = deploy_model("keras-mnist:1", endpoint="mnist")        # doctest: +SKIP
    >>> endpoint.invoke("seven.png").digits                               # doctest: +SKIP
    [7]
    >>> endpoint.delete()                                                 # doctest: +SKIP
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
from typing import Any

from .errors import KerasJobError, SubmissionError, ValidationError
from .optional import PREDICT
from .prediction import Images, Prediction, load_images, model_location
from .processes import pid_running

__all__ = ["ENDPOINT_NAME", "Endpoint", "deploy_model", "describe", "get_endpoint", "list_endpoints"]

#: Azure ML's online endpoint names: 3-32 characters, a letter first, then letters, digits or '-',
#: not ending with '-'. Local endpoints follow the same rule, so a name works on both.
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
DEFAULT_TIMEOUT_SECONDS = 180.0
_STOP_SECONDS = 10.0


def _endpoints_dir() -> Path:
    from .tracking import kerasjob_home

    return kerasjob_home() / "endpoints"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not ENDPOINT_NAME.match(name):
        raise ValidationError("endpoint", "3-32 letters, digits or '-', starting with a letter and not ending with "
                              "'-' (Azure ML's rule for online endpoints)", name)
    return name


@dataclass(frozen=True)
class Endpoint:
    """A running model server: where it answers, and what it serves."""

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
        probabilities = [[float(value) for value in row] for row in answer["predictions"]]
        return Prediction(digits=[max(range(len(row)), key=row.__getitem__) for row in probabilities],
                          probabilities=[[round(value, 6) for value in row] for row in probabilities])

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


def _start_server(name: str, model_uri: str, tracking_uri: str | None, timeout: float) -> Endpoint:
    """Start ``mlflow models serve`` detached and wait until ``/ping`` answers (else stop it, with its log)."""
    port = _free_port()
    log_path = _endpoints_dir() / f"{name}-{port}.log"
    python_bin = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": python_bin + os.pathsep + os.environ.get("PATH", "")}  # uvicorn lives there
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)  # its own process group: delete stops all of it
    endpoint = Endpoint(name=name, backend="local", url=f"http://127.0.0.1:{port}", model=model_uri,
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
    raise SubmissionError(f"The scoring server for endpoint {name!r} {reason}. Last lines of its log "
                          f"({log_path}):\n{endpoint.logs(20)}")


def deploy_model(model: object, *, endpoint: str, backend: str = "local",
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Endpoint:
    """Serve ``model`` (as ``predict`` takes it) at endpoint ``endpoint``; returns once it answers.

    Only ``backend="local"`` is built so far; another backend raises ``KerasJobError`` saying so.
    """
    name = _check_name(endpoint)
    if backend != "local":
        raise KerasJobError(f"Deploying to backend {backend!r} is not built yet in this version of kerasjob; "
                            "use backend='local' (MLflow's scoring server on this machine).")
    PREDICT.require()
    model_uri, tracking_uri = model_location(model)
    _endpoints_dir().mkdir(parents=True, exist_ok=True)
    previous = _find(name)
    started = _start_server(name, model_uri, tracking_uri, timeout)
    record = _endpoints_dir() / f"{name}.json"
    with tempfile.NamedTemporaryFile("w", dir=record.parent, prefix=f".{name}.", suffix=".json",
                                     delete=False) as staging:
        json.dump(asdict(started), staging)
    os.replace(staging.name, record)  # the new server answers before the record points at it
    if previous is not None:
        _stop_group(previous.pid)
    return started


def _find(name: str) -> Endpoint | None:
    path = _endpoints_dir() / f"{name}.json"
    try:
        return Endpoint(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def get_endpoint(name: str) -> Endpoint:
    """The endpoint deployed as ``name`` (``ValidationError`` when there is none)."""
    found = _find(_check_name(name))
    if found is None:
        deployed = ", ".join(each.name for each in list_endpoints()) or "none"
        raise ValidationError("endpoint", f"one of the deployed endpoints ({deployed})", name)
    return found


def list_endpoints() -> list[Endpoint]:
    """Every endpoint deployed from this kerasjob home, by name."""
    folder = _endpoints_dir()
    found = [_find(path.stem) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return [endpoint for endpoint in found if endpoint is not None]


def describe(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint as the CLI prints it."""
    return {**asdict(endpoint), "running": endpoint.alive()}
