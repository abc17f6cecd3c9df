"""A sweep followed by id from the CLI, on both fake Azure MLs (issue 21, defects 1 and 2).

- ``runs cancel SWEEP`` stops every trial: v1 through ``HyperDriveRun.cancel`` (the HyperDrive service's
  ``cancel_experiment``), not ``Run.cancel`` (a "canceled" event on the parent only); v2 through
  ``jobs.begin_cancel`` of the sweep, which the service carries to its trials.
- ``runs wait SWEEP`` ends as ``tune`` does: the best trial's model is registered, judged by the sweep's own
  metric and goal (the champion rule), once; a sweep parent's own model is never looked for.
"""

from __future__ import annotations

import pytest

from kerasjob import Sweep, TrainingJob
from kerasjob.cli import main
from kerasjob.testing import FakeAzureML, FakeMLClient

FAKES = {"azureml": FakeAzureML, "azureml-v2": FakeMLClient}
TRIALS = 3


def _start_sweep(backend: str, config) -> str:
    """Submit a 3-trial sweep without waiting (as ``tune`` does before it waits); its id."""
    job, sweep = TrainingJob(), Sweep(max_total_runs=TRIALS, max_concurrent_runs=TRIALS)
    if backend == "azureml":
        from kerasjob.backends.azureml import AzureMLBackend, new_run_id
        from kerasjob.tuning.hyperdrive import _sweep_config

        v1 = AzureMLBackend(workspace_config=str(config))
        run_id = new_run_id(job.experiment)
        return str(v1.submit_once(job.experiment, _sweep_config(v1, job, sweep, run_id), run_id).id)
    from kerasjob.backends.azureml_v2 import AzureMLv2Backend, submit_once
    from kerasjob.tuning.azureml_v2 import build_sweep_job

    v2 = AzureMLv2Backend(workspace_config=str(config))
    environment, data = v2.prepare(job)
    return str(submit_once(v2.ml_client, build_sweep_job(job, sweep, environment=environment, data=data),
                           experiment=job.experiment).name)


def _trial_states(backend: str, azure, sweep_id: str) -> list[str]:
    if backend == "azureml":
        return [azure.run(f"{sweep_id}_{index}").status(advance=False) for index in range(TRIALS)]
    return [azure.ml_client.jobs.get(f"{sweep_id}_{index}").status for index in range(TRIALS)]


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_runs_cancel_of_a_sweep_by_id_stops_every_trial(backend, workspace_config, capsys):
    workspace = ["--backend", backend, "--workspace-config", str(workspace_config)]
    with FAKES[backend](statuses=["Running"] * 50, trial_statuses=["Running"] * TRIALS) as azure:
        sweep_id = _start_sweep(backend, workspace_config)
        assert _trial_states(backend, azure, sweep_id) == ["Running"] * TRIALS
        assert main(["runs", "cancel", sweep_id, *workspace]) == 0
        assert capsys.readouterr().out.strip() == f"Run {sweep_id}: canceled"
        assert _trial_states(backend, azure, sweep_id) == ["Canceled"] * TRIALS
        if backend == "azureml":  # the HyperDrive service's cancel, not run history's "canceled" event
            assert ("HyperDrive.cancel", sweep_id) in azure.calls
            assert ("Run.cancel", sweep_id) not in azure.calls


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_runs_wait_on_a_sweep_registers_the_best_trial_under_the_sweeps_own_rule(backend, workspace_config,
                                                                                   capsys):
    workspace = ["--backend", backend, "--workspace-config", str(workspace_config)]
    metrics = [{"Accuracy": [0.9, 0.95]}, {"Accuracy": [0.9, 0.97]}, {"Accuracy": [0.96]}]
    with FAKES[backend](statuses=["Running"] * 2, trial_metrics=metrics,
                        trial_statuses=["Completed", "Completed", "Failed"]) as azure:
        sweep_id = _start_sweep(backend, workspace_config)
        for _ in range(2):  # waiting twice registers once
            assert main(["runs", "wait", sweep_id, "--quiet", *workspace]) == 0
            out = capsys.readouterr().out
            assert f"Sweep {sweep_id} completed: best trial {sweep_id}_1 (Accuracy 0.9700)." in out
            assert "Model 'keras-mnist' version 1 registered (champion)." in out
        if backend == "azureml":
            [model] = azure.registered_models
            run_id, path, tags = model.run_id, model.model_path, model.tags
            assert path == "outputs/model"
        else:
            [entity] = azure.models["keras-mnist"]
            run_id, path, tags = entity.tags["kerasjob.job"], entity.path, entity.tags
            assert path == f"azureml://jobs/{sweep_id}_1/outputs/artifacts/paths/outputs/model/"
        assert run_id == f"{sweep_id}_1"
        assert tags["sweep_run_id"] == sweep_id
        assert (tags["primary_metric"], tags["goal"]) == ("Accuracy", "maximize")


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_runs_wait_on_a_sweep_with_no_completed_trial_refuses_and_registers_nothing(backend, workspace_config,
                                                                                     capsys):
    workspace = ["--backend", backend, "--workspace-config", str(workspace_config)]
    with FAKES[backend](statuses=[], trial_statuses=["Failed"] * TRIALS) as azure:
        sweep_id = _start_sweep(backend, workspace_config)
        assert main(["runs", "wait", sweep_id, "--quiet", *workspace]) == 1
        err = capsys.readouterr().err
        assert f"No trial of sweep {sweep_id} completed" in err and "Traceback" not in err
    assert (azure.registered_models if backend == "azureml" else azure.models) in ([], {})


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_ctrl_c_during_runs_wait_on_a_sweep_stops_every_trial_and_exits_130(backend, workspace_config, capsys):
    workspace = ["--backend", backend, "--workspace-config", str(workspace_config)]
    with FAKES[backend](statuses=["Running"] * 50, trial_statuses=["Running"] * TRIALS) as azure:
        sweep_id = _start_sweep(backend, workspace_config)
        azure.interrupt_after = azure._status_reads + 3
        assert main(["runs", "wait", sweep_id, "--quiet", *workspace]) == 130
        assert _trial_states(backend, azure, sweep_id) == ["Canceled"] * TRIALS
        if backend == "azureml":
            assert ("HyperDrive.cancel", sweep_id) in azure.calls
    assert "canceled" in capsys.readouterr().err
