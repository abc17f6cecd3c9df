"""Daily use, round 2 (issue 22): messages that say something true, and the commands MLflow and az ml users
reach for. Each test is cheap: no training unless a row needs a registered model."""

from __future__ import annotations

import json
import re

import pytest

from kerasjob import RunStatus
from kerasjob.cli import main
from kerasjob.cli.parser import build_parser
from kerasjob.cli.refusals import in_flags
from kerasjob.errors import TrainingFailed, ValidationError

GUID = "00000000-0000-0000-0000-000000000000"


class _EndedRun:
    """What ``run._ended`` reads of a handle: a run that ended as ``status`` and said nothing of why."""

    id = "run-1"

    def __init__(self, status: RunStatus) -> None:
        self.ended = status

    def wait(self, *, on_line=None) -> RunStatus:
        return self.ended

    def log_tail(self, lines: int = 20) -> str:
        return ""


@pytest.mark.parametrize("status, said", [(RunStatus.FAILED, "The run failed"),
                                          (RunStatus.CANCELED, "The run was canceled")])
def test_a_run_that_ended_without_a_reason_says_so_in_words(status, said):
    from kerasjob.run import _ended

    with pytest.raises(TrainingFailed) as raised:
        _ended(_EndedRun(status), None)  # type: ignore[arg-type]
    assert str(raised.value).splitlines()[0].startswith(said + " (run run-1") and "ended" not in str(raised.value)


@pytest.mark.parametrize("argv, error, message", [
    (["models", "download", "keras-mnist:7", "dest"], ValidationError("version", "one of 1", "7"),
     "Invalid NAME: expected one of 1. Received: NAME='keras-mnist:7'"),
    (["predict", "keras-mnist@best", "x.png"], ValidationError("alias", "an alias of model 'keras-mnist'", "best"),
     "Invalid MODEL: expected an alias of model 'keras-mnist'. Received: MODEL='keras-mnist@best'"),
    (["models", "download", "keras-mnist", "dest", "--version", "7"], ValidationError("version", "one of 1", "7"),
     "Invalid --version: expected one of 1. Received: --version 7"),
    (["models", "alias", "keras-mnist", "1", "--alias", "v2"], ValidationError("alias", "not 'v' and digits", "v2"),
     "Invalid --alias: expected not 'v' and digits. Received: --alias v2"),
])
def test_a_version_or_alias_is_named_as_the_user_typed_it_not_as_the_api_calls_it(argv, error, message):
    typed = build_parser().parse_args(argv)
    assert in_flags(error, typed.parser, typed) == message


