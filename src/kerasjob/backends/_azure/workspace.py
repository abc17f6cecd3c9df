"""The Azure ML workspace, for both SDKs: from ``config.json`` or explicit ids, with a chosen login.

Everything that can be checked offline is checked before an SDK is called: the
auth choice, the config file's presence (searched upward from the current
folder, as the SDKs do), the service principal's environment variables. One
auth table gives both the SDK v1 authentication object (:func:`authentication`)
and the SDK v2 ``azure-identity`` credential (:func:`credential_for`).

Example:
    >>> ws = load_workspace()                                   # doctest: +SKIP
    >>> ws = load_workspace(auth="service-principal")           # doctest: +SKIP
    >>> ml_client = load_ml_client(auth="cli")                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from ...errors import ValidationError

__all__ = ["AUTH_CHOICES", "AUTH_METHODS", "CONFIG_NAMES", "INTERACTIVE_BANNER", "SERVICE_PRINCIPAL_VARIABLES",
           "SUBSCRIPTION_ID", "WorkspaceIds", "authentication", "check_workspace_arguments", "credential_for",
           "find_config", "sdk_output_to_stderr",
           "load_ml_client", "load_workspace", "read_config", "tracking_client"]

#: auth choice -> (``azureml.core.authentication`` class for SDK v1, ``azure.identity`` credential for SDK v2).
#: None for v1's "default": the SDK's own chain. Service principals read AZURE_TENANT_ID, AZURE_CLIENT_ID and
#: AZURE_CLIENT_SECRET in both.
AUTH_METHODS: dict[str, tuple[str | None, str]] = {
    "default": (None, "DefaultAzureCredential"),
    "interactive": ("InteractiveLoginAuthentication", "InteractiveBrowserCredential"),
    "cli": ("AzureCliAuthentication", "AzureCliCredential"),
    "service-principal": ("ServicePrincipalAuthentication", "EnvironmentCredential"),
    "managed-identity": ("MsiAuthentication", "ManagedIdentityCredential"),
}
AUTH_CHOICES = tuple(AUTH_METHODS)
SERVICE_PRINCIPAL_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
#: An Azure subscription id: a GUID (Azure refuses anything else, after a login).
SUBSCRIPTION_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CONFIG_NAMES = ("config.json", ".azureml/config.json", "aml_config/config.json")


class WorkspaceIds(NamedTuple):
    """Which Azure ML workspace: the three ids ``config.json`` holds."""

    subscription_id: str
    resource_group: str
    workspace_name: str


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The first workspace ``config.json`` in ``start`` (default: cwd) or a parent folder."""
    folder = Path(start or Path.cwd()).absolute()
    for candidate in (folder, *folder.parents):
        for name in CONFIG_NAMES:
            if (candidate / name).is_file():
                return candidate / name
    return None


def check_workspace_arguments(config: str | os.PathLike[str] | None = None, *, subscription_id: str | None = None,
                              resource_group: str | None = None, workspace_name: str | None = None,
                              auth: str = "default") -> Path | None:
    """Check the workspace arguments offline; return the config file to use (None for explicit ids)."""
    if auth not in AUTH_CHOICES:
        raise ValidationError("auth", f"one of {', '.join(AUTH_CHOICES)}", auth)
    if auth == "service-principal":
        missing = [name for name in SERVICE_PRINCIPAL_VARIABLES if not os.environ.get(name)]
        if missing:
            raise ValidationError("auth", f"the environment variables {', '.join(SERVICE_PRINCIPAL_VARIABLES)} set "
                                  "for a service principal", auth, hint=f"Missing: {', '.join(missing)}.")
    explicit = (subscription_id, resource_group, workspace_name)
    if any(explicit):
        if not all(isinstance(value, str) and value for value in explicit):
            raise ValidationError("workspace", "subscription_id, resource_group and workspace_name all given",
                                  dict(zip(("subscription_id", "resource_group", "workspace_name"), explicit)))
        if not SUBSCRIPTION_ID.fullmatch(str(subscription_id)):
            raise ValidationError("subscription_id", "a subscription id: a GUID such as "
                                  "00000000-0000-0000-0000-000000000000", subscription_id,
                                  hint="The workspace's page in the Azure portal shows it (so does az account "
                                       "show).")
        return None
    if config is not None:
        path = Path(config)
        if path.is_dir():
            path = find_config(path) or path / "config.json"
        if not path.is_file():
            raise ValidationError("workspace_config", "an existing workspace config.json", str(config))
    else:
        found = find_config()
        if found is None:
            raise ValidationError(
                "workspace_config", "a config.json in this folder or a parent, or explicit workspace ids", None,
                hint="Download config.json from the workspace's page in the Azure portal, or pass "
                     "`subscription_id`, `resource_group` and `workspace_name`.",
            )
        path = found
    read_config(path)
    return path


def read_config(path: str | os.PathLike[str]) -> WorkspaceIds:
    """The workspace ids in ``config.json``, read as both SDKs read them (the three keys, or an ARM ``Scope``).

    Raises ``ValidationError`` for ``workspace_config`` when the file is not JSON or lacks the ids.

    Example:
        >>> import json, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        ...     json.dump({"subscription_id": "s", "resource_group": "rg", "workspace_name": "ws"}, f)
        >>> read_config(f.name).workspace_name
        'ws'
    """
    hint = ("Download config.json again from the workspace's page in the Azure portal (Download config file), or "
            "pass `subscription_id`, `resource_group` and `workspace_name`.")
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValidationError("workspace_config", "a config.json holding a JSON object", str(path),
                              hint=f"It could not be read as JSON ({error}). {hint}") from None
    if isinstance(document, dict) and isinstance(document.get("Scope"), str):
        pieces = document["Scope"].strip("/").split("/")
        if len(pieces) >= 8 and all(pieces[index] for index in (1, 3, 7)):
            return WorkspaceIds(pieces[1], pieces[3], pieces[7])
    elif isinstance(document, dict):
        values = [document.get(key) for key in WorkspaceIds._fields]
        if all(isinstance(value, str) and value for value in values):
            return WorkspaceIds(*(str(value) for value in values))
    keys = sorted(document) if isinstance(document, dict) else type(document).__name__
    raise ValidationError("workspace_config", "a config.json with subscription_id, resource_group and "
                          "workspace_name (or an ARM Scope)", str(path), hint=f"It holds: {keys}. {hint}")


