"""Azure ML managed online endpoints through the v2 fake: azure-ai-ml's own online endpoint and deployment operations
run over a fake ARM (``FakeMLClient``), so what the SDK sends, its long-running-operation polling and its scoring
call are real. The fake's deployments score with a stand-in (``count_bright_pixels``: the digit is how many pixels
are above 0.5), so these tests check the requests and the handling of answers, not a model's accuracy."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
import yaml

from kerasjob import ValidationError, deploy_model
from kerasjob.azure_endpoints import deployment_name
from kerasjob.endpoints import ENDPOINT_NAME, get_endpoint, list_endpoints
from kerasjob.errors import (AccessDenied, BackendUnavailable, DeploymentFailed, DeploymentInterrupted,
                             NotAuthenticated, WorkspaceNotFound)
from kerasjob.testing import FakeAzureML, FakeMLClient

from mnist_files import write_idx


def register(azure: FakeMLClient, version: str, model_type: str = "mlflow_model") -> None:
    """A model version in the fake workspace, registered through azure-ai-ml as kerasjob's runs register it."""
    from azure.ai.ml.entities import Model

    azure.ml_client.models.create_or_update(Model(
        name="keras-mnist", version=version, type=model_type,
        path=f"azureml://jobs/job-{version}/outputs/artifacts/paths/outputs/model/"))


@pytest.fixture
def azure():
    with FakeMLClient() as fake:
        register(fake, "1")
        register(fake, "2")
        fake.calls.clear()
        yield fake


def deploy(azure: FakeMLClient, model: object = "keras-mnist:1", **options):
    return deploy_model(model, endpoint="mnist", backend="azureml-v2", ml_client=azure.ml_client, **options)


def images_with_bright_pixels(*counts: int) -> np.ndarray:
    """One image per count, with that many pixels at 255 (the fake's stand-in scorer answers count % 10)."""
    images = np.zeros((len(counts), 28, 28), dtype=np.uint8)
    for index, count in enumerate(counts):
        images[index].flat[:count] = 255
    return images


def round_trip(entity, path, load):
    """``entity`` dumped to YAML and read back with azure-ai-ml's own loader."""
    from azure.ai.ml.entities import OnlineEndpoint

    if isinstance(entity, OnlineEndpoint):  # its dump() returns the YAML's dict; a deployment's writes the file
        path.write_text(yaml.safe_dump(json.loads(json.dumps(entity.dump()))))
    else:
        entity.dump(path)
    return load(path)


def test_the_endpoint_deployment_and_traffic_sent_read_back_as_a_no_code_mlflow_deployment(azure, tmp_path):
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    endpoint = deploy(azure, instance_type="Standard_F4s_v2", instance_count=2)

    created, traffic = azure.sent_endpoints
    created = round_trip(created, tmp_path / "endpoint.yml", load_online_endpoint)
    assert created.name == "mnist" and created.auth_mode == "key" and not created.traffic
    sent = round_trip(azure.sent_deployments[0], tmp_path / "deployment.yml", load_online_deployment)
    assert sent.endpoint_name == "mnist" and sent.name == endpoint.deployment
    assert sent.instance_type == "Standard_F4s_v2" and sent.instance_count == 2
    assert sent.model.endswith("/models/keras-mnist/versions/1")
    assert sent.environment is None and sent.code_configuration is None  # no-code: Azure builds the server
    moved = round_trip(traffic, tmp_path / "traffic.yml", load_online_endpoint)
    assert moved.traffic == {endpoint.deployment: 100} and moved.auth_mode == "key"

    assert endpoint.url == "https://mnist.westeurope.inference.ml.azure.com/score"
    assert endpoint.model == "azureml:keras-mnist:1" and endpoint.state == "Succeeded"
    assert endpoint.describe()["running"] is True


def test_the_defaults_are_one_standard_ds3_v2():
    with FakeMLClient() as azure:
        register(azure, "1")
        deploy(azure)
    deployment = azure.sent_deployments[0]
    assert (deployment.instance_type, deployment.instance_count) == ("Standard_DS3_v2", 1)


def test_a_redeploy_is_a_safe_rollout_new_deployment_then_traffic_then_old_deleted(azure):
    old = deploy(azure).deployment
    azure.calls.clear()
    new = deploy(azure, "keras-mnist:2")

    log = [(name, detail) for name, detail in azure.calls if name.startswith(("Online", "Operations"))]
    created = log.index(("OnlineDeployments.create_or_update", f"mnist/{new.deployment}"))
    provisioned = log.index(("Operations.poll", f"deployments/{new.deployment}: Succeeded"))
    moved = log.index(("OnlineEndpoints.create_or_update", {"name": "mnist", "traffic": {new.deployment: 100}}))
    deleted = log.index(("OnlineDeployments.delete", f"mnist/{old}"))
    assert created < provisioned < moved < deleted
    assert ("OnlineEndpoints.create_or_update", {"name": "mnist", "traffic": {}}) not in log  # the endpoint existed
    assert new.deployment != old and re.match(r"^v2-[0-9a-f]{6}$", new.deployment)
    assert azure.online_endpoints["mnist"].traffic == {new.deployment: 100}
    assert [each.name for each in azure.online_deployments["mnist"]] == [new.deployment]
    assert new.model == "azureml:keras-mnist:2"


