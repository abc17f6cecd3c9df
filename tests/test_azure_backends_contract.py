"""What both Azure ML backends must do alike, run over both fakes (SDK v1 ``FakeAzureML``, SDK v2 ``FakeMLClient``).

Each backend's own extras (its SDK objects, translation round-trips) stay in
test_azureml_backend.py and test_azureml_v2_backend.py. An adapter per backend
says how to submit to its fake and how to read the fake's records.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from kerasjob import (BackendUnavailable, ComputeConfig, SubmissionError, TrainingFailed, TrainingJob, download_model,
                      submit_training)
from kerasjob.backends import get_backend
from kerasjob.backends.azureml import AzureMLBackend
from kerasjob.backends.azureml_v2 import AzureMLv2Backend
from kerasjob.errors import DataError
from kerasjob.testing import FakeAzureML, FakeMLClient
from kerasjob.testing.azureml_v1 import LostResponse


class Adapter:
    """How one backend's fake is driven and read; subclasses name its calls and records."""

    name: str
    fake: Any
    backend_class: Any
    client_argument: str  # submit_training's keyword for the SDK's client object (also the fake's attribute)
    module: str  # the SDK's top-level module
    calls: dict[str, str]

    @classmethod
    def client(cls, azure: Any) -> Any:
        return getattr(azure, cls.client_argument)

    @classmethod
    def submit(cls, azure: Any, **kwargs: Any) -> Any:
        return submit_training(backend=cls.name, show_output=False, **{cls.client_argument: cls.client(azure)},
                               **kwargs)


class V1(Adapter):
    name, fake, backend_class, client_argument, module = "azureml", FakeAzureML, AzureMLBackend, "workspace", \
        "azureml.core"
    calls = {"submit": "Experiment.submit", "create cluster": "ComputeTarget.create", "cancel": "Run.cancel",
             "register data": "FileDataset.register", "register model": "Run.register_model"}

    # the fake's records: submitted run ids, registered models, MNIST dataset versions, the cluster it created
    submitted_ids = staticmethod(lambda azure: [run.run_id for run in azure.runs])
    models = staticmethod(lambda azure: list(azure.registered_models))
    data_versions = staticmethod(lambda azure: [str(each.version) for each in azure.datasets["mnist-dataset"]])
    created_cluster = staticmethod(lambda azure: (
        azure.created_computes[0].name, azure.created_computes[0].configuration.vm_priority,
        azure.created_computes[0].configuration.scale_settings.idle_seconds_before_scaledown))


class V2(Adapter):
    name, fake, backend_class, client_argument, module = "azureml-v2", FakeMLClient, AzureMLv2Backend, "ml_client", \
        "azure.ai.ml"
    calls = {"submit": "Jobs.create_or_update", "create cluster": "Compute.create_or_update", "cancel": "Jobs.cancel",
             "register data": "Data.create_or_update", "register model": "Models.create_or_update"}

    submitted_ids = staticmethod(lambda azure: [job.name for job in azure.submissions])
    models = staticmethod(lambda azure: [model for versions in azure.models.values() for model in versions])
    data_versions = staticmethod(lambda azure: [str(each.version) for each in azure.data_assets["mnist-dataset"]])
    created_cluster = staticmethod(lambda azure: (
        azure.created_computes[0].name, azure.created_computes[0].tier.replace("_", ""),
        azure.created_computes[0].idle_time_before_scale_down))


BACKENDS = {"azureml": V1, "azureml-v2": V2}


@pytest.fixture(params=sorted(BACKENDS))
def sdk(request: pytest.FixtureRequest) -> Any:
    return BACKENDS[request.param]


def test_the_seed_run_registers_the_model_with_run_id_hyperparameter_and_metric_tags(sdk):
    with sdk.fake() as azure:
        result = sdk.submit(azure)
    (model,) = sdk.models(azure)
    assert (model.name, str(model.version)) == ("keras-mnist", "1")
    assert model.tags["run_id"] == result.run_id == sdk.submitted_ids(azure)[0]
    assert model.tags["hp.batch_size"] == "50" and model.tags["Final test accuracy"] == "0.97"
    assert model.tags["tensorflow_version"] == "2.21.0"
    assert result.status == "completed" and result.model_version == "1" and result.backend == sdk.name
    assert result.metrics["Accuracy"] == 0.97  # the last epoch's value
    assert result.url.startswith("https://ml.azure.com/")
    calls = azure.service_calls
    assert calls.index(sdk.calls["submit"]) < calls.index(sdk.calls["register model"])
    assert calls.count(sdk.calls["register model"]) == 1


def test_an_existing_cluster_is_reused_not_created(sdk):
    with sdk.fake(computes={"gpu-cluster"}) as azure:
        sdk.submit(azure)
    assert sdk.calls["create cluster"] not in azure.service_calls


def test_cluster_creation_that_fails_stops_before_submission(sdk):
    with sdk.fake(new_compute_state="Failed") as azure, pytest.raises(SubmissionError, match="gpu-cluster"):
        sdk.submit(azure)
    assert sdk.calls["submit"] not in azure.service_calls


