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
from kerasjob.backends.local import LocalRun
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


def test_loguniform_means_azures_exp_of_a_uniform_draw():
    import optuna

    from kerasjob.tuning.local import sample

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
    mlflow_id = {trial.run_id: LocalRun.from_id(trial.run_id).mlflow_run_id for trial in result.trials}
    assert sorted(run.info.run_id for run in children) == sorted(mlflow_id.values())
    stopped = next(trial.run_id for trial in result.trials if trial.state == "early-terminated")
    assert {run.info.run_id: run.info.status for run in children}[mlflow_id[stopped]] == "KILLED"
    (version,) = mlflow_client.search_model_versions("name = 'keras-mnist'")  # the trials registered nothing
    assert version.run_id == mlflow_id[result.best.run_id] and version.tags["sweep_run_id"] == result.sweep_run_id
    assert version.tags["run_id"] == result.best.run_id and result.champion
    assert mlflow_client.get_run(result.sweep_run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_ctrl_c_cancels_every_running_trial_and_leaves_no_process(tiny_mnist, tmp_path, monkeypatch):
    from kerasjob.tuning import local as local_sweep

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
    statuses = {client().get_run(LocalRun.from_id(run_id).mlflow_run_id).info.status for run_id in run_ids}
    assert statuses == {"KILLED"}


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
    assert result["model"] == {"name": "keras-mnist", "version": "1", "champion": True}
    assert set(result["best"]["parameters"]) == {"batch_size", "first_layer_neurons", "second_layer_neurons",
                                                 "learning_rate"}


def test_cli_tune_bad_input_exits_2(capsys):
    assert main(["tune", "--max-total-runs", "2", "--max-concurrent-runs", "3", "--data-folder", "/nonexistent"]) == 2
    assert main(["tune", "--primary-metric", "val_acc", "--data-folder", "/nonexistent"]) == 2
    assert main(["tune", "--sampling", "hyperband"]) == 2
    assert "sampling" in capsys.readouterr().err
