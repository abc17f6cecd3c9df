"""Where the fakes used to answer what Azure would not (issue 21, F1-F13), each driven through the public SDK only.

Each test names the behaviour and where it comes from (the installed SDK's source or Azure's documentation); the
fake's docstrings cite the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kerasjob.testing import FakeAzureML, FakeMLClient


def _model(azure: FakeMLClient, version: str = "1", path: str | None = None):
    from azure.ai.ml.entities import Model

    return azure.ml_client.models.create_or_update(Model(
        name="keras-mnist", version=version, type="mlflow_model",
        path=path or f"azureml://jobs/job-{version}/outputs/artifacts/paths/outputs/model/"))


def _endpoint(azure: FakeMLClient, name: str = "fid", auth_mode: str = "key", deployments=("blue",),
              score_py: tuple[str, ...] = ()):
    from azure.ai.ml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint

    client = azure.ml_client
    client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=name, auth_mode=auth_mode)).result()
    for deployment in deployments:
        extra = {}
        if deployment in score_py:
            extra = {"code_configuration": CodeConfiguration(code=str(_score_folder(azure)), scoring_script="score.py"),
                     "environment": Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference"
                                                      ":latest", conda_file=None)}
        client.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name=deployment, endpoint_name=name, model="azureml:keras-mnist:1", instance_type="Standard_DS3_v2",
            instance_count=1, **extra)).result()
    return client


def _score_folder(azure: FakeMLClient):
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="score-"))
    (folder / "score.py").write_text("def init():\n    pass\n\ndef run(raw):\n    return raw\n")
    return folder


def _invoke(client, tmp_path, payload, endpoint: str = "fid", **options) -> str:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(payload))
    return client.online_endpoints.invoke(endpoint_name=endpoint, request_file=str(request), **options)


@pytest.fixture
def azure():
    with FakeMLClient() as fake:
        _model(fake)
        yield fake


ROW = [0.0] * 784


# --- F1: routing ------------------------------------------------------------------------------------------------


def test_f1_a_deployment_named_in_the_header_answers_at_zero_traffic_and_no_traffic_is_a_404(azure, tmp_path):
    from azure.core.exceptions import ResourceNotFoundError

    client = _endpoint(azure)
    with pytest.raises(ResourceNotFoundError, match="No valid deployments to route to"):
        _invoke(client, tmp_path, {"input_data": [ROW]})  # blue exists, takes no traffic
    assert json.loads(_invoke(client, tmp_path, {"input_data": [ROW]}, deployment_name="blue"))[0][0] == 0.91
    assert azure.scoring_requests[-1]["deployment"] == "blue"


# --- F2: payloads and scorers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [
    {"input_data": [ROW, ROW]},                                                              # a list of rows
    {"input_data": {"columns": list(range(784)), "index": [0, 1], "data": [ROW, ROW]}},        # pandas split
    {"input_data": {"pixels": [ROW, ROW]}},                                                   # named tensors
])
def test_f2_the_no_code_mlflow_server_reads_rows_pandas_split_and_named_tensors(azure, tmp_path, payload):
    client = _endpoint(azure)
    assert len(json.loads(_invoke(client, tmp_path, payload, deployment_name="blue"))) == 2


def test_f2_the_default_scorer_checks_rows_against_the_models_mlflow_signature(azure, tmp_path):
    from azure.core.exceptions import HttpResponseError

    client = _endpoint(azure)
    with pytest.raises(HttpResponseError, match=r"does not match expected shape \(-1, 784\)"):
        _invoke(client, tmp_path, {"input_data": [[0.0] * 3]}, deployment_name="blue")
    azure.run_files["outputs/model/MLmodel"] = azure.run_files["outputs/model/MLmodel"].replace(b"784", b"3")
    assert json.loads(_invoke(client, tmp_path, {"input_data": [[0.0] * 3]}, deployment_name="blue"))


def test_f2_the_scorer_is_pluggable_and_a_score_py_deployment_takes_any_body(azure, tmp_path):
    client = _endpoint(azure, deployments=("blue", "custom"), score_py=("custom",))
    azure.scorer = lambda rows: [[42.0] for _ in rows]
    assert json.loads(_invoke(client, tmp_path, {"input_data": [ROW]}, deployment_name="blue")) == [[42.0]]
    assert json.loads(_invoke(client, tmp_path, {"anything": [1, 2]}, deployment_name="custom")) == {
        "received": {"anything": [1, 2]}}
    azure.score_script = lambda deployment, body: {"deployment": deployment, "keys": sorted(body)}
    assert json.loads(_invoke(client, tmp_path, {"a": 1}, deployment_name="custom")) == {
        "deployment": "custom", "keys": ["a"]}


# --- F3, F12: logs ----------------------------------------------------------------------------------------------


def test_f3_get_logs_of_a_missing_deployment_is_a_404_and_f12_the_container_type_is_honoured(azure):
    from azure.core.exceptions import ResourceNotFoundError

    client = _endpoint(azure)
    with pytest.raises(ResourceNotFoundError):
        client.online_deployments.get_logs(name="nope", endpoint_name="fid", lines=10)
    assert "ready for serving" in client.online_deployments.get_logs(name="blue", endpoint_name="fid", lines=10)
    storage = client.online_deployments.get_logs(name="blue", endpoint_name="fid", lines=10,
                                                 container_type="storage-initializer")
    assert "Model files downloaded" in storage and "serving" not in storage


# --- F4: mirror traffic -----------------------------------------------------------------------------------------


def test_f4_mirror_traffic_is_at_most_50_and_never_to_a_deployment_with_live_traffic(azure):
    from azure.core.exceptions import HttpResponseError

    client = _endpoint(azure, deployments=("blue", "green"))
    endpoint = client.online_endpoints.get("fid")
    endpoint.traffic = {"blue": 100}
    endpoint.mirror_traffic = {"green": 60}
    with pytest.raises(HttpResponseError, match="at most 50"):
        client.online_endpoints.begin_create_or_update(endpoint).result()
    endpoint.mirror_traffic = {"blue": 10}
    with pytest.raises(HttpResponseError, match="live traffic"):
        client.online_endpoints.begin_create_or_update(endpoint).result()
    endpoint.mirror_traffic = {"green": 10}
    client.online_endpoints.begin_create_or_update(endpoint).result()
    assert client.online_endpoints.get("fid").mirror_traffic == {"green": 10}


def test_f4_a_mirror_gets_its_share_of_the_requests_routed_by_traffic(azure, tmp_path):
    client = _endpoint(azure, deployments=("blue", "green"))
    endpoint = client.online_endpoints.get("fid")
    endpoint.traffic, endpoint.mirror_traffic = {"blue": 100}, {"green": 10}
    client.online_endpoints.begin_create_or_update(endpoint).result()
    for _ in range(20):
        _invoke(client, tmp_path, {"input_data": [ROW]})
    _invoke(client, tmp_path, {"input_data": [ROW]}, deployment_name="blue")  # named: never mirrored
    served = [(each["deployment"], each.get("mirrored", False)) for each in azure.scoring_requests]
    assert served.count(("blue", False)) == 21 and served.count(("green", True)) == 2


# --- F5, F6, F7: what may change, and names ---------------------------------------------------------------------


def test_f5_a_model_version_re_sent_with_another_path_is_refused_but_its_tags_may_change(azure):
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError, match="Asset paths cannot be updated"):
        _model(azure, "1", path="azureml://jobs/another-job/outputs/artifacts/paths/outputs/model/")
    model = azure.ml_client.models.get("keras-mnist", version="1")
    model.tags = {"stage": "prod"}
    assert azure.ml_client.models.create_or_update(model).tags == {"stage": "prod"}


def _command(name: str | None, line: str = "python train.py", compute: str = "cpu", **options):
    from azure.ai.ml import command

    return command(name=name, command=line, environment="azureml:keras-env:1", compute=compute,
                   experiment_name="fidelity", **options)


def _with_environment(azure: FakeMLClient) -> None:
    from azure.ai.ml.entities import Environment

    azure.ml_client.environments.create_or_update(Environment(name="keras-env", version="1",
                                                              image="mcr.microsoft.com/azureml/minimal:latest"))


def test_f6_a_job_re_sent_under_its_name_may_change_only_its_description_tags_and_name_shown():
    from azure.core.exceptions import HttpResponseError

    with FakeMLClient(computes={"cpu"}) as azure:
        _with_environment(azure)
        azure.ml_client.jobs.create_or_update(_command("job-1"))
        with pytest.raises(HttpResponseError, match="command cannot be changed"):
            azure.ml_client.jobs.create_or_update(_command("job-1", line="python other.py"))
        job = azure.ml_client.jobs.get("job-1")
        job.tags, job.display_name, job.description = {"reviewed": "yes"}, "First try", "kept"
        updated = azure.ml_client.jobs.create_or_update(job)
        assert (updated.tags["reviewed"], updated.display_name, updated.command) == ("yes", "First try",
                                                                                     "python train.py")


def test_f7_names_arrive_url_encoded_and_are_checked_as_the_service_checks_them(azure):
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError, match="Invalid name 'bad name'"):
        azure.ml_client.jobs.create_or_update(_command("bad name"))
    assert ("Jobs.create_or_update", "jobs/bad name") in azure.calls  # decoded, as ARM reads it


# --- F8: aad_token endpoints ------------------------------------------------------------------------------------


def test_f8_an_aad_token_endpoint_is_invoked_with_the_callers_entra_token(azure, tmp_path):
    client = _endpoint(azure, auth_mode="aad_token")
    assert json.loads(_invoke(client, tmp_path, {"input_data": [ROW]}, deployment_name="blue"))
    assert azure.scoring_requests[-1]["authorization"] == "Bearer fake-token"


# --- F9, F10: a sweep parent holds no training ------------------------------------------------------------------


def test_f9_f10_a_v2_sweep_parent_has_no_training_metrics_log_or_model(tmp_path):
    from azure.ai.ml.sweep import Choice
    from mlflow.tracking import MlflowClient

    with FakeMLClient(computes={"cpu"}) as azure:
        _with_environment(azure)
        trial = _command(None, line="python train.py --lr ${{inputs.lr}}", inputs={"lr": 0.1})
        sweep = trial(lr=Choice([0.1, 0.01])).sweep(primary_metric="Accuracy", goal="Maximize", compute="cpu",
                                                    sampling_algorithm="random", max_total_trials=2)
        parent = azure.ml_client.jobs.create_or_update(sweep)
        azure.ml_client.jobs.stream(parent.name)
        store = MlflowClient(tracking_uri=azure.ml_client.workspaces.get(azure.ml_client.workspace_name)
                             .mlflow_tracking_uri)
        assert store.get_run(parent.name).data.metrics == {}
        assert store.get_run(f"{parent.name}_1").data.metrics["Accuracy"] == pytest.approx(0.901)
        # JobOperations.download of a sweep: the best trial's files under artifacts/, the parent's own (no model)
        # under hd-artifacts/
        azure.ml_client.jobs.download(parent.name, download_path=str(tmp_path / "parent"), all=True)
        assert (tmp_path / "parent" / "artifacts" / "outputs" / "model" / "MLmodel").is_file()
        assert not (tmp_path / "parent" / "hd-artifacts" / "outputs" / "model").exists()
        assert ("Storage.download", "azureml://datastores/workspaceartifactstore/paths/ExperimentRun/"
                f"dcid.{parent.name}_1/") in azure.calls


def test_f10_a_v1_hyperdrive_parent_cannot_register_a_model_as_the_sdk_says():
    from azureml.exceptions import ModelPathNotFoundException

    from kerasjob import Sweep, tune_training

    with FakeAzureML() as azure:
        tune_training(workspace=azure.workspace, sweep=Sweep(max_total_runs=2, max_concurrent_runs=2),
                      show_output=False)
        from azureml.core import Run

        parent = Run.get(azure.workspace, azure.runs[0].run_id)
        assert type(parent).__name__ == "HyperDriveRun"
        assert parent.get_metrics() == {}
        assert list(parent.get_details_with_logs()["logFiles"]) == ["azureml-logs/hyperdrive.txt"]
        with pytest.raises(ModelPathNotFoundException):
            parent.register_model(model_name="from-parent", model_path="outputs/model")


# --- F11: v1 run ids --------------------------------------------------------------------------------------------


def test_f11_a_v1_submit_under_an_existing_run_id_is_refused():
    from azureml.core import Experiment, ScriptRunConfig
    from azureml.exceptions import ExperimentExecutionException

    with FakeAzureML(computes={"cpu"}) as azure:
        Path("train.py").write_text("print('training')\n")
        experiment = Experiment(azure.workspace, "fidelity")
        config = ScriptRunConfig(source_directory=".", script="train.py", compute_target="cpu")
        experiment.submit(config, run_id="fidelity_1")
        with pytest.raises(ExperimentExecutionException, match="already exists"):
            experiment.submit(config, run_id="fidelity_1")
    assert [run.run_id for run in azure.runs] == ["fidelity_1"]


# --- F12: states and status codes of an update ------------------------------------------------------------------


def test_f12_an_update_answers_200_updating_and_a_new_instance_count_scaling(azure):
    client = _endpoint(azure)
    deployment = client.online_deployments.get("blue", endpoint_name="fid")
    deployment.instance_count = 3
    client.online_deployments.begin_create_or_update(deployment).result()
    deployment.request_settings.request_timeout_ms = 9000
    client.online_deployments.begin_create_or_update(deployment).result()
    assert azure.put_answers[0] == ("endpoints/fid", 201, "Creating")
    assert azure.put_answers[1:] == [("deployments/blue", 201, "Creating"), ("deployments/blue", 200, "Scaling"),
                                     ("deployments/blue", 200, "Updating")]


# --- F13: references to what does not exist --------------------------------------------------------------------


def test_f13_a_missing_model_or_compute_is_refused(azure):
    from azure.ai.ml.entities import ManagedOnlineDeployment
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    client = _endpoint(azure)
    with pytest.raises(ResourceNotFoundError):
        client.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name="nope", endpoint_name="fid", model="azureml:nope:1", instance_type="Standard_DS3_v2",
            instance_count=1)).result()
    _with_environment(azure)
    with pytest.raises(HttpResponseError, match="Compute missing was not found"):
        client.jobs.create_or_update(_command("job-2", compute="missing"))
