"""Serve a trained model at a named endpoint: ``deploy_model``, and the ``Endpoint`` handle it returns.

Every backend serves models in its own way, behind its ``endpoints()`` hook (an
:class:`EndpointHost`: deploy, get, list); the handle has the same verbs everywhere
(``url``, ``invoke``, ``logs``, ``delete``):

- **local** (``kerasjob.backends.local.serving``): MLflow's scoring server (its FastAPI app, run by uvicorn
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
  (``kerasjob.backends._azure.endpoints``).

An endpoint name follows Azure ML's rule on every backend (:data:`ENDPOINT_NAME`),
so a name tried locally works on Azure too.

Example:
    >>> endpoint = deploy_model("keras-mnist:1", endpoint="mnist")        # doctest: +SKIP
    >>> endpoint.invoke("seven.png").digits                               # doctest: +SKIP
    [7]
    >>> endpoint.delete()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .errors import ValidationError
from .hosting import (DEFAULT_INSTANCE_COUNT, DEFAULT_INSTANCE_TYPE, ENDPOINT_NAME, Endpoint, EndpointHost,
                      check_endpoint_name, prediction_from)

if TYPE_CHECKING:
    from .backends import Backend

# For one release, the local host where it was (tests and notebooks import ``kerasjob.endpoints.LocalEndpoint``):
# it is the local backend's now.
from .backends.local.serving import LocalEndpoint, LocalEndpoints, _free_port  # noqa: E402,F401

__all__ = ["DEFAULT_INSTANCE_COUNT", "DEFAULT_INSTANCE_TYPE", "ENDPOINT_NAME", "Endpoint", "EndpointHost",
           "check_endpoint_name", "deploy_model", "describe", "get_endpoint", "list_endpoints", "prediction_from"]


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
    if local and not host.server_options:
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
