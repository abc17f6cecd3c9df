"""Azure ML v1 as azureml-core really behaves, one test per defect the SDK read found (issue 11).

azureml-core's own ``Run.wait_for_completion``, ``HyperDriveRun``, ``ComputeTarget`` and ``Dataset`` code runs
over the fake service (kerasjob.testing.FakeAzureML)."""

from __future__ import annotations

import logging

import pytest

from kerasjob import Sweep, TrainingFailed, choice, submit_training, tune_training
from kerasjob.errors import AccessDenied
from kerasjob.testing import FakeAzureML
from kerasjob.testing.azureml_v1 import LostResponse


def submit(azure, **kwargs):
    return submit_training(workspace=azure.workspace, show_output=False, **kwargs)


def tune(azure, sweep: Sweep, **kwargs):
    return tune_training(workspace=azure.workspace, sweep=sweep, **{"show_output": False, **kwargs})


# --- D5: Ctrl-C and failures inside Run.wait_for_completion -----------------------------------------------


def test_ctrl_c_inside_the_sdks_hyperdrive_wait_cancels_the_sweep_on_the_service(capsys):
    """With show_output, wait_for_completion turns the interrupt into ExperimentExecutionException."""
    with FakeAzureML(statuses=["Running"] * 20, interrupt_after=6) as azure, pytest.raises(KeyboardInterrupt):
        tune(azure, Sweep(max_total_runs=2, max_concurrent_runs=2), show_output=True)
    sweep = azure.runs[0]
    assert sweep.run_type == "hyperdrive" and sweep.canceled
    assert "HyperDrive.cancel" in azure.service_calls and azure.registered_models == []


def test_a_failed_sweep_is_training_failed_not_the_sdks_activity_failed():
    with FakeAzureML(final_status="Failed", trial_statuses=["Failed", "Failed"]) as azure, \
            pytest.raises(TrainingFailed, match="No trial"):
        tune(azure, Sweep(max_total_runs=2, max_concurrent_runs=1), show_output=True)
    assert azure.registered_models == []


# --- D6: a create is never sent twice ------------------------------------------------------------------------


def test_a_lost_submit_response_makes_exactly_one_run():
    with FakeAzureML(failures={"Experiment.submit": [LostResponse(ConnectionResetError("reset"))]}) as azure:
        result = submit(azure)
    assert [run.run_id for run in azure.runs] == [result.run_id]
    assert azure.service_calls.count("Experiment.submit") == 1 and "Run.get" in azure.service_calls


def test_a_lost_sweep_submit_response_makes_exactly_one_sweep():
    with FakeAzureML(failures={"Experiment.submit": [LostResponse(ConnectionResetError("reset"))]}) as azure:
        result = tune(azure, Sweep(max_total_runs=2, max_concurrent_runs=2))
    assert [run.run_id for run in azure.runs] == [result.sweep_run_id]


def test_a_lost_registration_response_makes_exactly_one_model_version():
    with FakeAzureML(failures={"Run.register_model": [LostResponse(ConnectionResetError("reset"))]}) as azure:
        result = submit(azure)
    assert [(model.name, model.version) for model in azure.registered_models] == [("keras-mnist", 1)]
    assert result.model_version == "1" and "Model.list" in azure.service_calls


def test_a_create_that_failed_before_landing_is_sent_again_under_the_same_id():
    with FakeAzureML(failures={"Experiment.submit": [ConnectionResetError("reset")]}) as azure:
        result = submit(azure)
    assert azure.service_calls.count("Experiment.submit") == 2 and [r.run_id for r in azure.runs] == [result.run_id]


# --- D12: trials read back as HyperDrive reports them ---------------------------------------------------------


def test_trials_come_back_in_hyperdrive_order_with_the_scripts_types():
    sweep = Sweep(space={"batch_size": choice(25, 50, 100), "learning_rate": choice(0.01, 0.001)},
                  max_total_runs=12, max_concurrent_runs=4)
    with FakeAzureML() as azure:
        result = tune(azure, sweep)
    assert [trial.run_id.rsplit("_", 1)[-1] for trial in result.trials] == [str(i) for i in range(12)]
    assert [trial.parameters["batch_size"] for trial in result.trials[:4]] == [25, 50, 100, 25]
    assert all(type(trial.parameters["batch_size"]) is int for trial in result.trials)
    assert all(type(trial.parameters["learning_rate"]) is float for trial in result.trials)
    base = [str(argument) for argument in azure.submissions[0].run_config.arguments]
    assert "--batch-size" not in base and "--learning-rate" not in base  # HyperDrive appends the sampled ones
    assert "--first-layer-neurons" in base and "--epochs" in base


def test_a_custom_scripts_string_values_are_kept_and_a_seed_is_reported_as_ignored(tmp_path, caplog):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("import argparse\n")
    sweep = Sweep(space={"activation": choice("relu", "tanh")}, max_total_runs=2, max_concurrent_runs=2, seed=7)
    with FakeAzureML() as azure, caplog.at_level(logging.WARNING):
        result = tune(azure, sweep, source_dir=source, entry_script="train.py")
    assert [trial.parameters["activation"] for trial in result.trials] == ["relu", "tanh"]
    assert "seed is ignored by HyperDrive" in caplog.text


# --- D13, D14: only "not found" means create or register --------------------------------------------------------


@pytest.mark.parametrize("status", [403, 500])
def test_a_compute_error_that_is_not_not_found_creates_nothing(status):
    with FakeAzureML(compute_errors={"gpu-cluster": status}) as azure, pytest.raises(Exception) as caught:
        submit(azure)
    assert "ComputeTarget.create" not in azure.service_calls and "Experiment.submit" not in azure.service_calls
    assert (type(caught.value) is AccessDenied) == (status == 403)


def test_reusing_a_cluster_of_another_vm_size_says_so(caplog):
    with FakeAzureML(computes={"gpu-cluster": "Standard_D2_v3"}) as azure, caplog.at_level(logging.WARNING):
        submit(azure)
    assert "ComputeTarget.create" not in azure.service_calls
    assert "Standard_D2_v3 differs from the job's Standard_NC4as_T4_v3" in caplog.text


def test_a_forbidden_dataset_is_not_taken_for_a_missing_one():
    with FakeAzureML(computes={"gpu-cluster"}, dataset_errors={"mnist-dataset": 403}) as azure, \
            pytest.raises(AccessDenied):
        submit(azure)
    assert "FileDataset.register" not in azure.service_calls and "Experiment.submit" not in azure.service_calls
