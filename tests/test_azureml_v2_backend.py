"""The Azure ML v2 backend's own extras (azure-ai-ml) against the fake MLClient operation groups; entities built
for real. What v1 and v2 share is tested over both fakes in tests/test_azure_backends_contract.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.ai.ml import load_job
from azure.ai.ml.entities import AmlCompute, CommandJob, Environment, Model

from kerasjob import MpiDistribution, TensorflowDistribution, TrainingJob, submit_training
from kerasjob.backends.azureml_v2 import AzureMLv2Backend, build_command_job
from kerasjob.environment import environment_version, read_conda_file
from kerasjob.errors import AccessDenied, DataError
from kerasjob.workspace import load_ml_client
from kerasjob.testing import FakeMLClient
from kerasjob.testing.azureml_v2 import FakeCredential


SEED_INPUTS = {"batch_size": 50, "first_layer_neurons": 300, "second_layer_neurons": 100, "learning_rate": 0.001,
               "epochs": 20}


def submit(azure, **kwargs):
    return submit_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False, **kwargs)


def _round_trip(job: TrainingJob, tmp_path: Path) -> CommandJob:
    """Dump the translated CommandJob to YAML and read it back with azure-ai-ml's own loader."""
    command_job = build_command_job(job, environment="kerasjob-keras-env:abc")._to_job()
    path = tmp_path / "job.yml"
    command_job.dump(path)
    loaded = load_job(path)  # azure-ai-ml reads a command job back as its Command builder
    return loaded._to_job() if hasattr(loaded, "_to_job") else loaded


def test_the_translated_job_dumps_to_yaml_that_load_job_reads_back_as_the_seed_job(tmp_path):
    loaded = _round_trip(TrainingJob(), tmp_path)
    assert isinstance(loaded, CommandJob)
    assert loaded.command == (
        "python keras_mnist.py --data-folder ${{inputs.data_folder}} --batch-size ${{inputs.batch_size}} "
        "--first-layer-neurons ${{inputs.first_layer_neurons}} --second-layer-neurons "
        "${{inputs.second_layer_neurons}} --learning-rate ${{inputs.learning_rate}} --epochs ${{inputs.epochs}} "
        "--checkpoint-dir ${{outputs.checkpoints}} --compile-cache ${{outputs.compile_cache}}")
    checkpoints = loaded.outputs["checkpoints"]  # on the datastore: a restart after preemption resumes from it
    assert (checkpoints.type, checkpoints.mode) == ("uri_folder", "rw_mount")
    cache = loaded.outputs["compile_cache"]  # one datastore folder for every job: the next one reads its programs
    assert (cache.type, cache.mode, cache.path) == ("uri_folder", "rw_mount",
                                                    "azureml://datastores/workspaceblobstore/paths/kerasjob/compile-cache/")
    off = _round_trip(TrainingJob(compile_cache=False), tmp_path)
    assert off.command.endswith("--compile-cache none") and "compile_cache" not in off.outputs
    assert {name: loaded.inputs[name] for name in SEED_INPUTS} == SEED_INPUTS
    data = loaded.inputs["data_folder"]
    assert (data.type, data.path, data.mode) == ("uri_folder", "mnist-dataset@latest", "download")
    assert loaded.environment == "kerasjob-keras-env:abc"
    assert loaded.compute == "gpu-cluster"
    assert loaded.experiment_name == "keras-mnist"
    assert Path(loaded.code).name == "training" and (Path(loaded.code) / "keras_mnist.py").is_file()
    assert loaded.distribution is None


