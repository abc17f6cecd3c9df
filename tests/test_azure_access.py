"""Azure's "you may not" errors become kerasjob errors that name the cause and the fix; a bad config.json is
refused offline. The SDKs' own exception classes are raised here, as they arrive from each SDK."""

from __future__ import annotations

import json

import pytest

from kerasjob import ValidationError, submit_training
from kerasjob.azure_errors import translate_access_error
from kerasjob.errors import AccessDenied, NotAuthenticated, WorkspaceNotFound
from kerasjob.testing import FakeAzureML, FakeMLClient

FAKES = {"azureml": FakeAzureML, "azureml-v2": FakeMLClient}


@pytest.fixture(autouse=True)
def azure_is_reachable(monkeypatch):
    """These refusals come from a reachable Azure (offline, a login refusal is AzureUnreachable:
    test_azure_offline.py)."""
    monkeypatch.setattr("kerasjob.azure_errors.resolves", lambda host, timeout=3.0: True)


def _http_error(status: int, message: str):
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message)
    error.status_code = status
    return error


def _v2_wrapped_403():
    """azure-ai-ml re-raises some service errors as MlException chained from the HTTP error."""
    from azure.ai.ml.exceptions import MlException

    try:
        try:
            raise _http_error(403, "(AuthorizationFailed) The client does not have authorization")
        except Exception as cause:
            raise MlException(message="Operation failed", no_personal_data_message="failed") from cause
    except MlException as error:
        return error


def _sdk_errors():
    from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
    from azure.identity import CredentialUnavailableError
    from azureml.exceptions import AuthenticationException, ProjectSystemException

    return [
        ("v2 no token", ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token"),
         NotAuthenticated),
        ("v2 az not logged in", CredentialUnavailableError("Please run 'az login' to set up an account"),
         NotAuthenticated),
        ("v1 expired login", AuthenticationException("Could not retrieve user token. Please run 'az login'"),
         NotAuthenticated),
        ("v2 403", _http_error(403, "(AuthorizationFailed) The client does not have authorization"), AccessDenied),
        ("v2 403 wrapped", _v2_wrapped_403(), AccessDenied),
        ("v1 403", ProjectSystemException('{"error": {"code": "AuthorizationFailed", "message": "no access"}}'),
         AccessDenied),
        ("v1 no workspace", ProjectSystemException("Workspace not found."), WorkspaceNotFound),
        ("v2 no workspace", ResourceNotFoundError(
            "(ResourceNotFound) The Resource 'Microsoft.MachineLearningServices/workspaces/ws' under resource group "
            "'rg' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix\n"
            "Code: ResourceNotFound"), WorkspaceNotFound),
    ]


@pytest.mark.parametrize("index", range(8), ids=[case[0] for case in _sdk_errors()])
def test_each_sdks_refusal_becomes_a_typed_error_that_names_the_fix(index):
    _, error, expected = _sdk_errors()[index]
    translated = translate_access_error(error)
    assert type(translated) is expected
    fix = {NotAuthenticated: "az login", AccessDenied: "role", WorkspaceNotFound: "config.json"}[expected]
    assert fix in str(translated)


def test_other_errors_are_left_alone():
    from azure.core.exceptions import ResourceNotFoundError

    assert translate_access_error(ResourceNotFoundError("Data asset mnist-dataset not found")) is None
    assert translate_access_error(_http_error(500, "Internal error")) is None
    assert translate_access_error(ValueError("boom")) is None


@pytest.mark.parametrize("backend", sorted(FAKES))
@pytest.mark.parametrize("content, words", [
    ("{not json", "could not be read as JSON"),
    (json.dumps({"subscription_id": "s", "resource_group": "rg"}), "It holds: ['resource_group', 'subscription_id']"),
    (json.dumps(["s", "rg", "ws"]), "It holds: list"),
    (json.dumps({"subscription_id": "s", "resource_group": "", "workspace_name": "ws"}), "workspace_name"),
], ids=["not-json", "missing-key", "not-an-object", "empty-value"])
def test_a_malformed_config_json_is_refused_offline_even_on_dry_run(backend, content, words, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(content)
    for dry_run in (True, False):
        with FAKES[backend]() as azure, pytest.raises(ValidationError) as caught:
            submit_training(backend=backend, workspace_config=config, dry_run=dry_run, show_output=False)
        assert caught.value.argument == "workspace_config" and words in str(caught.value)
        assert "Download config.json again" in str(caught.value)
        assert azure.calls == []


def test_an_arm_scope_in_config_json_is_read_as_the_sdks_read_it(tmp_path):
    from kerasjob.workspace import read_config

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"Scope": "/subscriptions/s/resourceGroups/rg/providers/"
                                           "Microsoft.MachineLearningServices/workspaces/ws"}))
    assert tuple(read_config(config)) == ("s", "rg", "ws")
