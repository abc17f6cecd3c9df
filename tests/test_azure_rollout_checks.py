"""kerasjob's endpoints against the v2 fake (issue 21, defects 3 and 4).

- azure-ai-ml's ``invoke`` writes ``azureml-model-deployment`` into the class-level
  ``EndpointInvokeFields.DEFAULT_HEADER``: kerasjob's invoke must follow the traffic anyway, and each fake starts
  and ends with that dict clean, so tests don't depend on their order.
- A rollout invokes the new deployment by name with the registered model's input example before any traffic
  moves; a deployment that answers badly is deleted and the old one keeps serving.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kerasjob import deploy_model
from kerasjob.errors import DeploymentFailed
from kerasjob.testing import FakeMLClient


def register(azure: FakeMLClient, version: str) -> None:
    from azure.ai.ml.entities import Model

    azure.ml_client.models.create_or_update(Model(
        name="keras-mnist", version=version, type="mlflow_model",
        path=f"azureml://jobs/job-{version}/outputs/artifacts/paths/outputs/model/"))


@pytest.fixture
def azure():
    with FakeMLClient() as fake:
        register(fake, "1")
        register(fake, "2")
        fake.calls.clear()
        yield fake


def deploy(azure: FakeMLClient, model: str = "keras-mnist:1"):
    return deploy_model(model, endpoint="mnist", backend="azureml-v2", ml_client=azure.ml_client)


def sdk_invoke(azure: FakeMLClient, tmp_path, payload, **options) -> str:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(payload))
    return azure.ml_client.online_endpoints.invoke(endpoint_name="mnist", request_file=str(request), **options)


# --- defect 3: the class-level invoke headers ------------------------------------------------------------------


def test_an_sdk_invoke_by_deployment_name_does_not_pin_kerasjobs_invoke_to_that_deployment(azure, tmp_path):
    from azure.ai.ml.entities import ManagedOnlineDeployment

    endpoint = deploy(azure)
    azure.ml_client.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
        name="green", endpoint_name="mnist", model="azureml:keras-mnist:2", instance_type="Standard_DS3_v2",
        instance_count=1)).result()
    assert json.loads(sdk_invoke(azure, tmp_path, {"input_data": [[0.0] * 784]}, deployment_name="green"))
    assert azure.scoring_requests[-1]["deployment"] == "green"  # served by name at 0 % traffic

    endpoint.invoke(np.zeros((1, 28, 28), dtype=np.uint8))
    assert azure.scoring_requests[-1]["deployment"] == endpoint.deployment  # the traffic decides, not the header
    from azure.ai.ml.constants._endpoint import EndpointInvokeFields

    assert "azureml-model-deployment" not in EndpointInvokeFields.DEFAULT_HEADER


def test_each_fake_starts_and_ends_with_the_sdks_invoke_headers_clean():
    from azure.ai.ml.constants._endpoint import EndpointInvokeFields

    EndpointInvokeFields.DEFAULT_HEADER["azureml-model-deployment"] = "left-by-an-earlier-test"
    with FakeMLClient():
        assert EndpointInvokeFields.DEFAULT_HEADER == {"Content-Type": "application/json"}
        EndpointInvokeFields.DEFAULT_HEADER["azureml-model-deployment"] = "left-by-this-test"
    assert EndpointInvokeFields.DEFAULT_HEADER == {"Content-Type": "application/json"}


# --- defect 4: the new deployment is tried before the traffic moves --------------------------------------------


def test_the_new_deployment_answers_the_models_input_example_by_name_before_the_traffic_moves(azure):
    old = deploy(azure).deployment
    azure.calls.clear()
    new = deploy(azure, "keras-mnist:2").deployment

    log = [(name, detail) for name, detail in azure.calls if name.startswith(("Online", "Operations", "Scoring"))]
    provisioned = log.index(("Operations.poll", f"deployments/{new}: Succeeded"))
    tried = log.index(("Scoring.invoke", f"mnist/{new}"))
    moved = log.index(("OnlineEndpoints.create_or_update", {"name": "mnist", "traffic": {new: 100}}))
    deleted = log.index(("OnlineDeployments.delete", f"mnist/{old}"))
    assert provisioned < tried < moved < deleted
    tried_with = azure.scoring_requests[-1]
    example = json.loads(azure.run_files["outputs/model/input_example.json"])
    assert tried_with["deployment"] == new and tried_with["payload"] == {"input_data": example}
    assert ("Storage.download", "outputs/model/") in azure.calls  # the registered model's own files


@pytest.mark.parametrize("answer", [
    lambda rows: [],                                  # no prediction for the row sent
    lambda rows: [[float("nan")] * 10 for _ in rows],  # not finite numbers
    lambda rows: {"error": "model not loaded"},        # not predictions at all
])
def test_a_new_deployment_that_answers_badly_is_deleted_and_the_old_one_keeps_serving(azure, answer):
    old = deploy(azure).deployment
    azure.scorer = answer
    azure.calls.clear()
    with pytest.raises(DeploymentFailed) as caught:
        deploy(azure, "keras-mnist:2")

    failed = caught.value
    assert "answered the model's input example with" in str(failed) and f"'{old}' keeps serving" in str(failed)
    assert azure.online_endpoints["mnist"].traffic == {old: 100}
    assert [each.name for each in azure.online_deployments["mnist"]] == [old]
    assert "OnlineEndpoints.create_or_update" not in azure.service_calls  # the traffic was never touched
    assert ("OnlineDeployments.delete", f"mnist/{failed.deployment}") in azure.calls


def test_a_new_deployment_whose_server_refuses_the_example_is_deleted_with_the_servers_words(azure):
    def refuse(rows):
        raise ValueError("Shape of input (784,) does not match expected shape (-1, 28, 28).")

    old = deploy(azure).deployment
    azure.scorer = refuse
    with pytest.raises(DeploymentFailed, match="does not match expected shape"):
        deploy(azure, "keras-mnist:2")
    assert azure.online_endpoints["mnist"].traffic == {old: 100}


def test_a_model_whose_files_cannot_be_read_here_is_deployed_untried_with_a_warning(caplog):
    with FakeMLClient(failures={"Storage.download": [OSError("This request is not authorized (storage firewall)")]}) \
            as azure:
        register(azure, "1")
        endpoint = deploy(azure)
    assert azure.online_endpoints["mnist"].traffic == {endpoint.deployment: 100}
    assert "Scoring.invoke" not in azure.service_calls
    assert "storage firewall" in caplog.text and "not tried" in caplog.text
