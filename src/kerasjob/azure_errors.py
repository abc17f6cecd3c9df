"""Azure's "you may not" errors, from either SDK, as kerasjob errors that say what to do.

Both SDKs report a missing login, a missing workspace and a missing permission in
their own words and types, often wrapped in another exception: azure-identity's
``ClientAuthenticationError`` (and its ``CredentialUnavailableError``),
azureml-core's ``AuthenticationException``, an HTTP 403 inside an
``HttpResponseError`` or ``ProjectSystemException``, azureml-core's
``ProjectSystemException("workspace not found.")`` (``resource_error_handling``
in ``azureml/_base_sdk_common/common.py``). Without a network, both blame the
login: azureml-core raises an ``AuthenticationException`` with no text,
``DefaultAzureCredential`` a ``ClientAuthenticationError`` listing every
credential; a host that does not resolve reaches the caller as azure-core's
``ServiceRequestError`` or a ``requests.ConnectionError``. So a failed name
lookup in the chain, or a login refusal while Azure Resource Manager's host does
not resolve, is ``AzureUnreachable`` naming the host. :func:`translate_access_error`
walks the whole cause chain and names the fix; :func:`azure_access` applies it to a
block of calls. The types are matched by name, so neither SDK is imported here.

Example:
    >>> class HttpResponseError(Exception):
    ...     status_code = 403
    >>> type(translate_access_error(HttpResponseError("AuthorizationFailed"))).__name__
    'AccessDenied'
    >>> unresolved_host(OSError("Failed to resolve 'management.azure.com' (Name or service not known)"))
    'management.azure.com'
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from typing import Iterator

from .errors import AccessDenied, AzureAccessError, AzureUnreachable, NotAuthenticated, WorkspaceNotFound, causes
from .retry import status_code

__all__ = ["ARM_HOST", "LOGIN_FIX", "azure_access", "is_not_found", "resolves", "translate_access_error",
           "unresolved_host"]

#: Azure Resource Manager, which every login and workspace lookup of both SDKs reaches first.
ARM_HOST = "management.azure.com"
# What a failed name lookup looks like in urllib3's, requests' and the OS's words.
_NAME_LOOKUP = re.compile(r"Failed to resolve|Name or service not known|nodename nor servname|getaddrinfo failed|"
                          r"Temporary failure in name resolution|No address associated with hostname", re.IGNORECASE)
_HOST = re.compile(r"Failed to resolve '([^']+)'|host='([^']+)'")

LOGIN_FIX = ("Run `az login` and pass --auth cli (auth='cli'), or set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
             "AZURE_CLIENT_SECRET and pass --auth service-principal (auth='service-principal').")
_AUTHENTICATION_TYPES = {"ClientAuthenticationError", "CredentialUnavailableError", "AuthenticationException"}
# azureml-core words a 403 as "Response Code: 403" (ComputeTargetException), "Request failed (403)"
# (UserErrorException), or "status_code": 403 in a JSON dump (ProjectSystemException).
_FORBIDDEN = re.compile(r"(Response Code|status_code|HTTP|Request failed)\W*403\b|AuthorizationFailed|\bForbidden\b",
                        re.IGNORECASE)
_AZUREML_ERRORS = {"AzureMLException", "HttpResponseError"}
# azureml-core says "Workspace not found."; ARM names the workspace's resource type, or the missing group.
_WORKSPACE_MISSING = re.compile(r"workspace not found|WorkspaceNotFound|ResourceGroupNotFound|SubscriptionNotFound|"
                                r"MachineLearningServices/workspaces/[^']*' (under resource group '[^']*' )?was not "
                                r"found", re.IGNORECASE)


def is_not_found(error: BaseException) -> bool:
    """True when the service said "not found" (404), however either SDK wrapped it.

    SDK v1's run history raises a ``ServiceException`` carrying the 404; SDK v2's
    ``data.get(name, label="latest")`` raises ``MlException`` from a
    ``ValidationException`` from the ``ResourceNotFoundError``: the cause chain tells.
    """
    return any(any(cls.__name__ == "ResourceNotFoundError" for cls in type(each).__mro__)
               or status_code(each) == 404 for each in causes(error))


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300].rstrip(". ")


def resolves(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host``'s name resolves within ``timeout`` seconds (a lookup left running is abandoned)."""
    answer: list[bool] = []

    def look_up() -> None:
        try:
            socket.getaddrinfo(host, 443)
            answer.append(True)
        except OSError:
            answer.append(False)

    worker = threading.Thread(target=look_up, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(answer and answer[0])


def unresolved_host(error: BaseException) -> str | None:
    """The host whose name did not resolve, when that is what ``error`` (or a cause) says; else None."""
    for each in causes(error):
        names = {cls.__name__ for cls in type(each).__mro__}
        text = str(each)
        if "gaierror" in names or _NAME_LOOKUP.search(text):
            found = _HOST.search(text)
            return next((group for group in found.groups() if group), ARM_HOST) if found else ARM_HOST
    return None


def _unreachable(host: str, where: str) -> AzureUnreachable:
    return AzureUnreachable(f"Azure cannot be reached for {where}: the host {host} does not resolve (no network, "
                            "or DNS, a proxy or a firewall blocks it). Check the connection (and HTTPS_PROXY), then "
                            "run the command again.", host=host)


def translate_access_error(error: BaseException, where: str = "the Azure ML workspace") -> AzureAccessError | None:
    """The kerasjob error for ``error`` when it means no login, no workspace or no permission; else None."""
    host = unresolved_host(error)
    if host is not None:
        return _unreachable(host, where)
    for each in causes(error):
        if isinstance(each, AzureAccessError):
            return each
        names = {cls.__name__ for cls in type(each).__mro__}
        if names & _AUTHENTICATION_TYPES or status_code(each) == 401:
            if not resolves(ARM_HOST):  # offline, either SDK blames the login
                return _unreachable(ARM_HOST, where)
            return NotAuthenticated(f"Azure did not accept the login for {where}: {_first_line(each)}. {LOGIN_FIX}")
        if status_code(each) == 403 or (names & _AZUREML_ERRORS and _FORBIDDEN.search(str(each))):
            return AccessDenied(
                f"Azure refused access to {where} (HTTP 403): {_first_line(each)}. The login works but lacks a role "
                "there: ask the workspace's owner for the 'AzureML Data Scientist' role, or log in as another "
                "identity with --auth.")
        if _WORKSPACE_MISSING.search(str(each)) and names & _AZUREML_ERRORS:
            return WorkspaceNotFound(
                f"{where[0].upper() + where[1:]} does not exist or is not visible to this login: {_first_line(each)}. "
                "Check config.json (download it again from the workspace's page in the Azure portal) or "
                "--subscription-id, --resource-group and --workspace-name.")
    return None


@contextlib.contextmanager
def azure_access(where: str = "the Azure ML workspace") -> Iterator[None]:
    """Re-raise a login, workspace or permission error from the block as a kerasjob ``AzureAccessError``."""
    try:
        yield
    except AzureAccessError:
        raise
    except Exception as error:
        translated = translate_access_error(error, where)
        if translated is None:
            raise
        raise translated from error
