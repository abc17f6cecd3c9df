"""HyperDrive (Azure ML v1): the Sweep's translation, and sweeps run against the fake Azure ML v1."""

from __future__ import annotations

import pytest

from kerasjob import Bandit, Sweep, TrainingFailed, choice, quniform, tune_training, uniform
from kerasjob.testing import FakeAzureML


def test_the_space_translates_exactly_to_hyperdrive():
    from azureml.core import ScriptRunConfig

    from kerasjob.tuning.hyperdrive import build_hyperdrive_config

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
    assert result.to_dict()["model"] == {"name": "keras-mnist", "version": "1", "champion": True}


def test_a_hyperdrive_sweep_with_no_completed_trial_registers_nothing():
    with FakeAzureML(trial_statuses=["Failed", "Failed"]) as azure, pytest.raises(TrainingFailed, match="No trial"):
        tune_training(workspace=azure.workspace, sweep=Sweep(max_total_runs=2, max_concurrent_runs=1),
                      show_output=False)
    assert azure.registered_models == []