def test_a_failed_new_deployment_is_deleted_and_the_old_one_keeps_all_the_traffic(azure):
    old = deploy(azure).deployment
    azure.failing_deployments = 1
    azure.calls.clear()
    with pytest.raises(DeploymentFailed) as caught:
        deploy(azure, "keras-mnist:2")

    failed = caught.value
    assert failed.endpoint == "mnist" and failed.deployment.startswith("v2-")
    assert "ModuleNotFoundError" in failed.log_tail and "User container has crashed" in str(failed)
    assert f"'{old}' keeps serving" in str(failed)
    assert azure.online_endpoints["mnist"].traffic == {old: 100}
    assert [each.name for each in azure.online_deployments["mnist"]] == [old]
    assert "OnlineEndpoints.create_or_update" not in azure.service_calls  # the traffic was never touched
    assert ("OnlineDeployments.get_logs", f"mnist/{failed.deployment}") in azure.calls


def test_a_failed_first_deployment_leaves_an_empty_endpoint_and_says_how_to_delete_it():
    with FakeMLClient(failing_deployments=1) as azure, pytest.raises(DeploymentFailed) as caught:
        register(azure, "1")
        deploy(azure)
    assert "no deployment serves the endpoint yet" in str(caught.value)
    assert azure.online_deployments == {"mnist": []}


def test_invoke_posts_mlflow_input_data_with_the_endpoint_key_and_returns_a_prediction(azure, tmp_path):
    endpoint = deploy(azure)

    prediction = endpoint.invoke(images_with_bright_pixels(7, 3, 12))
    assert prediction.digits == [7, 3, 2]
    assert prediction.probabilities[0][7] == pytest.approx(0.91)
    sent = azure.scoring_requests[-1]
    assert sent["authorization"] == "Bearer fake-key-mnist" and sent["deployment"] == endpoint.deployment
    rows = sent["payload"]["input_data"]
    assert list(sent["payload"]) == ["input_data"] and len(rows) == 3 and len(rows[0]) == 784
    assert max(rows[0]) == 1.0 and min(rows[0]) == 0.0  # pixels as predict() feeds the model: float 0-1

    # the same endpoint found by name, as the CLI finds it, takes an IDX file too
    idx = write_idx(tmp_path / "images-idx3-ubyte", images_with_bright_pixels(4))
    found = get_endpoint("mnist", backend="azureml-v2", ml_client=azure.ml_client)
    assert found.invoke(str(idx)).digits == [4]
    assert found.logs() and "ready for serving traffic" in found.logs(lines=1)


def test_delete_removes_the_endpoint_with_its_deployments(azure):
    deploy(azure).delete()
    assert azure.online_endpoints == {} and azure.online_deployments == {}
    assert list_endpoints(backend="azureml-v2", ml_client=azure.ml_client) == []
    with pytest.raises(ValidationError, match=r"deployed endpoints \(none\)"):
        get_endpoint("mnist", backend="azureml-v2", ml_client=azure.ml_client)


def test_list_names_each_endpoint_with_the_model_it_serves(azure):
    deploy(azure, "keras-mnist:2")
    [listed] = list_endpoints(backend="azureml-v2", ml_client=azure.ml_client)
    assert listed.describe()["model"] == "azureml:keras-mnist:2" and listed.backend == "azureml-v2"


def test_ctrl_c_while_provisioning_says_what_exists_and_how_to_remove_it(azure):
    old = deploy(azure).deployment
    azure.interrupt_after = 1  # the next poll of a long-running operation: the new deployment's provisioning
    with pytest.raises(DeploymentInterrupted) as caught:
        deploy(azure, "keras-mnist:2")

    message = str(caught.value)
    new = re.search(r"deployment '(v2-[0-9a-f]{6})' is still provisioning", message).group(1)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert f"'{old}' keeps serving" in message
    assert f"az ml online-deployment delete --endpoint-name mnist --name {new} --yes" in message
    assert "kerasjob endpoints delete mnist --backend azureml-v2" in message
    assert azure.online_endpoints["mnist"].traffic == {old: 100}


