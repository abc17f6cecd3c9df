"""Azure's "you may not" errors, from either SDK, as kerasjob errors that say what to do.

Both SDKs report a missing login, a missing workspace and a missing permission in
their own words and types, often wrapped in another exception: azure-identity's
``ClientAuthenticationError`` (and its ``CredentialUnavailableError``),
azureml-core's ``AuthenticationException``, an HTTP 403 inside an
``HttpResponseError`` or ``ProjectSystemException``, azureml-core's
``ProjectSystemException("workspace not found.")`` (``resource_error_handling``
in ``azureml/_base_sdk_common/common.py``). :func:`translate_access_error` walks
the whole cause chain and names the fix; :func:`azure_access` applies it to a
block of calls. The types are matched by name, so neither SDK is imported here.

Example:
    >>> class ClientAuthenticationError(Exception): ...
    >>> type(translate_access_error(ClientAuthenticationError("no token"))).__name__
    'NotAuthenticated'
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from .errors import AccessDenied, AzureAccessError, NotAuthenticated, WorkspaceNotFound, causes
from .retry import status_code

__all__ = ["LOGIN_FIX", "azure_access", "is_not_found", "translate_access_error"]

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
    return text.splitlines()[0][:300]


def translate_access_error(error: BaseException, where: str = "the Azure ML workspace") -> AzureAccessError | None:
    """The kerasjob error for ``error`` when it means no login, no workspace or no permission; else None."""
    for each in causes(error):
        if isinstance(each, AzureAccessError):
            return each
        names = {cls.__name__ for cls in type(each).__mro__}
        if names & _AUTHENTICATION_TYPES or status_code(each) == 401:
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
