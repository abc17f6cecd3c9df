"""Azure ML endpoints serve any model through its MLflow signature (issue 19 item 5: "endpoints invoke sends any
model's inputs"), on the v2 fake and through a v1 workspace.

``AzureEndpoint.invoke`` reads the served model's ``MLmodel`` (its registered files) and builds the request with the
same two functions the local endpoint uses (``prediction.load_inputs`` and ``prediction.request_body``), in the form
Azure's no-code MLflow scoring script reads: ``{"input_data": ...}`` holding rows (an array), a pandas split with
``columns``, ``index`` and ``data`` (a DataFrame), or named tensors. The fake parses the body as that script does
(``parse_model_input_from_input_data_traditional``) and enforces the signature as MLflow does, so a request the real
server would refuse is refused here too (answered 400).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from kerasjob import ValidationError, deploy_model
from kerasjob.endpoints import get_endpoint
from kerasjob.testing import FakeAzureML, FakeMLClient

COLUMNS = ["age", "income", "score"]


def mlmodel(inputs: list[dict], classes: int) -> bytes:
    """An MLmodel as kerasjob's trainer writes it (keras + python_function flavors), with this signature."""
    outputs = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, classes]}}]
    return yaml.safe_dump({"flavors": {"python_function": {"loader_module": "mlflow.keras"}},
                           "saved_input_example_info": {"artifact_path": "input_example.json", "type": "dataframe"},
                           "signature": {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs)}}).encode()


TABULAR = mlmodel([{"type": "double", "name": name, "required": True} for name in COLUMNS], classes=2)
MULTI_INPUT = mlmodel([{"type": "tensor", "name": "image", "tensor-spec": {"dtype": "float32", "shape": [-1, 4, 4]}},
                       {"type": "tensor", "name": "meta", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}],
                      classes=3)


def serve(azure: FakeMLClient, model_files: dict[str, bytes], **options):
    """Register the fake jobs' model (``run_files``) as tabular:1 and deploy it to endpoint ``any``."""
    from azure.ai.ml.entities import Model

    azure.run_files.update(model_files)
    azure.ml_client.models.create_or_update(Model(
        name="tabular", version="1", type="mlflow_model", path="azureml://jobs/job-1/outputs/artifacts/paths/"
                                                               "outputs/model/"))
    options = options or {"backend": "azureml-v2", "ml_client": azure.ml_client}
    return deploy_model("tabular:1", endpoint="any", **options)


def sdk_invoke(azure: FakeMLClient, tmp_path, payload) -> str:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(payload))
    return azure.ml_client.online_endpoints.invoke(endpoint_name="any", request_file=str(request))


@pytest.fixture
def azure():
    with FakeMLClient() as fake:
        yield fake


def tabular_files() -> dict[str, bytes]:
    example = {"columns": COLUMNS, "data": [[41.0, 52.5, 0.7]]}  # MLflow's input_example.json of a DataFrame
    return {"outputs/model/MLmodel": TABULAR, "outputs/model/input_example.json": json.dumps(example).encode()}


def test_a_tabular_model_is_tried_and_invoked_with_named_columns_as_a_pandas_split(azure, tmp_path):
    endpoint = serve(azure, tabular_files())
    tried = azure.scoring_requests[-1]  # the rollout's check: the input example in the server's own form
    assert tried["payload"] == {"input_data": {"columns": COLUMNS, "index": [0], "data": [[41.0, 52.5, 0.7]]}}

    prediction = endpoint.invoke({"income": [10.0, 0.2], "age": [30.0, 0.9], "score": [0.9, 0.1]})
    sent = azure.scoring_requests[-1]["payload"]["input_data"]
    assert sent == {"columns": COLUMNS, "index": [0, 1], "data": [[30.0, 10.0, 0.9], [0.9, 0.2, 0.1]]}
    assert len(prediction.outputs) == 2 and len(prediction.outputs[0]) == 2  # two classes, one row per example

    csv = tmp_path / "people.csv"
    pd.DataFrame({"score": [0.6], "age": [22.0], "income": [3.5], "ignored": ["x"]}).to_csv(csv, index=False)
    found = get_endpoint("any", backend="azureml-v2", ml_client=azure.ml_client)  # as `endpoints invoke` finds it
    assert len(found.invoke(str(csv)).outputs) == 1
    assert azure.scoring_requests[-1]["payload"]["input_data"]["data"] == [[22.0, 3.5, 0.6]]