def test_distribution_timeout_and_mount_survive_the_round_trip(tmp_path):
    job = TrainingJob(distribution=TensorflowDistribution(worker_count=3), timeout=3600, data_mode="mount",
                      data="azureml:my-digits:2")
    loaded = _round_trip(job, tmp_path)
    assert loaded.distribution.type == "tensorflow"
    assert (loaded.distribution.worker_count, loaded.distribution.parameter_server_count) == (3, 0)
    assert loaded.resources.instance_count == 3
    assert loaded.limits.timeout == 3600
    assert (loaded.inputs["data_folder"].path, loaded.inputs["data_folder"].mode) == ("my-digits:2", "ro_mount")
    own_script = tmp_path / "src"
    own_script.mkdir()
    (own_script / "train.py").write_text("print('rank-aware training')\n")
    mpi = _round_trip(TrainingJob(source_dir=own_script, entry_script="train.py",
                                  distribution=MpiDistribution(node_count=2, process_count_per_node=4)), tmp_path)
    assert (mpi.distribution.type, mpi.distribution.process_count_per_instance) == ("mpi", 4)
    assert mpi.resources.instance_count == 2


def test_the_seed_sequence_data_environment_compute_submit_stream_and_registration():
    with FakeMLClient() as azure:
        result = submit(azure)
    calls = azure.service_calls
    order = ["Data.get_container", "Data.create_or_update", "Environments.get", "Environments.create_or_update",
             "Compute.get", "Compute.create_or_update", "Jobs.create_or_update", "RunHistory.get_details",
             "MLflow.store", "Models.create_or_update"]
    assert [calls.index(name) for name in order] == sorted(calls.index(name) for name in order)
    data = azure.data_assets["mnist-dataset"][0]
    assert (data.type, data.version) == ("uri_folder", "1")
    assert data.path == "wasbs://mnist@azureopendatastorage.blob.core.windows.net/"
    environment = azure.environments[environment_version(read_conda_file())[0]][0]
    assert isinstance(environment, Environment) and environment.image.startswith("mcr.microsoft.com/azureml/")
    assert "tensorflow[and-cuda]" in Path(environment.conda_file).read_text() if isinstance(
        environment.conda_file, str) else "tensorflow[and-cuda]" in str(environment.conda_file)
    cluster = azure.created_computes[0]
    assert isinstance(cluster, AmlCompute)
    assert (cluster.size, cluster.min_instances, cluster.max_instances, cluster.tier) == (
        "Standard_NC4as_T4_v3", 0, 4, "dedicated")
    job = azure.submissions[0]
    assert job.type == "command" and job.inputs["data_folder"].path.endswith("data/mnist-dataset/versions/1")
    model = azure.models["keras-mnist"][0]  # its tags and the result: tests/test_azure_backends_contract.py
    assert isinstance(model, Model) and model.type == "mlflow_model"  # outputs/model is an MLflow model: no-code deployable
    assert model.path == f"azureml://jobs/{result.run_id}/outputs/artifacts/paths/outputs/model/"
    assert model.tags["kerasjob.job"] == result.run_id  # what a retried registration looks for
    assert result.metrics["Accuracy"] == 0.97  # read through MLflow: the last epoch's value
    assert result.url.startswith(f"https://ml.azure.com/runs/{result.run_id}")
    assert azure.credentials == [azure.ml_client._credential]  # the MLflow plugin signs in as the MLClient does


def test_existing_assets_and_cluster_are_reused_not_created():
    with FakeMLClient(computes={"gpu-cluster"}) as azure:
        submit(azure)
        submit(azure)
    assert azure.service_calls.count("Environments.create_or_update") == 1
    assert azure.service_calls.count("Data.create_or_update") == 1
    assert "Compute.create_or_update" not in azure.service_calls
    assert [job.inputs["data_folder"].path.rsplit("/", 1)[-1] for job in azure.submissions] == ["1", "1"]


def test_changed_mnist_sources_point_the_new_data_version_at_their_wasbs_folder(monkeypatch):
    # (the new version itself: tests/test_azure_backends_contract.py)
    with FakeMLClient() as azure:
        submit(azure)
        monkeypatch.setenv("KERASJOB_MNIST_MIRRORS", "https://mirror.blob.core.windows.net/datasets/mnist/")
        submit(azure)
    assets = azure.data_assets["mnist-dataset"]
    assert [(asset.version, asset.path) for asset in assets] == [
        ("1", "wasbs://mnist@azureopendatastorage.blob.core.windows.net/"),
        ("2", "wasbs://datasets@mirror.blob.core.windows.net/mnist/")]
    assert azure.submissions[1].inputs["data_folder"].path.endswith("mnist-dataset/versions/2")


