"""Azure ML v2 sweeps: the Sweep's translation to command(...).sweep(...), and sweeps against the fake MLClient."""

from __future__ import annotations

from kerasjob import Sweep, tune_training


def test_the_space_translates_to_an_azure_ml_v2_sweep_job_that_load_job_reads_back(tmp_path):
    from azure.ai.ml import load_job

    from kerasjob import TrainingJob
    from kerasjob.tuning.azureml_v2 import build_sweep_job

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


def test_trial_timeout_and_seed_reach_the_sweep_job(tmp_path):
    from azure.ai.ml import load_job

    from kerasjob import TrainingJob
    from kerasjob.tuning.azureml_v2 import build_sweep_job

    sweep_job = build_sweep_job(TrainingJob(timeout=3600), Sweep(seed=7), environment="env:1")
    sweep_job._to_job().dump(tmp_path / "sweep.yml")
    loaded = load_job(tmp_path / "sweep.yml")
    assert loaded.limits.trial_timeout == 3600
    assert loaded.sampling_algorithm.seed == 7


def test_trials_are_read_from_run_records_skipping_unparseable_ones_and_the_service_names_the_best():
    from kerasjob.testing import FakeMLClient

    metrics = [{"Accuracy": [0.91]}, {"Accuracy": [0.93]}, {"Accuracy": [0.92]}]
    with FakeMLClient(trial_metrics=metrics, broken_children=1) as azure:
        result = tune_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False,
                               sweep=Sweep(max_total_runs=3, max_concurrent_runs=3))
        sweep = azure.ml_client.jobs.get(result.sweep_run_id)
    assert len(result.trials) == 3
    assert result.best.run_id == sweep.properties["best_child_run_id"] and result.best.metric == 0.93
    assert isinstance(result.best.parameters["batch_size"], int)
    assert isinstance(result.best.parameters["learning_rate"], float)