def test_inputs_the_signature_does_not_take_are_refused_before_any_request(azure):
    endpoint = serve(azure, tabular_files())
    sent = len(azure.scoring_requests)
    with pytest.raises(ValidationError, match="Missing: score"):
        endpoint.invoke({"age": [30.0], "income": [10.0]})
    with pytest.raises(ValidationError, match="images only go to image models"):
        endpoint.invoke([__file__, __file__])  # files that are no data file: images, which a tabular model refuses
    assert len(azure.scoring_requests) == sent


def test_the_fake_refuses_what_the_mlflow_server_refuses_for_a_tabular_model(azure, tmp_path):
    from azure.core.exceptions import HttpResponseError

    serve(azure, tabular_files())
    with pytest.raises(HttpResponseError, match=r"Model is missing inputs \['age', 'income', 'score'\]"):
        sdk_invoke(azure, tmp_path, {"input_data": [[41.0, 52.5, 0.7]]})  # rows: an array with columns 0, 1, 2
    with pytest.raises(HttpResponseError, match="Incompatible input types for column age"):
        sdk_invoke(azure, tmp_path, {"input_data": {"columns": COLUMNS, "index": [0], "data": [["old", 1.0, 2.0]]}})
    with pytest.raises(HttpResponseError, match="input_data"):
        sdk_invoke(azure, tmp_path, {"dataframe_split": {"columns": COLUMNS, "data": [[41.0, 52.5, 0.7]]}})
    split = {"input_data": {"columns": COLUMNS, "index": [0], "data": [[41.0, 52.5, 0.7]]}}
    assert len(json.loads(sdk_invoke(azure, tmp_path, split))) == 1


def test_a_multi_input_model_is_invoked_with_named_tensors(azure, tmp_path):
    from azure.core.exceptions import HttpResponseError

    example = {"image": np.zeros((1, 4, 4)).tolist(), "meta": [[0.0, 1.0]]}  # MLflow's example of a dict of arrays
    endpoint = serve(azure, {"outputs/model/MLmodel": MULTI_INPUT,
                             "outputs/model/input_example.json": json.dumps(example).encode()})
    assert azure.scoring_requests[-1]["payload"] == {"input_data": example}

    images = np.ones((3, 4, 4), dtype=np.float32)
    prediction = endpoint.invoke({"image": images, "meta": np.zeros((3, 2))})
    sent = azure.scoring_requests[-1]["payload"]["input_data"]
    assert sorted(sent) == ["image", "meta"] and np.asarray(sent["image"]).shape == (3, 4, 4)
    assert len(prediction.digits) == 3 and len(prediction.probabilities[0]) == 3
    npz = tmp_path / "inputs.npz"
    np.savez(npz, **{"x.image": images[:2], "x.meta": np.zeros((2, 2))})  # the trainer's data file form
    assert len(endpoint.invoke(str(npz)).digits) == 2

    with pytest.raises(ValidationError, match="Missing: meta"):
        endpoint.invoke({"image": images})
    with pytest.raises(ValidationError, match=r"shape \(n, 4, 4\)"):
        endpoint.invoke({"image": np.ones((3, 16)), "meta": np.zeros((3, 2))})
    with pytest.raises(HttpResponseError, match=r"Model is missing inputs \['meta'\]"):
        sdk_invoke(azure, tmp_path, {"input_data": {"image": example["image"]}})
    with pytest.raises(HttpResponseError, match=r"Shape of input \(1, 16\) does not match expected shape"):
        sdk_invoke(azure, tmp_path, {"input_data": {"image": [[0.0] * 16], "meta": [[0.0, 1.0]]}})


def test_a_model_whose_files_cannot_be_read_is_invoked_as_an_image_model_with_a_warning(caplog):
    with FakeMLClient() as azure:
        endpoint = serve(azure, {})  # the default MNIST model
        azure.failures["Storage.download"] = [OSError("This request is not authorized (storage firewall)")]
        fresh = get_endpoint("any", backend="azureml-v2", ml_client=azure.ml_client)
        assert len(fresh.invoke(np.zeros((2, 28, 28), dtype=np.uint8)).digits) == 2
    assert "its signature" in caplog.text and "storage firewall" in caplog.text


def test_the_v1_backend_invokes_a_tabular_model_through_azure_ai_ml(workspace_config):
    with FakeAzureML() as v1, FakeMLClient() as azure:
        endpoint = serve(azure, tabular_files(), backend="azureml", workspace_config=workspace_config)
        prediction = endpoint.invoke(pd.DataFrame({"age": [1.0], "income": [2.0], "score": [3.0]}))
    assert endpoint.backend == "azureml" and len(prediction.outputs) == 1
    assert azure.scoring_requests[-1]["payload"]["input_data"]["columns"] == COLUMNS and v1.calls == []