def authentication(auth: str = "default") -> Any:
    """The azureml-core (SDK v1) authentication object for ``auth`` (None: the SDK's default)."""
    v1_class = AUTH_METHODS[auth][0]
    if v1_class is None:
        return None
    from azureml.core import authentication as methods

    if auth == "service-principal":
        return methods.ServicePrincipalAuthentication(
            tenant_id=os.environ["AZURE_TENANT_ID"], service_principal_id=os.environ["AZURE_CLIENT_ID"],
            service_principal_password=os.environ["AZURE_CLIENT_SECRET"],
        )
    return getattr(methods, v1_class)()


def credential_for(auth: str = "default") -> Any:
    """The ``azure-identity`` credential (SDK v2) for ``auth``: the same choices as :func:`authentication`."""
    import azure.identity as identity

    return getattr(identity, AUTH_METHODS[auth][1])()


def load_workspace(config: str | os.PathLike[str] | None = None, *, subscription_id: str | None = None,
                   resource_group: str | None = None, workspace_name: str | None = None,
                   auth: str = "default") -> Any:
    """Load the ``azureml.core.Workspace`` (checks the arguments first).

    Args:
        config: path to ``config.json`` (or its folder); default: searched upward from cwd.
        subscription_id, resource_group, workspace_name: explicit ids instead of a config file.
        auth: ``default``, ``interactive``, ``cli``, ``service-principal`` (AZURE_TENANT_ID,
            AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or ``managed-identity``.
    """
    path = check_workspace_arguments(config, subscription_id=subscription_id, resource_group=resource_group,
                                     workspace_name=workspace_name, auth=auth)
    from ...optional import AZUREML

    AZUREML.require()
    from azureml.core import Workspace

    from ...retry import azure_call

    credentials = authentication(auth)
    with sdk_output_to_stderr():
        if path is None:
            return azure_call(Workspace, subscription_id=subscription_id, resource_group=resource_group,
                              workspace_name=workspace_name, auth=credentials)
        return azure_call(Workspace.from_config, path=str(path), auth=credentials)


#: What azureml-core prints on stdout before its own login (``InteractiveLoginAuthentication``).
INTERACTIVE_BANNER = "Performing interactive authentication"


class _ToStderr(io.TextIOBase):
    """A stdout for the SDK's prints: each line goes to stderr, but for the login banner."""

    def __init__(self) -> None:
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if INTERACTIVE_BANNER not in line:
                sys.stderr.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending and INTERACTIVE_BANNER not in self._pending:
            sys.stderr.write(self._pending)
        self._pending = ""
        sys.stderr.flush()


@contextlib.contextmanager
def sdk_output_to_stderr() -> Iterator[None]:
    """Keep what azureml-core prints while it logs in off stdout (``submit --json`` prints JSON there and nothing
    else): its "Performing interactive authentication..." banner is dropped, anything else it prints (a device
    code's instructions) goes to stderr as it comes."""
    writer = _ToStderr()
    try:
        with contextlib.redirect_stdout(writer):
            yield
    finally:
        writer.flush()


def load_ml_client(config: str | os.PathLike[str] | None = None, *, subscription_id: str | None = None,
                   resource_group: str | None = None, workspace_name: str | None = None, auth: str = "default",
                   credential: Any = None) -> Any:
    """The SDK v2 ``MLClient`` from explicit ids, else from ``config.json`` (given, or searched upward).

    ``credential`` (any ``azure-identity`` credential) wins over ``auth``.
    """
    from azure.ai.ml import MLClient

    path = check_workspace_arguments(config, subscription_id=subscription_id, resource_group=resource_group,
                                     workspace_name=workspace_name, auth=auth)
    credential = credential or credential_for(auth)
    if path is None:
        return MLClient(credential, subscription_id, resource_group, workspace_name)
    return MLClient.from_config(credential=credential, path=str(path))


def tracking_client(ml_client: Any) -> Any:
    """An ``MlflowClient`` on the workspace's ``azureml://`` tracking URI, authenticated as ``ml_client`` is.

    The azureml-mlflow plugin, left alone, signs in with its own chain
    (``DefaultAzureCredential``, then browser, then device code). It keeps one
    service context per tracking URI (``_AzureMLServiceContextLoader``), so we put
    in one holding the ``MLClient``'s credential first (a private azureml-mlflow API).
    """
    from urllib.parse import urlparse

    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader
    from azureml.mlflow._internal.utils import ServiceContext
    from mlflow.tracking import MlflowClient

    from ...retry import azure_call

    workspace = azure_call(ml_client.workspaces.get, ml_client.workspace_name)
    uri = workspace.mlflow_tracking_uri
    if uri.startswith("azureml://"):
        _AzureMLServiceContextLoader.add_service_context(uri, ServiceContext(
            host_url="https://" + urlparse(uri).netloc, subscription_id=ml_client.subscription_id,
            workspace_name=ml_client.workspace_name, resource_group_name=ml_client.resource_group_name,
            auth=ml_client._credential))
    return MlflowClient(tracking_uri=uri)
