"""The Azure ML v1 backend's own extras against the fake network boundary; SDK objects built for real.

What v1 and v2 share is tested over both fakes in tests/test_azure_backends_contract.py.
"""

from __future__ import annotations

import pytest
from azureml.core import Environment, ScriptRunConfig
from azureml.data.dataset_consumption_config import DatasetConsumptionConfig

from kerasjob import MpiDistribution, SubmissionError, TensorflowDistribution, TrainingJob, submit_training
from kerasjob.backends.azureml import build_script_run_config
from kerasjob.errors import AccessDenied
from kerasjob.testing import FakeAzureML


def submit(azure, **kwargs):
    return submit_training(workspace=azure.workspace, show_output=False, **kwargs)


def test_the_seed_call_sequence_script_arguments_compute_environment_and_registration():
    with FakeAzureML() as azure:
        result = submit(azure)
    # the second ComputeTarget GET is Experiment.submit's own compute-instance check (azureml/core/experiment.py)
    assert azure.service_calls[:7] == ["ComputeTarget", "ComputeTarget.create", "Dataset.get_by_name",
                                       "FileDataset.register", "ComputeTarget", "Experiment.submit", "Run.get_status"]
    calls = azure.service_calls
    assert calls.index("Run.get_metrics") < calls.index("Run.register_model") and calls.count("Run.register_model") == 1
    config = azure.submissions[0]
    assert isinstance(config, ScriptRunConfig)
    assert config.script == "keras_mnist.py"
    assert sorted(p.name for p in __import__("pathlib").Path(config.source_directory).glob("*.py")) == [
        "__init__.py", "checkpoint.py", "compile_cache.py", "contract.py", "data_parallel.py", "fit_job.py",
        "fused_epoch.py", "keras_fit.py", "keras_mnist.py", "mlflow_model.py", "mnist_data.py", "multi_worker.py",
        "pyfunc_loader.py", "tracking.py"]
    arguments = config.arguments
    assert arguments[0] == "--data-folder" and isinstance(arguments[1], DatasetConsumptionConfig)
    assert arguments[1].mode == "download"
    assert arguments[2:-4] == ["--batch-size", 50, "--first-layer-neurons", 300, "--second-layer-neurons", 100,
                               "--learning-rate", 0.001, "--epochs", 20]
    from azureml.data import OutputFileDatasetConfig  # checkpoints on the datastore: a preempted node's restart resumes

    assert arguments[-4] == "--checkpoint-dir" and isinstance(arguments[-3], OutputFileDatasetConfig)
    assert arguments[-3].name == "checkpoints" and arguments[-3].mode == "mount"
    # the compile cache: one folder on the default datastore for every job, so the next one reads these programs
    assert arguments[-2] == "--compile-cache" and isinstance(arguments[-1], OutputFileDatasetConfig)
    assert (arguments[-1].name, arguments[-1].mode) == ("compile_cache", "mount")
    assert arguments[-1].destination == ("workspaceblobstore", "kerasjob/compile-cache")
    assert config.run_config.target == "gpu-cluster"
    environment = config.run_config.environment
    assert isinstance(environment, Environment)
    assert environment.name.startswith("kerasjob-keras-env-")
    assert environment.docker.base_image.startswith("mcr.microsoft.com/azureml/")
    pip = environment.python.conda_dependencies.pip_packages
    assert "tensorflow[and-cuda]==2.21.0" in pip and "keras==3.15.1" in pip
    assert "azureml-mlflow==1.62.0.post6" in pip and "azureml-defaults==1.62.0" in pip  # exact pins; v1's runtime
    created = azure.created_computes[0].configuration
    assert created.vm_size == "Standard_NC4as_T4_v3" and created.scale_settings.maximum_node_count == 4
    assert created.scale_settings.minimum_node_count == 0
    model = azure.registered_models[0]  # its tags and the result: tests/test_azure_backends_contract.py
    assert (model.name, model.model_path, model.version, model.run_id) == ("keras-mnist", "outputs/model", 1,
                                                                          result.run_id)


