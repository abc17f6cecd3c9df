"""Hyperparameter sweeps: the space and its HyperDrive translation, the local Optuna sweep for real, the CLI."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import psutil
import pytest

from kerasjob import (Bandit, Sweep, TrainingFailed, ValidationError, choice, loguniform, normal, quniform,
                      tune_training, uniform)
from kerasjob.cli import main
from kerasjob.search_space import seed_space
from kerasjob.testing import FakeAzureML
from kerasjob.tracking import client

# A training script of the user's: no TensorFlow, fast, and its "quality" decides how it does.
QUALITY_SCRIPT = """
import argparse, os, time
import mlflow
parser = argparse.ArgumentParser()
parser.add_argument("--data-folder")
parser.add_argument("--quality", type=float)
parser.add_argument("--epochs", type=int, default=8)
args = parser.parse_args()
if args.quality < 0:
    raise SystemExit("quality must be >= 0")
print("pid", os.getpid(), flush=True)
with mlflow.start_run():
    for epoch in range(args.epochs * (5 if args.quality < 0.2 else 1)):  # the poor trial runs long
        mlflow.log_metric("Accuracy", args.quality, step=epoch)
        time.sleep(0.3)
os.makedirs("outputs/model", exist_ok=True)
with open("outputs/model/quality.txt", "w") as stream:
    stream.write(str(args.quality))