def test_models_azure_cannot_serve_are_refused_before_anything_is_created(azure, tmp_path):
    register(azure, "3", model_type="custom_model")
    cases = [(tmp_path, "A local folder is not uploaded"), ("keras-mnist:9", "registered in Azure ML workspace"),
             ("keras-mnist:3", "mlflow_model"), ("keras-mnist", "NAME:VERSION")]
    for model, words in cases:
        with pytest.raises(ValidationError, match=words) as caught:
            deploy(azure, model)
        assert caught.value.argument == "model"
    assert not [name for name in azure.service_calls if name.startswith("Online")]


@pytest.mark.parametrize("argument, value", [("instance_type", "DS3_v2"), ("instance_type", "Standard DS3"),
                                             ("instance_count", 0), ("instance_count", 1.5), ("instance_count", True),
                                             ("timeout", 0), ("timeout", "600")])
def test_bad_instance_arguments_are_refused_before_any_call(azure, argument, value):
    with pytest.raises(ValidationError) as caught:
        deploy(azure, **{argument: value})
    assert caught.value.argument == argument and azure.calls == []


@pytest.mark.parametrize("access, error", [("forbidden", AccessDenied), ("not-logged-in", NotAuthenticated),
                                           ("no-workspace", WorkspaceNotFound)])
def test_azure_refusing_the_login_workspace_or_role_is_an_access_error(access, error):
    with FakeMLClient(access=access) as azure, pytest.raises(error):
        deploy(azure)
    assert "OnlineEndpoints.create_or_update" not in azure.service_calls


def test_the_v1_backend_deploys_through_azure_ai_ml_in_the_same_workspace(workspace_config):
    with FakeAzureML() as v1, FakeMLClient() as azure:
        register(azure, "1")
        endpoint = deploy_model("keras-mnist:1", endpoint="mnist", backend="azureml",
                                workspace_config=workspace_config)
    assert endpoint.backend == "azureml" and azure.online_endpoints["mnist"].traffic == {endpoint.deployment: 100}
    put = next(detail for name, detail in azure.calls if name == "OnlineDeployments.create_or_update")
    assert put == f"mnist/{endpoint.deployment}"
    assert any("/resourceGroups/rg/" in str(detail) and "/workspaces/ws" in str(detail)
               for name, detail in azure.calls if name == "Workspaces.get")  # config.json's workspace
    assert v1.calls == []


def test_the_v1_backend_without_azure_ai_ml_names_the_install_line_and_why(monkeypatch, workspace_config):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("azure.ai.ml") else real(name, *a))
    with pytest.raises(BackendUnavailable, match=r'pip install "kerasjob\[azureml-v2\]"') as caught:
        deploy_model("keras-mnist:1", endpoint="mnist", backend="azureml", workspace_config=workspace_config)
    assert "deprecated" in str(caught.value) and "azure-ai-ml" in str(caught.value)


NAMES = ["mnist", "m-1", "MNIST-Prod", "a" * 32, "ab", "a" * 33, "1mnist", "-mnist", "mnist-", "mnist_1", "mn ist",
         "mnist.1", "", "Ünist"]


@pytest.mark.parametrize("name", NAMES)
def test_the_endpoint_name_rule_is_azure_ml_s_own(name):
    """The rule azure-ai-ml checks before any call (``validate_endpoint_or_deployment_name`` in
    azure/ai/ml/entities/_endpoint/_endpoint_helpers.py: 3-32 characters, a letter first, letters, digits or '-',
    a letter or digit last) is ENDPOINT_NAME, for endpoints and deployments alike."""
    from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name
    from azure.ai.ml.exceptions import ValidationException

    for is_deployment in (False, True):
        try:
            validate_endpoint_or_deployment_name(name, is_deployment=is_deployment)
            azure_accepts = True
        except ValidationException:
            azure_accepts = False
        assert bool(ENDPOINT_NAME.match(name)) == azure_accepts


def test_new_deployment_names_follow_the_rule_in_lowercase():
    names = {deployment_name(version) for version in ("1", "12", "9" * 24)}
    assert len(names) == 3 and all(ENDPOINT_NAME.match(name) and name == name.lower() for name in names)


def test_deploy_invoke_logs_and_delete_from_the_cli(azure, workspace_config, tmp_path, capsys):
    from kerasjob.cli import main

    where = ["--backend", "azureml-v2", "--workspace-config", str(workspace_config)]
    assert main(["deploy", "keras-mnist:2", "--endpoint", "mnist", "--instance-count", "2", "--json", *where]) == 0
    deployed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert deployed["model"] == "azureml:keras-mnist:2" and deployed["running"]
    assert azure.sent_deployments[0].instance_count == 2

    idx = write_idx(tmp_path / "images-idx3-ubyte", images_with_bright_pixels(5, 8))
    assert main(["endpoints", "invoke", "mnist", str(idx), "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["digits"] == [5, 8]
    assert main(["endpoints", "logs", "mnist", *where]) == 0 and "ready for serving" in capsys.readouterr().out
    assert main(["endpoints", "delete", "mnist", *where]) == 0
    assert azure.online_endpoints == {}