def test_an_http_mirror_that_azure_ml_cannot_list_is_refused_before_submission(monkeypatch):
    monkeypatch.setenv("KERASJOB_MNIST_MIRRORS", "https://example.org/mnist/")
    with FakeMLClient() as azure, pytest.raises(DataError, match="not an Azure Blob folder"):
        submit(azure)
    assert "Jobs.create_or_update" not in azure.service_calls


def test_a_local_folder_is_an_input_azure_ml_uploads(tiny_mnist):
    with FakeMLClient() as azure:
        submit(azure, data=tiny_mnist)
    assert azure.uploads[-1] == tiny_mnist.resolve()  # uploaded by the SDK on submit
    assert azure.submissions[0].inputs["data_folder"].path.startswith("azureml://")
    assert "Data.get_container" not in azure.service_calls


def test_a_read_that_fails_transiently_is_retried_and_a_403_is_not():
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    with FakeMLClient(failures={"Compute.get": [ServiceRequestError("reset")]}) as azure:
        result = submit(azure)
    assert azure.failures["Compute.get"] == [] and result.status == "completed"
    forbidden = HttpResponseError("403 Forbidden")
    forbidden.status_code = 403
    with FakeMLClient(failures={"Compute.get": [forbidden]}) as azure, pytest.raises((HttpResponseError, AccessDenied)):
        submit(azure)
    assert azure.service_calls.count("Compute.get") == 1 and "Jobs.create_or_update" not in azure.service_calls


def test_the_client_comes_from_config_json_or_explicit_ids(workspace_config):
    SUB = "00000000-0000-0000-0000-000000000000"
    with FakeMLClient():
        from_config = load_ml_client(workspace_config, credential=FakeCredential())
        explicit = load_ml_client(subscription_id=SUB, resource_group="r", workspace_name="w",
                                  credential=FakeCredential())
    assert (from_config.resource_group_name, from_config.workspace_name) == ("rg", "ws")
    assert (explicit.subscription_id, explicit.resource_group_name, explicit.workspace_name) == (SUB, "r", "w")


def test_a_newcomer_switches_from_v1_by_changing_one_argument(workspace_config):
    with FakeMLClient() as azure:
        result = submit_training(backend="azureml-v2", workspace_config=workspace_config, show_output=False,
                                 credential=FakeCredential())
    assert result.backend == "azureml-v2" and "Jobs.create_or_update" in azure.service_calls


def test_an_unknown_registered_data_asset_is_a_data_error_before_submission():
    with FakeMLClient() as azure, pytest.raises(DataError, match="No data asset 'other'"):
        submit(azure, data="azureml:other:3")
    assert "Jobs.create_or_update" not in azure.service_calls


def test_a_registered_data_asset_is_checked_then_used_as_named():
    from azure.ai.ml.entities import Data

    with FakeMLClient() as azure:
        azure.ml_client.data.create_or_update(Data(name="digits", version="3", path="wasbs://d@a.blob.core.windows.net/",
                                                   type="uri_folder"))
        submit(azure, data="azureml:digits:3")
        submit(azure, data="azureml:digits")
    assert [job.inputs["data_folder"].path.rsplit("/", 3)[-3:] for job in azure.submissions] == [
        ["digits", "versions", "3"]] * 2


def test_streamed_lines_reach_on_line_as_they_are_printed_and_a_printing_sink_works(capsys):
    with FakeMLClient(log_lines=["Epoch 1/2", "Epoch 2/2", "done"]) as azure:
        run = AzureMLv2Backend(azure.ml_client).submit(TrainingJob())
        seen = []
        assert run.wait(on_line=lambda line: (seen.append(line), print(f"> {line}"))).value == "completed"
    assert seen == ["Epoch 1/2", "Epoch 2/2", "done"]
    assert capsys.readouterr().out.splitlines() == ["> Epoch 1/2", "> Epoch 2/2", "> done"]
    assert run.log_tail(2) == "Epoch 2/2\ndone"