"""


def _quality_source(tmp_path: Path) -> Path:
    source = tmp_path / "quality-src"
    source.mkdir()
    (source / "train.py").write_text(QUALITY_SCRIPT)
    return source


# --- the space ------------------------------------------------------------------------------------------


def test_the_defaults_are_the_seed_notebooks_sweep():
    sweep = Sweep()
    assert sweep.space == {"batch_size": choice(25, 50, 100), "first_layer_neurons": choice(10, 50, 200, 300, 500),
                           "second_layer_neurons": choice(10, 50, 200, 500), "learning_rate": loguniform(-6, -1)}
    assert (sweep.sampling, sweep.primary_metric, sweep.goal) == ("random", "Accuracy", "maximize")
    assert (sweep.max_total_runs, sweep.max_concurrent_runs) == (20, 4)
    assert sweep.policy == Bandit(slack_factor=0.1, evaluation_interval=2)


def test_the_space_translates_exactly_to_hyperdrive():
    from azureml.core import ScriptRunConfig

    from kerasjob.hyperdrive import build_hyperdrive_config

    script = ScriptRunConfig(source_directory=".", script="keras_mnist.py", arguments=["--epochs", 3])
    config = build_hyperdrive_config(Sweep(), script)
    assert config._generator_config == {"name": "RANDOM", "parameter_space": {
        "--batch-size": ["choice", [[25, 50, 100]]], "--first-layer-neurons": ["choice", [[10, 50, 200, 300, 500]]],
        "--second-layer-neurons": ["choice", [[10, 50, 200, 500]]], "--learning-rate": ["loguniform", [-6, -1]]}}
    assert config._policy_config == {"name": "Bandit", "properties": {"evaluation_interval": 2,
                                                                        "delay_evaluation": 0, "slack_factor": 0.1}}
    assert config._primary_metric_config == {"name": "Accuracy", "goal": "maximize"}
    assert (config._max_total_runs, config._max_concurrent_runs) == (20, 4)
    other = build_hyperdrive_config(Sweep(space={"learning_rate": uniform(0.001, 0.01), "batch_size": quniform(16, 64, 16),
                                                 "first_layer_neurons": choice(100, 200)},
                                          policy=Bandit(slack_factor=None, slack_amount=0.05, evaluation_interval=1,
                                                        delay_evaluation=3), goal="minimize",
                                          primary_metric="Loss"), script)
    assert other._generator_config["parameter_space"]["--learning-rate"] == ["uniform", [0.001, 0.01]]
    assert other._generator_config["parameter_space"]["--batch-size"] == ["quniform", [16, 64, 16]]
    assert other._policy_config["properties"] == {"evaluation_interval": 1, "delay_evaluation": 3,
                                                  "slack_amount": 0.05}
    assert other._primary_metric_config == {"name": "Loss", "goal": "minimize"}
    grid = build_hyperdrive_config(Sweep(space={"batch_size": choice(25, 50)}, sampling="grid"), script)
    assert grid._generator_config["name"] == "GRID"
    bayesian = build_hyperdrive_config(Sweep(space={"batch_size": choice(25, 50)}, sampling="bayesian"), script)
    assert bayesian._generator_config["name"] == "BayesianOptimization" and bayesian._policy_config["name"] == "Default"


def test_loguniform_means_azures_exp_of_a_uniform_draw():
    import optuna

    from kerasjob.local_sweep import sample

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    sweep = Sweep(space={"learning_rate": loguniform(-6, -1)}, max_total_runs=1, max_concurrent_runs=1)
    draws = [sample(study.ask(), sweep, __import__("random").Random(0))["learning_rate"] for _ in range(200)]
    assert all(math.exp(-6) <= value <= math.exp(-1) for value in draws)
    logs = sorted(math.log(value) for value in draws)
    assert logs[50] < -4.0 < logs[150]  # uniform in log space, so the log-median is near -3.5


@pytest.mark.parametrize("make, argument", [
    (lambda: choice(), "choice"),
    (lambda: uniform(0.1, 0.01), "uniform"),
    (lambda: loguniform(-1, -6), "loguniform"),
    (lambda: Sweep(sampling="hyperband"), "sampling"),
    (lambda: Sweep(policy="median"), "policy"),
    (lambda: Sweep(policy=Bandit(slack_factor=0.1, slack_amount=0.1)), "policy"),
    (lambda: Sweep(max_total_runs=2, max_concurrent_runs=4), "max_concurrent_runs"),
    (lambda: Sweep(goal="best"), "goal"),
    (lambda: Sweep(space={"learning_rate": normal(0.01, 0.001)}, sampling="bayesian"), "space['learning_rate']"),
    (lambda: Sweep(space={"batch_size": uniform(10, 100)}, sampling="grid"), "space['batch_size']"),
])
def test_a_bad_sweep_is_refused_when_built(make, argument):
    with pytest.raises(ValidationError) as caught:
        make()
    assert caught.value.argument == argument


@pytest.mark.parametrize("sweep, argument, received", [
    (lambda: Sweep(primary_metric="val_accuracy"), "primary_metric", "val_accuracy"),
    (lambda: Sweep(space={"dropout": uniform(0.1, 0.5)}), "space", "dropout"),
    (lambda: Sweep(space={"batch_size": uniform(10, 100)}), "space['batch_size']", "uniform(10, 100)"),
    (lambda: Sweep(space={**seed_space(), "epochs": choice(1, 2)}), "space", "epochs"),
])
def test_a_sweep_that_does_not_fit_the_script_is_refused_before_any_trial(sweep, argument, received, tiny_mnist):
    with FakeAzureML() as azure, pytest.raises(ValidationError) as caught:
        tune_training(data=tiny_mnist, sweep=sweep(), show_output=False)
    assert caught.value.argument == argument and received in str(caught.value)
    assert azure.calls == []
    runs = Path(__import__("os").environ["KERASJOB_HOME"]) / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []


# --- HyperDrive (Azure ML v1), against the fake network boundary -------------------------------------------


def test_a_hyperdrive_sweep_registers_the_best_childs_model():
    metrics = [{"Accuracy": [0.90, 0.95]}, {"Accuracy": [0.91, 0.97]}, {"Accuracy": [0.5]}, {"Accuracy": [0.96]}]
    with FakeAzureML(trial_metrics=metrics, trial_statuses=["Completed", "Completed", "Canceled", "Failed"]) as azure:
        result = tune_training(workspace=azure.workspace, sweep=Sweep(max_total_runs=4, max_concurrent_runs=2),
                               hyperparameters={"epochs": 3}, show_output=False)
    config = azure.submissions[0]
    assert type(config).__name__ == "HyperDriveConfig"
    assert [trial.state for trial in result.trials] == ["completed", "completed", "early-terminated", "failed"]
    assert result.best.number == 1 and result.best.metric == 0.97
    assert result.best.parameters["batch_size"] == 50 and result.best.parameters["first_layer_neurons"] == 50
    model = azure.registered_models[0]
    assert model.run_id == result.best.run_id and model.model_path == "outputs/model"
    assert model.tags["hp.batch_size"] == "50" and model.tags["hp.epochs"] == "3"
    assert model.tags["sweep_run_id"] == result.sweep_run_id
    assert result.to_dict()["model"] == {"name": "keras-mnist", "version": "1"}


def test_a_hyperdrive_sweep_with_no_completed_trial_registers_nothing():
    with FakeAzureML(trial_statuses=["Failed", "Failed"]) as azure, pytest.raises(TrainingFailed, match="No trial"):
        tune_training(workspace=azure.workspace, sweep=Sweep(max_total_runs=2, max_concurrent_runs=1),
                      show_output=False)
    assert azure.registered_models == []


# --- the local sweep, for real ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_local_sweep_stops_the_laggard_survives_a_failure_and_registers_the_best(tiny_mnist, tmp_path):
    sweep = Sweep(space={"quality": choice(0.88, 0.9, 0.1, -1.0)}, sampling="grid", max_total_runs=4,
                  max_concurrent_runs=2, policy=Bandit(slack_factor=0.1, evaluation_interval=1), seed=0)
    result = tune_training(source_dir=_quality_source(tmp_path), entry_script="train.py", data=tiny_mnist,
                           sweep=sweep, show_output=False)
    states = {trial.parameters["quality"]: trial.state for trial in result.trials}
    assert states == {0.88: "completed", 0.9: "completed", 0.1: "early-terminated", -1.0: "failed"}
    assert result.best.parameters == {"quality": 0.9} and result.best.metric == 0.9
    mlflow_client = client()
    children = mlflow_client.search_runs(
        [mlflow_client.get_run(result.sweep_run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.sweep_run_id}'")
    assert sorted(run.info.run_id for run in children) == sorted(trial.run_id for trial in result.trials)
    stopped = next(trial.run_id for trial in result.trials if trial.state == "early-terminated")
    assert {run.info.run_id: run.info.status for run in children}[stopped] == "KILLED"
    version = mlflow_client.search_model_versions("name = 'keras-mnist'")[0]
    assert version.run_id == result.best.run_id and version.tags["sweep_run_id"] == result.sweep_run_id
    assert mlflow_client.get_run(result.sweep_run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_ctrl_c_cancels_every_running_trial_and_leaves_no_process(tiny_mnist, tmp_path, monkeypatch):
    from kerasjob import local_sweep

    sweep = Sweep(space={"quality": choice(0.1, 0.15)}, sampling="grid", max_total_runs=2, max_concurrent_runs=2,
                  policy=None)
    seen: list = []
    real_poll = local_sweep.LocalSweep._poll

    def poll_then_interrupt(self):
        real_poll(self)
        states = [trial.run._state() for trial in self.running]
        if all("pid" in trial.run.log_tail() for trial in self.running) and len(self.running) == 2:
            seen.extend(pid for state in states for pid in state.get("child_pids", []))
            seen.extend(trial.run.id for trial in self.running)
            raise KeyboardInterrupt

    monkeypatch.setattr(local_sweep.LocalSweep, "_poll", poll_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        tune_training(source_dir=_quality_source(tmp_path), entry_script="train.py", data=tiny_mnist, sweep=sweep,
                      show_output=False)
    pids, run_ids = [p for p in seen if isinstance(p, int)], [r for r in seen if isinstance(r, str)]
    assert len(pids) == 2
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                              for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert {client().get_run(run_id).info.status for run_id in run_ids} == {"KILLED"}


@pytest.mark.slow
def test_cli_tune_json_on_the_packaged_script(tiny_mnist, capsys):
    args = ["tune", "--data-folder", str(tiny_mnist), "--epochs", "2", "--max-total-runs", "4",
            "--max-concurrent-runs", "2", "--seed", "0", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["trials"]) == 4
    assert all(set(trial) >= {"parameters", "metric", "state", "run_id"} for trial in result["trials"])
    completed = [t for t in result["trials"] if t["state"] == "completed"]
    assert result["best"]["metric"] == max(t["metric"] for t in completed)
    assert result["model"] == {"name": "keras-mnist", "version": "1"}
    assert set(result["best"]["parameters"]) == {"batch_size", "first_layer_neurons", "second_layer_neurons",
                                                 "learning_rate"}


def test_cli_tune_bad_input_exits_2(capsys):
    assert main(["tune", "--max-total-runs", "2", "--max-concurrent-runs", "3", "--data-folder", "/nonexistent"]) == 2
    assert main(["tune", "--primary-metric", "val_acc", "--data-folder", "/nonexistent"]) == 2
    assert main(["tune", "--sampling", "hyperband"]) == 2
    assert "sampling" in capsys.readouterr().err



# --- Azure ML v2 sweeps, against the fake MLClient operation groups -----------------------------------------


def test_the_space_translates_to_an_azure_ml_v2_sweep_job_that_load_job_reads_back(tmp_path):
    from azure.ai.ml import load_job

    from kerasjob import TrainingJob
    from kerasjob.sweep_v2 import build_sweep_job

    sweep_job = build_sweep_job(TrainingJob(hyperparameters={"epochs": 3}), Sweep(), environment="env:1")
    sweep_job._to_job().dump(tmp_path / "sweep.yml")  # dump the SweepJob, not the builder
    loaded = load_job(tmp_path / "sweep.yml")
    assert loaded.type == "sweep"
    assert {name: type(value).__name__ for name, value in loaded.search_space.items()} == {
        "batch_size": "Choice", "first_layer_neurons": "Choice", "second_layer_neurons": "Choice",
        "learning_rate": "LogUniform"}
    assert loaded.search_space["batch_size"].values == [25, 50, 100]
    assert (loaded.search_space["learning_rate"].min_value, loaded.search_space["learning_rate"].max_value) == (-6, -1)
    assert getattr(loaded.sampling_algorithm, "type", loaded.sampling_algorithm) == "random"
    assert (loaded.objective.primary_metric, loaded.objective.goal) == ("Accuracy", "maximize")
    assert (loaded.limits.max_total_trials, loaded.limits.max_concurrent_trials) == (20, 4)
    policy = loaded.early_termination
    assert (policy.type, policy.slack_factor, policy.evaluation_interval) == ("bandit", 0.1, 2)
    assert loaded.trial.command.startswith("python keras_mnist.py --data-folder ${{inputs.data_folder}}")
    assert loaded.inputs["epochs"] == 3


def test_an_azure_ml_v2_sweep_registers_the_best_trials_model():
    from kerasjob.testing import FakeMLClient

    metrics = [{"Accuracy": [0.9, 0.95]}, {"Accuracy": [0.9, 0.97]}, {"Accuracy": [0.4]}, {"Accuracy": [0.99]}]
    with FakeMLClient(trial_metrics=metrics, trial_statuses=["Completed", "Completed", "Canceled", "Failed"]) as azure:
        result = tune_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False,
                               sweep=Sweep(max_total_runs=4, max_concurrent_runs=2))
    assert azure.submissions[0].type == "sweep"
    by_metric = {trial.metric: trial.state for trial in result.trials}
    assert by_metric == {0.95: "completed", 0.97: "completed", 0.4: "early-terminated", 0.99: "failed"}
    assert result.best.metric == 0.97 and result.best.parameters["batch_size"] == 50
    model = azure.models["keras-mnist"][0]
    assert model.path == f"azureml://jobs/{result.best.run_id}/outputs/artifacts/paths/outputs/model/"
    assert model.tags["sweep_run_id"] == result.sweep_run_id and model.tags["hp.batch_size"] == "50"
    assert result.backend == "azureml-v2"