def test_low_priority_and_scale_down_reach_the_new_cluster(sdk):
    with sdk.fake() as azure:
        sdk.submit(azure, compute=ComputeConfig("cpu-cluster", low_priority=True, idle_seconds_before_scaledown=600))
    assert sdk.created_cluster(azure) == ("cpu-cluster", "lowpriority", 600)


def test_mnist_is_registered_once_then_reused_and_again_when_its_sources_change(sdk, monkeypatch):
    with sdk.fake() as azure:
        sdk.submit(azure)
        sdk.submit(azure)
        assert azure.service_calls.count(sdk.calls["register data"]) == 1 and sdk.data_versions(azure) == ["1"]
        monkeypatch.setenv("KERASJOB_MNIST_MIRRORS", "https://mirror.blob.core.windows.net/datasets/mnist/")
        sdk.submit(azure)
    assert sdk.data_versions(azure) == ["1", "2"]


def test_an_unknown_registered_dataset_is_a_data_error_before_submission(sdk):
    with sdk.fake() as azure, pytest.raises(DataError, match="No (dataset|data asset) 'other'"):
        sdk.submit(azure, data="azureml:other")
    assert sdk.calls["submit"] not in azure.service_calls


def test_a_failed_run_raises_with_the_log_tail_and_registers_nothing(sdk):
    lines = ["Epoch 1/20", "Traceback (most recent call last):", "ValueError: boom"]
    with sdk.fake(final_status="Failed", log_lines=lines) as azure, pytest.raises(TrainingFailed) as caught:
        sdk.submit(azure)
    assert caught.value.status == "failed" and caught.value.run_id == sdk.submitted_ids(azure)[0]
    assert "ValueError: boom" in caught.value.log_tail
    assert sdk.models(azure) == [] and sdk.calls["register model"] not in azure.service_calls


def test_ctrl_c_while_waiting_cancels_the_run_and_reraises(sdk):
    with sdk.fake(statuses=["Running"] * 5) as azure:
        run = sdk.backend_class(sdk.client(azure)).submit(TrainingJob())

        def interrupt(line: str) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run.wait(on_line=interrupt)
        assert run.status().value == "canceled"
    assert sdk.calls["cancel"] in azure.service_calls
    assert sdk.models(azure) == []


def test_wait_false_returns_the_handle_and_registers_nothing(sdk):
    with sdk.fake() as azure:
        run = sdk.submit(azure, wait=False)
        assert run.id == sdk.submitted_ids(azure)[0] and run.backend == sdk.name
        assert not run.status().is_final
    assert sdk.models(azure) == []


def test_download_model_fetches_only_the_model_and_never_writes_outside(sdk, tmp_path):
    files = {"outputs/model/model.keras": b"weights", "outputs/training.png": b"png", "logs/x.txt": b"log"}
    with sdk.fake(run_files=files) as azure:
        result = sdk.submit(azure)
        folder = download_model(result, tmp_path / "model")
        assert sorted(p.name for p in folder.rglob("*")) == ["model.keras"]
        assert (folder / "model.keras").read_bytes() == b"weights"
        azure.run_files["outputs/model/../../../evil.txt"] = b"x"
        # v1 lists the run's files and refuses the escaping name; v2's jobs.download lands it outside the model
        # folder, which is all that is moved: either way nothing is written outside the destination.
        refusal = pytest.raises(DataError, match="outside") if sdk is V1 else contextlib.nullcontext()
        with refusal:
            download_model(result, tmp_path / "model2")
    assert not (tmp_path / "evil.txt").exists() and not list(tmp_path.glob("model2/**/evil.txt"))


def test_a_lost_submit_response_makes_exactly_one_run(sdk):
    with sdk.fake(failures={sdk.calls["submit"]: [LostResponse(ConnectionResetError("reset"))]}) as azure:
        result = sdk.submit(azure)
    assert sdk.submitted_ids(azure) == [result.run_id] and result.status == "completed"


def test_a_lost_model_registration_response_makes_exactly_one_version(sdk):
    with sdk.fake(failures={sdk.calls["register model"]: [LostResponse(ConnectionResetError("reset"))]}) as azure:
        result = sdk.submit(azure)
    assert [str(model.version) for model in sdk.models(azure)] == ["1"] and result.model_version == "1"


def test_the_dry_run_plan_names_the_environment_and_data_and_contacts_nothing(sdk, workspace_config):
    with sdk.fake() as azure:
        plan = submit_training(backend=sdk.name, workspace_config=workspace_config, dry_run=True)
    assert plan.backend == sdk.name
    assert plan.environment_name == get_backend(sdk.name).environment_name(TrainingJob())
    assert "MNIST" in plan.data and "'mnist-dataset'" in plan.data
    assert azure.calls == []


def test_a_missing_sdk_names_the_install_line(sdk, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith(sdk.module) else real(name, *a))
    with pytest.raises(BackendUnavailable, match=rf"kerasjob\[{sdk.name}\]"):
        submit_training(backend=sdk.name, show_output=False)
