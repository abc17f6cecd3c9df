"""The Azure ML workspace: from ``config.json`` or explicit ids, with a chosen login.

Everything that can be checked offline is checked before the SDK is called: the
auth choice, the config file's presence (searched upward from the current
folder, as the SDK does), the service principal's environment variables.

Example:
    >>> ws = load_workspace()                                   # doctest: +SKIP
    >>> ws = load_workspace(auth="service-principal")           # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from .errors import ValidationError

AUTH_CHOICES = ("default", "interactive", "cli", "service-principal", "managed-identity")
SERVICE_PRINCIPAL_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
CONFIG_NAMES = ("config.json", ".azureml/config.json", "aml_config/config.json")


class WorkspaceIds(NamedTuple):
    """Which Azure ML workspace: the three ids ``config.json`` holds."""

    subscription_id: str
    resource_group: str
    workspace_name: str


def find_config(start: str | os.PathLike | None = None) -> Path | None:
    """The first workspace ``config.json`` in ``start`` (default: cwd) or a parent folder."""
    folder = Path(start or Path.cwd()).absolute()
    for candidate in (folder, *folder.parents):
        for name in CONFIG_NAMES:
            if (candidate / name).is_file():
                return candidate / name
    return None


def check_workspace_arguments(config: str | os.PathLike | None = None, *, subscription_id: str | None = None,
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
        return None
    if config is not None:
        path = Path(config)
        if path.is_dir():
            path = find_config(path) or path / "config.json"
        if not path.is_file():
            raise ValidationError("workspace_config", "an existing workspace config.json", str(config))
    else:
        path = find_config()
        if path is None:
            raise ValidationError(
                "workspace_config", "a config.json in this folder or a parent, or explicit workspace ids", None,
                hint="Download config.json from the workspace's page in the Azure portal, or pass "
                     "subscription_id, resource_group and workspace_name.",
            )
    read_config(path)
    return path


def read_config(path: str | os.PathLike) -> WorkspaceIds:
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
            "pass subscription_id, resource_group and workspace_name.")
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
            return WorkspaceIds(*values)
    keys = sorted(document) if isinstance(document, dict) else type(document).__name__
    raise ValidationError("workspace_config", "a config.json with subscription_id, resource_group and "
                          "workspace_name (or an ARM Scope)", str(path), hint=f"It holds: {keys}. {hint}")


def authentication(auth: str = "default"):
    """The azureml-core authentication object for ``auth`` (None: the SDK's default)."""
    if auth == "default":
        return None
    from azureml.core import authentication as methods

    if auth == "interactive":
        return methods.InteractiveLoginAuthentication()
    if auth == "cli":
        return methods.AzureCliAuthentication()
    if auth == "managed-identity":
        return methods.MsiAuthentication()
    return methods.ServicePrincipalAuthentication(
        tenant_id=os.environ["AZURE_TENANT_ID"], service_principal_id=os.environ["AZURE_CLIENT_ID"],
        service_principal_password=os.environ["AZURE_CLIENT_SECRET"],
    )


def load_workspace(config: str | os.PathLike | None = None, *, subscription_id: str | None = None,
                   resource_group: str | None = None, workspace_name: str | None = None, auth: str = "default"):
    """Load the ``azureml.core.Workspace`` (checks the arguments first).

    Args:
        config: path to ``config.json`` (or its folder); default: searched upward from cwd.
        subscription_id, resource_group, workspace_name: explicit ids instead of a config file.
        auth: ``default``, ``interactive``, ``cli``, ``service-principal`` (AZURE_TENANT_ID,
            AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or ``managed-identity``.
    """
    path = check_workspace_arguments(config, subscription_id=subscription_id, resource_group=resource_group,
                                     workspace_name=workspace_name, auth=auth)
    from .optional import AZUREML

    AZUREML.require()
    from azureml.core import Workspace

    from .retry import azure_call

    credentials = authentication(auth)
    if path is None:
        return azure_call(Workspace, subscription_id=subscription_id, resource_group=resource_group,
                          workspace_name=workspace_name, auth=credentials)
    return azure_call(Workspace.from_config, path=str(path), auth=credentials)