def test_cluster_creation_that_times_out_stops_before_submission():
    # (a creation that fails: tests/test_azure_backends_contract.py)
    with FakeAzureML(new_compute_state="Creating") as azure, \
            pytest.raises(SubmissionError, match="not ready after 20 minutes"):
        submit(azure)
    assert "Experiment.submit" not in azure.service_calls


def test_a_registered_dataset_can_be_named_and_mounted():
    with FakeAzureML() as azure:
        submit(azure)
        submit(azure, data="azureml:mnist-dataset:1", data_mode="mount")
    assert azure.submissions[1].arguments[1].mode == "mount"


def test_the_environment_is_identical_across_identical_calls():
    with FakeAzureML() as azure:
        submit(azure)
        submit(azure)
    first, second = (config.run_config.environment for config in azure.submissions)
    assert first.name == second.name
    assert first.python.conda_dependencies.serialize_to_string() == second.python.conda_dependencies.serialize_to_string()


def test_a_transient_read_is_retried_and_a_403_is_not():
    import requests

    throttled = requests.HTTPError("429 Too Many Requests")
    throttled.response = type("Response", (), {"status_code": 429})()
    with FakeAzureML(failures={"Run.get_metrics": [ConnectionResetError("reset"), throttled]}) as azure:
        submit(azure)
    assert azure.service_calls.count("Run.get_metrics") == 3
    with FakeAzureML(compute_errors={"gpu-cluster": 403}) as azure, pytest.raises(AccessDenied):
        submit(azure)
    assert azure.service_calls.count("ComputeTarget") == 1 and "ComputeTarget.create" not in azure.service_calls


def test_timeout_becomes_the_runs_maximum_duration():
    with FakeAzureML() as azure:
        submit(azure, timeout=3600)
    assert azure.submissions[0].run_config.max_run_duration_seconds == 3600


def test_distribution_translates_to_tensorflow_and_mpi_configurations(tmp_path):
    from azureml.core import Dataset

    data = Dataset.File.from_files(path=["https://example.org/a.gz"], validate=False).as_download()
    job = TrainingJob(distribution=TensorflowDistribution(worker_count=3))
    config = build_script_run_config(job, data_input=data, compute_target="gpu-cluster", environment=None)
    run_config = config.run_config
    assert run_config.framework == "TensorFlow"
    assert (run_config.tensorflow.worker_count, run_config.tensorflow.parameter_server_count) == (3, 0)
    assert run_config.node_count == 3
    own_script = tmp_path / "src"
    own_script.mkdir()
    (own_script / "train.py").write_text("print('rank-aware training')\n")
    job = TrainingJob(source_dir=own_script, entry_script="train.py",
                      distribution=MpiDistribution(node_count=2, process_count_per_node=4))
    config = build_script_run_config(job, data_input=data, compute_target="gpu-cluster", environment=None)
    assert config.run_config.communicator == "IntelMpi"
    assert config.run_config.mpi.process_count_per_node == 4 and config.run_config.node_count == 2


def test_the_workspace_comes_from_config_json_or_explicit_ids(workspace_config, monkeypatch):
    from kerasjob.workspace import load_workspace

    with FakeAzureML() as azure:
        submit_training(workspace_config=workspace_config, show_output=False)
        load_workspace(subscription_id="00000000-0000-0000-0000-000000000000", resource_group="r", workspace_name="w")
    assert azure.calls[0] == ("Workspace.get", "ws")  # the name config.json gives
    assert ("Workspace.get", "w") in azure.calls


def test_service_principal_auth_reads_the_environment(workspace_config, monkeypatch):
    from azureml.core.authentication import ServicePrincipalAuthentication

    from kerasjob.workspace import authentication

    for name, value in (("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c"), ("AZURE_CLIENT_SECRET", "s")):
        monkeypatch.setenv(name, value)
    assert isinstance(authentication("service-principal"), ServicePrincipalAuthentication)
