"""kerasjob.fit on Azure ML, through the fakes below the SDKs: the model travels in the code snapshot, the data as a
content-addressed data asset (v2) registered once and reused, never in the snapshot; the model is registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kerasjob
from conftest import run_in_own_process
from kerasjob.dataset import CONTENT_TAG
from kerasjob.testing import FakeMLClient


def tiny_model():  # type: ignore[no-untyped-def]
    inputs = keras.Input((4,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs), name="azure-net")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tiny_data(rows: int = 32) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).random((rows, 4), dtype=np.float32)
    return x, (x[:, 0] * 3).astype("int64").clip(0, 2)


def test_v2_submits_the_model_file_and_a_data_asset_registered_once_and_registers_the_model():
    x, y = tiny_data()
    model = tiny_model()
    with FakeMLClient() as azure:
        result = kerasjob.fit(model, x, y, epochs=2, batch_size=8, validation_data=tiny_data(8),
                              backend="azureml-v2", ml_client=azure.ml_client, show_output=False)
        again = kerasjob.fit(model, x, y, epochs=2, batch_size=8, validation_data=tiny_data(8),
                             backend="azureml-v2", ml_client=azure.ml_client, show_output=False)
    assets = azure.data_assets["azure-net-data"]
    assert [asset.version for asset in assets] == ["1"]  # unchanged content: the same version reused
    assert assets[0].type == "uri_folder" and CONTENT_TAG in assets[0].tags
    assert azure.service_calls.count("Data.create_or_update") == 1
    data_upload = [path for path in azure.uploads if path.name == assets[0].tags[CONTENT_TAG]]
    assert data_upload and (data_upload[0] / "train" / "data.npz").is_file()
    job = azure.submissions[0]
    assert job.inputs["data_folder"].path.endswith("data/azure-net-data/versions/1")
    assert "python fit_job.py --data-folder ${{inputs.data_folder}} --model model.keras" in job.command
    assert job.experiment_name == "azure-net"
    code = [path for path in azure.uploads if (path / "keras_fit.py").is_file()]
    assert code and (code[0] / "model.keras").is_file()
    assert not list(code[0].rglob("*.npz"))  # the snapshot holds no data
    assert result.model_name == again.model_name == "azure-net"
    assert [m.version for m in azure.models["azure-net"]] == ["1", "2"]
    assert azure.models["azure-net"][0].type == "mlflow_model"


def test_v1_uploads_the_data_once_as_a_file_dataset_and_registers_the_model(request):
    if run_in_own_process(request):
        return
    from kerasjob.testing import FakeAzureML

    x, y = tiny_data()
    model = tiny_model()
    with FakeAzureML(final_status="Completed", metrics={"val_accuracy": 0.9}) as azure:
        for _ in range(2):
            result = kerasjob.fit(model, x, y, epochs=1, validation_data=tiny_data(8), workspace=azure.workspace,
                                  backend="azureml", show_output=False)
    versions = azure.datasets["azure-net-data"]
    assert len(versions) == 1 and versions[0].tags[CONTENT_TAG]  # unchanged content: uploaded and registered once
    assert len(azure.uploads) == 1 and (azure.uploads[0] / "train" / "data.npz").is_file()
    config = azure.submissions[0]
    assert config.script == "fit_job.py" and config.arguments[2:4] == ["--model", "model.keras"]
    assert (Path(config.source_directory) / "model.keras").is_file()
    assert not list(Path(config.source_directory).rglob("*.npz"))  # the snapshot holds no data
    assert result.model_name == "azure-net" and [m.name for m in azure.registered_models] == ["azure-net"] * 2