def test_the_dry_run_plan_names_the_workspace_and_the_login(capsys):
    assert main(["submit", "--backend", "azureml-v2", "--subscription-id", GUID, "--resource-group", "rg",
                 "--workspace-name", "ws", "--auth", "cli", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert f"workspace:    ws (subscription {GUID}, resource group rg; from explicit ids), login: cli" in plan


def test_the_dry_run_plan_names_the_config_file_it_read(workspace_config, capsys):
    assert main(["tune", "--backend", "azureml", "--workspace-config", str(workspace_config), "--dry-run",
                 "--json"]) == 0
    import json

    workspace = json.loads(capsys.readouterr().out)["trial"]["workspace"]
    assert workspace == f"ws (subscription {GUID}, resource group rg; from {workspace_config}), login: default"


def test_a_subscription_id_that_is_not_a_guid_is_refused_before_any_login():
    from kerasjob.workspace import check_workspace_arguments

    with pytest.raises(ValidationError, match=re.escape("Received: subscription_id='my-subscription'")):
        check_workspace_arguments(subscription_id="my-subscription", resource_group="rg", workspace_name="ws")
    assert check_workspace_arguments(subscription_id=GUID.upper(), resource_group="rg", workspace_name="ws") is None


@pytest.mark.slow
def test_kerasjob_ui_serves_mlflows_ui_on_kerasjobs_store(isolated_home):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "kerasjob.cli", "ui", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline, answered = time.monotonic() + 150, False
        while not answered and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    answered = response.status == 200
            except OSError:
                time.sleep(1)
        assert answered, "MLflow's UI never answered"
        assert (isolated_home / "mlflow.db").is_file()  # the store kerasjob's runs list reads, not ./mlflow.db
        assert not (isolated_home.parent / "mlflow.db").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert f"sqlite:///{isolated_home / 'mlflow.db'}" in server.stderr.read()


def test_kerasjob_ui_refuses_a_port_out_of_range(capsys):
    assert main(["ui", "--port", "70000"]) == 2
    assert "Invalid --port: expected a TCP port from 1 to 65535. Received: --port 70000" in capsys.readouterr().err


def test_the_hints_name_kerasjob_as_a_shell_can_run_it(monkeypatch):
    """``make demo`` runs .venv/bin/kerasjob without the venv on PATH: a bare ``kerasjob`` hint would fail."""
    import sys
    from pathlib import Path

    from kerasjob.commands import shell_command

    installed = Path(sys.executable).parent / "kerasjob"
    if not installed.exists():
        pytest.skip("kerasjob's console script is not installed beside this Python")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shell_command("kerasjob") == str(installed)
    monkeypatch.setenv("PATH", f"{installed.parent}:/usr/bin:/bin")
    assert shell_command("kerasjob") == "kerasjob"


SCRIPT = """import argparse, os, pathlib
import mlflow
parser = argparse.ArgumentParser()
parser.add_argument("--score", type=float)
args, _ = parser.parse_known_args()
pathlib.Path("outputs").mkdir(exist_ok=True)
pathlib.Path("outputs/result.txt").write_text(str(args.score))
mlflow.log_metric("score", args.score)
"""


def _script_run(tmp_path, capsys, score: str) -> str:
    import json

    job = tmp_path / "job"
    job.mkdir(exist_ok=True)
    (job / "train.py").write_text(SCRIPT)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    assert main(["submit", "--source-dir", str(job), "--data-folder", str(data), "--experiment", "scripts",
                 "--model-name", "scripted", "--json", "--", "--score", score]) == 0
    return json.loads(capsys.readouterr().out)["run_id"]


@pytest.mark.slow
def test_runs_compare_download_and_delete(tmp_path, capsys):
    import json

    first, second = _script_run(tmp_path, capsys, "0.5"), _script_run(tmp_path, capsys, "0.75")
    assert main(["runs", "compare", first, second, "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert [run["metrics"]["score"] for run in compared] == [0.5, 0.75]
    assert main(["runs", "compare", first, second]) == 0
    table = capsys.readouterr().out
    assert re.search(r"^\* score +0\.5000 +0\.7500", table, re.M), table

    assert main(["runs", "download", first, str(tmp_path / "got")]) == 0
    assert (tmp_path / "got" / "outputs" / "result.txt").read_text() == "0.5"
    assert "Downloading artifacts" not in capsys.readouterr().err  # MLflow's progress bar stays off

    registered = main(["runs", "delete", first])  # its model is registered: kept, and the message says how
    assert registered == 2 and "kerasjob models delete scripted:1 first" in capsys.readouterr().err
    assert main(["models", "delete", "scripted:1"]) == 0
    assert "version 1 deleted" in capsys.readouterr().out
    assert main(["runs", "delete", first]) == 0
    assert capsys.readouterr().out == f"Run {first} deleted.\n"
    assert main(["runs", "list", "--json"]) == 0
    assert [run["run_id"] for run in json.loads(capsys.readouterr().out)] == [second]
    assert main(["runs", "delete", first]) == 2  # gone


def _version(client, name: str, accuracy: str | None) -> str:
    tags = {"primary_metric": "Final test accuracy", "goal": "maximize"}
    if accuracy is not None:
        tags["Final test accuracy"] = accuracy
    return client.create_model_version(name, source="file:///nowhere", tags=tags).version


@pytest.mark.parametrize("accuracies, champion, deleted, heir", [
    (["0.9", "0.97", "0.95"], "2", "2", "3"),   # the best of the rest takes the alias
    (["0.9", "0.97", "0.9"], "2", "2", "3"),    # the newest among equals
    (["0.9", "0.97", None], "2", "2", "1"),     # a version without the metric is never crowned
    (["0.97", None], "1", "1", None),          # nobody left to crown: the alias goes
    (["0.9", "0.97"], "2", "1", "2"),          # not the champion: the alias stays
])
def test_deleting_a_version_keeps_the_champion_rule(accuracies, champion, deleted, heir, capsys):
    from kerasjob import tracking
    from kerasjob.local_registry import MlflowModelRegistry

    client = tracking.client(tracking.tracking_uri())
    client.create_registered_model("digits")
    for accuracy in accuracies:
        _version(client, "digits", accuracy)
    MlflowModelRegistry().set_alias("digits", champion)
    assert main(["models", "delete", f"digits:{deleted}"]) == 0
    said = capsys.readouterr().out
    assert MlflowModelRegistry().holder("digits") == (None if heir is None else next(
        each for each in MlflowModelRegistry().versions("digits") if each.version == heir))
    if deleted == champion:
        assert (f"@champion -> version {heir}" if heir else "No version left holds @champion") in said


def test_deleting_the_last_version_deletes_the_model(capsys):
    from kerasjob import tracking

    client = tracking.client(tracking.tracking_uri())
    client.create_registered_model("lonely")
    _version(client, "lonely", "0.5")
    assert main(["models", "delete", "models:/lonely/1"]) == 0
    assert "No version left holds @champion" not in capsys.readouterr().out  # it held no alias
    assert main(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.slow
def test_results_runs_and_endpoints_render_as_html_tables_with_a_link(tmp_path):
    from kerasjob import submit_training
    from kerasjob.backends.local_files import read_run_id
    from kerasjob.endpoints import LocalEndpoint
    from kerasjob.tuning.results import Trial, TuningResult

    job = tmp_path / "job"
    job.mkdir()
    (job / "train.py").write_text(SCRIPT)
    (tmp_path / "data").mkdir()
    result = submit_training(source_dir=job, entry_script="train.py", data=tmp_path / "data",
                             arguments=("--score", "0.5"), show_output=False)
    mlflow_run_id = read_run_id(result.run.run_dir)
    shown = result._repr_html_()
    assert f"Run {result.run_id} completed" in shown and f"{result.model_name} version 1 (@champion)" in shown
    assert "<th " in shown and ">score</th>" in shown and ">0.5000</td>" in shown
    assert f'href="http://127.0.0.1:5000/#/runs/{mlflow_run_id}"' in shown  # kerasjob ui's address
    assert "completed" in result.run._repr_html_() and f"/#/runs/{mlflow_run_id}" in result.run._repr_html_()

    best = Trial(2, "r2", {"batch_size": 100}, "completed", 0.97)
    sweep = TuningResult("sweep-1", [Trial(1, "r1", {"batch_size": 50}, "completed", 0.9), best], best, "Accuracy",
                         "keras-mnist", "4", "azureml-v2", "https://ml.azure.com/runs/sweep-1", champion=True)
    table = sweep._repr_html_()
    assert 'href="https://ml.azure.com/runs/sweep-1"' in table and "0.9700: trial #2, run r2" in table

    endpoint = LocalEndpoint(name="mnist", backend="local", url="http://127.0.0.1:9", model="models:/m/1",
                             pid=2**22 + 17, log_path=str(tmp_path / "log"))
    assert 'href="http://127.0.0.1:9"' in endpoint._repr_html_() and "<b>Endpoint mnist</b>" in endpoint._repr_html_()
    assert "&lt;script&gt;" in TuningResult("<script>", [best], best, "Accuracy", "m", "1", "local", "x")._repr_html_()


@pytest.mark.slow
def test_tune_shows_each_trials_epochs_and_its_parent_run_has_the_user_and_the_dataset(tiny_mnist, capsys):
    from kerasjob import tracking

    assert main(["tune", "--data-folder", str(tiny_mnist), "--epochs", "2", "--max-total-runs", "1",
                 "--max-concurrent-runs", "1", "--set", "first_layer_neurons=16", "--set",
                 "second_layer_neurons=8"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^trial 0 epoch 1: Accuracy=0\.\d{4}$", out, re.M), out
    assert re.search(r"^trial 0 epoch 2: Accuracy=0\.\d{4}$", out, re.M), out
    sweep_id = re.search(r"^Sweep (\w+):", out, re.M).group(1)
    parent = tracking.client(tracking.tracking_uri()).get_run(sweep_id)
    assert parent.data.tags["mlflow.user"]
    [dataset] = parent.inputs.dataset_inputs
    assert dataset.dataset.source and dataset.dataset.digest


def test_runs_list_shows_a_workspaces_kerasjob_runs_through_azure_ml_v2(workspace_config, capsys):
    from kerasjob.testing import FakeMLClient

    workspace = ["--backend", "azureml-v2", "--workspace-config", str(workspace_config)]
    with FakeMLClient(statuses=["Running"] * 50) as azure:
        submitted = []
        for experiment in ("first", "second"):
            assert main(["submit", *workspace, "--experiment", experiment, "--no-wait", "--json"]) == 0
            submitted.append(json.loads(capsys.readouterr().out)["run_id"])
        assert main(["runs", "list", *workspace, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert sorted(run["run_id"] for run in listed) == sorted(submitted)
        assert {run["status"] for run in listed} == {"running"} and {r["backend"] for r in listed} == {"azureml-v2"}
        assert main(["runs", "list", *workspace, "--experiment", "second", "--limit", "5"]) == 0
        table = capsys.readouterr().out
        assert submitted[1] in table and submitted[0] not in table
    assert "Jobs.list" in azure.service_calls


def test_runs_list_shows_a_workspaces_kerasjob_runs_through_azure_ml_v1(workspace_config, capsys, tmp_path):
    """v1 through the SDK's own listing: Experiment.list, then each experiment's get_runs(tags=kerasjob.backend)
    (the fake answers WorkspaceClient.list_experiments and ExperimentClient.get_runs). A run kerasjob did not
    submit (no tag) and a sweep's trials are not listed; the HyperDrive parent is, as a sweep."""
    from azureml.core import Experiment, ScriptRunConfig

    from kerasjob import Sweep, tune_training
    from kerasjob.testing import FakeAzureML

    workspace = ["--backend", "azureml", "--workspace-config", str(workspace_config)]
    with FakeAzureML(statuses=["Running"] * 50) as azure:
        submitted = []
        for experiment in ("first", "second"):
            assert main(["submit", *workspace, "--experiment", experiment, "--no-wait", "--json"]) == 0
            submitted.append(json.loads(capsys.readouterr().out)["run_id"])
        (tmp_path / "train.py").write_text("print('not kerasjob')\n")
        foreign = Experiment(azure.workspace, "first").submit(
            ScriptRunConfig(source_directory=str(tmp_path), script="train.py", compute_target="gpu-cluster"),
            run_id="someone-elses-run")
        assert main(["runs", "list", *workspace, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [run["run_id"] for run in listed] == submitted[::-1]  # newest first
        assert {run["status"] for run in listed} == {"running"} and {r["backend"] for r in listed} == {"azureml"}
        assert all(run["url"].startswith("https://ml.azure.com/") and run["start_time"] for run in listed)
        assert main(["runs", "list", *workspace, "--experiment", "first", "--limit", "5"]) == 0
        table = capsys.readouterr().out
        assert submitted[0] in table and submitted[1] not in table and foreign.id not in table
    with FakeAzureML(trial_metrics=[{"Accuracy": [0.9]}] * 2) as azure:
        sweep = tune_training(workspace=azure.workspace, sweep=Sweep(max_total_runs=2, max_concurrent_runs=1),
                              show_output=False)
        assert main(["runs", "list", *workspace, "--json"]) == 0
        [parent] = json.loads(capsys.readouterr().out)  # its trials are not top-level runs
        assert (parent["run_id"], parent["is_sweep"]) == (sweep.sweep_run_id, True)
    assert ("Experiment.list", None) in azure.calls and any(call[0] == "Run.list" for call in azure.calls)
