"""The registry keeps the best model on top (the champion alias, a tag on Azure), registration happens once per
run, a registered model is named in every MLflow form, and local runs and models are listed in kerasjob's words."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from kerasjob import Sweep, TrainingJob, ValidationError, choice, submit_training, tune_training
from kerasjob.backends.base import RunStatus
from kerasjob.champion import CHAMPION, SUBMIT_CRITERION, Criterion, check_alias, metric_tags, tag_aliases
from kerasjob import local_runs, tracking
from kerasjob.testing import FakeAzureML, FakeMLClient

# A training script of the user's that logs a chosen "Final test accuracy" and writes a model folder: real local
# runs (child process, supervisor, MLflow store) in a few seconds, with no TensorFlow.
SCORED_SCRIPT = """
import argparse, os
import mlflow
parser = argparse.ArgumentParser()
parser.add_argument("--data-folder")
parser.add_argument("--accuracy", type=float)
args = parser.parse_args()
with mlflow.start_run():
    mlflow.log_metric("Accuracy", args.accuracy)
    mlflow.log_metric("Final test accuracy", args.accuracy)
os.makedirs("outputs/model", exist_ok=True)
with open("outputs/model/accuracy.txt", "w") as stream:
    stream.write(str(args.accuracy))
"""


def _scored_job(tmp_path: Path, data: Path) -> TrainingJob:
    source = tmp_path / "scored-src"
    source.mkdir(exist_ok=True)
    (source / "train.py").write_text(SCORED_SCRIPT)
    return TrainingJob(source_dir=source, entry_script="train.py", data=data, hyperparameters={"accuracy": 0.5})


# --- the rule -----------------------------------------------------------------------------------------------


def test_a_newcomer_must_strictly_beat_the_champion_in_the_metrics_direction():
    assert SUBMIT_CRITERION == Criterion("Final test accuracy", "maximize")
    assert SUBMIT_CRITERION.prefers(0.97, 0.96) and not SUBMIT_CRITERION.prefers(0.96, 0.97)
    assert not SUBMIT_CRITERION.prefers(0.97, 0.97)                       # a tie keeps the old champion
    assert not SUBMIT_CRITERION.prefers(0.9700001, "0.97")               # compared as the tags keep them
    assert Criterion("Loss", "minimize").prefers(0.2, 0.3) and not Criterion("Loss", "minimize").prefers(0.3, 0.2)
    assert not SUBMIT_CRITERION.prefers(None, 0.5) and not SUBMIT_CRITERION.prefers(0.9, None)
    assert not SUBMIT_CRITERION.prefers(math.nan, 0.5)
    with pytest.raises(ValidationError, match="goal"):
        Criterion("Loss", "lower")


def test_the_tags_record_every_metric_and_the_criterion_it_was_judged_by():
    tags = metric_tags({"Final test accuracy": 0.968123456, "Loss": 0.1, "flag": True, "bad": math.nan},
                       SUBMIT_CRITERION)
    assert tags == {"Final test accuracy": "0.968123", "Loss": "0.1", "primary_metric": "Final test accuracy",
                    "goal": "maximize"}
    assert tag_aliases({"champion": "true", "hp.shuffle": "true", "run_id": "r"}) == ("champion",)


@pytest.mark.parametrize("alias", ["", "latest", "LATEST", "v1", "V12", "has space", "a/b", "x" * 256, 3])
def test_alias_names_follow_mlflows_rules(alias):
    with pytest.raises(ValidationError) as caught:
        check_alias(alias)
    assert caught.value.argument == "alias"


def test_good_alias_names_pass():
    assert [check_alias(alias) for alias in ("champion", "prod-2", "v1beta", "x" * 255)] == [
        "champion", "prod-2", "v1beta", "x" * 255]


# --- a local store, made with MLflow's own client (no training) ------------------------------------------------


def _store() -> dict[str, str]:
    """Three runs, a sweep with two trials (one canceled) and three versions of keras-mnist, champion 2."""
    from mlflow.entities import Metric, Param

    uri = tracking.tracking_uri()
    tracking.ensure_store_writable(uri)
    client = tracking.client(uri)
    experiment = tracking.get_or_create_experiment(client, "keras-mnist", uri)
    ids: dict[str, str] = {}

    def run(key: str, status: str, metrics: dict, params: dict | None = None, tags: dict | None = None) -> str:
        created = client.create_run(experiment, tags={"kerasjob.backend": "local", **(tags or {})},
                                    run_name=key)
        client.log_batch(created.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)) for k, v in (params or {}).items()])
        if status != "RUNNING":
            client.set_terminated(created.info.run_id, status)
        ids[key] = created.info.run_id
        return created.info.run_id

    for index in range(3):
        run(f"run{index}", "FINISHED", {"Final test accuracy": 0.9 + index / 100})
    sweep = run("sweep", "FINISHED", {"best Accuracy": 0.95}, {"primary_metric": "Accuracy", "goal": "maximize"},
                {"kerasjob.sweep": "true"})
    run("trial0", "KILLED", {"Accuracy": 0.5}, tags={"mlflow.parentRunId": sweep})
    run("trial1", "FINISHED", {"Accuracy": 0.95}, tags={"mlflow.parentRunId": sweep})
    run("running", "RUNNING", {})
    client.create_registered_model("keras-mnist")
    for index in range(3):
        client.create_model_version("keras-mnist", f"file:///nowhere/{ids[f'run{index}']}/artifacts/outputs/model",
                                    run_id=ids[f"run{index}"],
                                    tags={"primary_metric": "Final test accuracy",
                                          "Final test accuracy": str(0.9 + index / 100), "hp.epochs": "2"})
    client.set_registered_model_alias("keras-mnist", CHAMPION, "2")
    return ids


def test_runs_are_listed_newest_first_with_trials_under_their_sweep_in_kerasjobs_words():
    ids = _store()
    rows = local_runs.list_runs()
    assert [row["name"] for row in rows] == ["running", "sweep", "trial0", "trial1", "run2", "run1", "run0"]
    by_name = {row["name"]: row for row in rows}
    assert {row["status"] for row in rows} <= {status.value for status in RunStatus}
    assert by_name["trial0"]["status"] == "canceled" and by_name["run0"]["status"] == "completed"
    assert by_name["running"]["status"] == "running" and by_name["running"]["duration_s"] >= 0
    assert by_name["trial1"]["parent_run_id"] == ids["sweep"] and by_name["run0"]["parent_run_id"] is None
    assert by_name["sweep"]["is_sweep"] and not by_name["trial1"]["is_sweep"]
    assert (by_name["sweep"]["primary_metric"], by_name["sweep"]["primary_metric_value"]) == ("Accuracy", 0.95)
    assert (by_name["trial0"]["primary_metric"], by_name["trial0"]["primary_metric_value"]) == ("Accuracy", 0.5)
    assert (by_name["run1"]["primary_metric"], by_name["run1"]["primary_metric_value"]) == ("Final test accuracy",
                                                                                            0.91)
    assert set(by_name["run1"]) == {"run_id", "mlflow_run_id", "name", "experiment", "status", "start_time",
                                    "duration_s",
                                    "primary_metric", "primary_metric_value", "backend", "parent_run_id", "is_sweep"}
    assert by_name["run1"]["backend"] == "local" and by_name["run1"]["experiment"] == "keras-mnist"
    assert isinstance(by_name["run1"]["start_time"], int)
    json.dumps(rows)  # JSON-ready as it is
    # --limit counts runs, not trials: the sweep keeps its trials
    assert [row["name"] for row in local_runs.list_runs(limit=2)] == ["running", "sweep", "trial0", "trial1"]
    assert local_runs.list_runs(experiment="another") == []


def test_the_fast_sqlite_reader_and_mlflows_client_give_the_same_answers(monkeypatch):
    ids = _store()
    assert isinstance(tracking.open_view(), tracking.SqliteView)

    def answers() -> object:  # a running run's duration grows between two reads
        return _without_durations([local_runs.list_runs(), local_runs.list_models(),
                                   local_runs.show_model("keras-mnist"), tracking.show_run(ids["trial0"])])

    fast = answers()
    monkeypatch.setattr(tracking, "SCHEMA_REVISION", "a-revision-this-kerasjob-never-read")
    assert isinstance(tracking.open_view(), tracking.ClientView)
    assert answers() == fast


def _without_durations(value: object) -> object:
    if isinstance(value, dict):
        return {key: _without_durations(each) for key, each in value.items() if key != "duration_s"}
    if isinstance(value, list):
        return [_without_durations(each) for each in value]
    return value


def test_reading_an_empty_home_creates_no_store(isolated_home):
    assert local_runs.list_runs() == [] and local_runs.list_models() == []
    assert not (isolated_home / "mlflow.db").exists()
    with pytest.raises(ValidationError) as caught:
        local_runs.list_runs(limit=0)
    assert caught.value.argument == "limit"


def test_show_run_speaks_kerasjobs_words():
    ids = _store()
    shown = tracking.show_run(ids["trial0"])
    assert shown["status"] == "canceled" and shown["parent_run_id"] == ids["sweep"]
    assert shown["url"] == tracking.tracking_uri() and "tracking_uri" not in shown
    assert shown["metrics"] == {"Accuracy": 0.5} and shown["experiment"] == "keras-mnist"
    with pytest.raises(ValidationError):
        tracking.show_run("no-such-run")
    assert {word: tracking.run_status(word).value for word in tracking.RUN_STATUS} == {
        "SCHEDULED": "queued", "RUNNING": "running", "FINISHED": "completed", "FAILED": "failed",
        "KILLED": "canceled"}


def test_models_are_listed_and_shown_with_their_champion():
    ids = _store()
    (model,) = local_runs.list_models()
    assert model == {"name": "keras-mnist", "versions": 3, "latest_version": "3", "champion_version": "2",
                     "aliases": {"champion": "2"}, "primary_metric": "Final test accuracy",
                     "primary_metric_value": 0.91}
    shown = local_runs.show_model("keras-mnist", version=2)
    assert shown["champion_version"] == "2" and shown["latest_version"] == "3"
    (version,) = shown["versions"]
    assert version["aliases"] == ["champion"] and version["run_id"] == ids["run1"]
    assert version["metrics"] == {"Final test accuracy": 0.91} and version["hyperparameters"] == {"epochs": "2"}
    assert version["source"].endswith("/artifacts/outputs/model") and isinstance(version["created"], int)
    assert len(local_runs.show_model("keras-mnist")["versions"]) == 3
    with pytest.raises(ValidationError, match="registered: keras-mnist"):
        local_runs.show_model("keras-mnits")
    with pytest.raises(ValidationError) as caught:
        local_runs.show_model("keras-mnist", version=7)
    assert caught.value.argument == "version" and "1, 2, 3" in str(caught.value)


@pytest.mark.parametrize("reference, version", [
    ("keras-mnist", "2"), ("models:/keras-mnist", "2"), ("keras-mnist@champion", "2"),
    ("models:/keras-mnist@champion", "2"), ("keras-mnist@staging", "1"), ("keras-mnist:3", "3"),
    ("keras-mnist/1", "1"), ("models:/keras-mnist/3", "3"), ("models:/keras-mnist:1", "1"),
])
def test_every_reference_form_names_one_version(reference, version):
    from kerasjob.prediction import model_location

    _store()
    local_runs.set_model_alias("keras-mnist", 1, alias="staging")
    assert local_runs.resolve_model(reference).version == version
    assert model_location(reference) == (f"models:/keras-mnist/{version}", tracking.tracking_uri())


def test_a_bare_name_without_champion_means_the_latest_version():
    from mlflow import MlflowClient

    _store()
    MlflowClient(tracking.tracking_uri()).delete_registered_model_alias("keras-mnist", CHAMPION)
    assert local_runs.resolve_model("keras-mnist").version == "3"
    assert local_runs.resolve_model("keras-mnist", version=1).version == "1"


@pytest.mark.parametrize("reference, version, argument, words", [
    ("keras mnist", None, "model", "'NAME@ALIAS'"),
    ("keras-mnits", None, "model", "registered: keras-mnist"),
    ("keras-mnist:9", None, "version", "one of 1, 2, 3"),
    ("keras-mnist@prod", None, "alias", "its aliases: champion"),
    ("keras-mnist:2", "3", "version", "names one already"),
])
def test_a_reference_that_names_nothing_is_refused_with_what_there_is(reference, version, argument, words):
    _store()
    with pytest.raises(ValidationError) as caught:
        local_runs.resolve_model(reference, version)
    assert caught.value.argument == argument and words in str(caught.value)


def test_an_alias_is_moved_by_hand_and_checked_before_anything_changes():
    _store()
    shown = local_runs.set_model_alias("keras-mnist", "3")
    assert shown["champion_version"] == "3" and shown["versions"][0]["aliases"] == ["champion"]
    assert local_runs.resolve_model("keras-mnist").version == "3"
    for bad in ({"alias": "latest"}, {"alias": "v2"}, {"version": 9}):
        with pytest.raises(ValidationError):
            local_runs.set_model_alias("keras-mnist", **{"version": 1, **bad})
    assert local_runs.list_models()[0]["aliases"] == {"champion": "3"}


# --- Azure: the alias is a tag ---------------------------------------------------------------------------------


def _v1_models(azure):
    return [(str(model.version), model.tags.get(CHAMPION)) for model in azure.registered_models]


def _v2_models(azure):
    return [(str(model.version), (model.tags or {}).get(CHAMPION)) for model in azure.models.get("keras-mnist", [])]


@pytest.mark.parametrize("fake, arguments, models", [
    (FakeAzureML, lambda azure: {"workspace": azure.workspace}, _v1_models),
    (FakeMLClient, lambda azure: {"backend": "azureml-v2", "ml_client": azure.ml_client}, _v2_models),
], ids=["v1", "v2"])
def test_on_azure_the_champion_tag_moves_only_to_a_better_model(fake, arguments, models):
    results = []
    with fake(metrics={"Final test accuracy": 0.90}) as azure:
        for accuracy in (0.90, 0.95, 0.95, 0.93):
            azure.metrics = {"Final test accuracy": accuracy}
            results.append(submit_training(show_output=False, **arguments(azure)))
    assert [result.champion for result in results] == [True, True, False, False]
    assert models(azure) == [("1", None), ("2", "true"), ("3", None), ("4", None)]
    assert results[1].to_dict()["model"] == {"name": "keras-mnist", "version": "2", "champion": True}
    assert "url" in results[0].to_dict() and "tracking_uri" not in results[0].to_dict()
    if fake is FakeAzureML:
        assert azure.service_calls.count("Model.update") == 1  # the tag taken off version 1; 2 was born with it


@pytest.mark.parametrize("fake, arguments, models", [
    (FakeAzureML, lambda azure: {"workspace": azure.workspace}, _v1_models),
    (FakeMLClient, lambda azure: {"backend": "azureml-v2", "ml_client": azure.ml_client}, _v2_models),
], ids=["v1", "v2"])
def test_on_azure_a_short_sweep_never_dethrones_a_better_model(fake, arguments, models):
    trials = [{"Accuracy": [0.6, 0.64]}, {"Accuracy": [0.645]}]
    with fake(metrics={"Final test accuracy": 0.968, "Accuracy": [0.9, 0.968]}, trial_metrics=trials) as azure:
        submitted = submit_training(show_output=False, **arguments(azure))
        tuned = tune_training(sweep=Sweep(max_total_runs=2, max_concurrent_runs=2), show_output=False,
                              **arguments(azure))
    assert submitted.champion and not tuned.champion and tuned.best.metric == 0.645
    assert models(azure) == [("1", "true"), ("2", None)]
    assert tuned.to_dict()["model"]["champion"] is False and tuned.to_dict()["goal"] == "maximize"


@pytest.mark.parametrize("fake, arguments", [
    (FakeAzureML, lambda azure: {"workspace": azure.workspace}),
    (FakeMLClient, lambda azure: {"backend": "azureml-v2", "ml_client": azure.ml_client}),
], ids=["v1", "v2"])
def test_on_azure_a_run_registers_at_most_once(fake, arguments):
    from kerasjob.run import finish_attached_run, register_trained_model

    with fake(metrics={"Final test accuracy": 0.9}) as azure:
        result = submit_training(show_output=False, **arguments(azure))
        again = register_trained_model(result.run, TrainingJob())
        waited = finish_attached_run(result.run)  # `kerasjob runs wait ID` on a run that registered already
    assert (again.new, again.model.version, again.champion) == (False, "1", True)
    assert (waited.model_version, waited.champion, waited.status) == ("1", True, "completed")
    assert len(azure.registered_models if fake is FakeAzureML else azure.models["keras-mnist"]) == 1


# --- sweeps: the goal, fixed hyperparameters, the dry run -----------------------------------------------------


def test_a_loss_is_minimized_unless_told_otherwise_and_the_goal_reaches_every_sweeper():
    import optuna

    from kerasjob.tuning.local import create_study

    assert Sweep().goal == "maximize" and Sweep(primary_metric="Loss").goal == "minimize"
    assert Sweep(primary_metric="Final test loss", goal="maximize").goal == "maximize"
    with pytest.raises(ValidationError) as caught:
        Sweep(goal="down")
    assert caught.value.argument == "goal"
    assert create_study(Sweep(primary_metric="Loss")).direction == optuna.study.StudyDirection.MINIMIZE


def test_the_goal_reaches_hyperdrive_and_the_v2_sweep_job():
    from azureml.core import ScriptRunConfig

    from kerasjob.tuning.azureml_v2 import build_sweep_job
    from kerasjob.tuning.hyperdrive import build_hyperdrive_config

    sweep = Sweep(primary_metric="Loss")
    script = ScriptRunConfig(source_directory=".", script="keras_mnist.py", arguments=["--epochs", 3])
    assert build_hyperdrive_config(sweep, script)._primary_metric_config == {"name": "Loss", "goal": "minimize"}
    job = build_sweep_job(TrainingJob(), sweep, environment="env:1")
    assert (job.objective.primary_metric, job.objective.goal.lower()) == ("Loss", "minimize")


def test_a_fixed_hyperparameter_is_set_and_not_swept_and_the_dry_run_starts_nothing(isolated_home):
    plan = tune_training(fixed={"batch_size": 64, "epochs": 1}, dry_run=True, data=None)
    assert sorted(plan.space) == ["first_layer_neurons", "learning_rate", "second_layer_neurons"]
    assert plan.fixed == {"batch_size": 64, "epochs": 1} and plan.goal == "maximize" and plan.trials == 20
    arguments = plan.trial.script_arguments
    assert arguments[arguments.index("--batch-size") + 1] == "64"
    assert arguments[arguments.index("--learning-rate") + 1] == "<swept>"
    assert "champion" in plan.model_registration and "champion" in plan.describe()
    assert json.dumps(plan.to_dict())
    assert not isolated_home.exists() or not any(isolated_home.iterdir())  # nothing started, no store


@pytest.mark.parametrize("fixed, argument", [
    ({"batch_size": 50, "first_layer_neurons": 10, "second_layer_neurons": 10, "learning_rate": 0.1}, "fixed"),
    ({"batch_sise": 50}, "hyperparameters"),
    ({"batch_size": 0}, "hyperparameters['batch_size']"),
    (["batch_size"], "fixed"),
])
def test_a_bad_fixed_hyperparameter_is_refused_before_anything_starts(fixed, argument, isolated_home):
    with pytest.raises(ValidationError) as caught:
        tune_training(fixed=fixed, data=None, show_output=False)
    assert caught.value.argument == argument
    assert not (isolated_home / "runs").exists()


# --- real local runs --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_local_submits_crown_only_a_better_model_and_register_once(tiny_mnist, tmp_path):
    from kerasjob.backends.local import LocalBackend, LocalRun
    from kerasjob.run import finish_attached_run, register_trained_model

    job = _scored_job(tmp_path, tiny_mnist)
    results = [submit_training(job, hyperparameters={"accuracy": accuracy}, show_output=False)
               for accuracy in (0.90, 0.95, 0.95, 0.93)]
    assert [result.champion for result in results] == [True, True, False, False]
    assert [result.model_version for result in results] == ["1", "2", "3", "4"]
    assert local_runs.list_models()[0]["champion_version"] == "2"
    assert {"url", "status", "model"} <= set(results[0].to_dict()) and results[0].status == "completed"

    again = register_trained_model(LocalRun.from_id(results[1].run_id), job)
    assert (again.new, again.model.version, again.champion) == (False, "2", True)
    assert local_runs.list_models()[0]["versions"] == 4

    started = submit_training(job, hyperparameters={"accuracy": 0.99}, wait=False)
    waited = [finish_attached_run(LocalBackend().attach(started.id)) for _ in range(2)]
    assert [(each.model_version, each.champion) for each in waited] == [("5", True), ("5", True)]
    assert local_runs.list_models()[0]["versions"] == 5 and local_runs.resolve_model("keras-mnist").version == "5"
    folder = local_runs.download_registered_model("keras-mnist", None, tmp_path / "champion")
    assert (folder / "accuracy.txt").read_text() == "0.99"


@pytest.mark.slow
def test_a_one_epoch_sweep_never_dethrones_a_better_model(tiny_mnist):
    from kerasjob.backends.local import LocalRun

    submitted = submit_training(data=tiny_mnist, hyperparameters={"epochs": 3, "batch_size": 32}, show_output=False)
    assert submitted.champion and submitted.model_version == "1"
    tuned = tune_training(data=tiny_mnist, sweep=Sweep(space={"batch_size": choice(32)}, max_total_runs=1,
                                                       max_concurrent_runs=1, policy=None),
                          fixed={"epochs": 1, "learning_rate": 1e-7}, show_output=False)
    assert tuned.best.metric < submitted.metrics["Accuracy"]  # the premise: the sweep's model is the worse one
    assert tuned.model_version == "2" and not tuned.champion
    model = local_runs.show_model("keras-mnist")
    assert model["champion_version"] == "1" and model["versions"][1]["tags"]["sweep_run_id"] == tuned.sweep_run_id
    assert local_runs.resolve_model("keras-mnist").version == "1"

    rows = local_runs.list_runs()
    mlflow_ids = [LocalRun.from_id(run_id).mlflow_run_id for run_id in (tuned.best.run_id, submitted.run_id)]
    assert [row["mlflow_run_id"] for row in rows] == [tuned.sweep_run_id, *mlflow_ids]
    assert all(LocalRun.from_id(row["run_id"]).mlflow_run_id == row["mlflow_run_id"] for row in rows[1:])
    assert rows[1]["parent_run_id"] == tuned.sweep_run_id and rows[0]["is_sweep"]
    assert [row["status"] for row in rows] == ["completed"] * 3
    assert rows[0]["primary_metric"] == "Accuracy" and math.isclose(rows[0]["primary_metric_value"],
                                                                      tuned.best.metric, rel_tol=1e-6)
    assert math.isclose(rows[2]["primary_metric_value"], submitted.metrics["Final test accuracy"], rel_tol=1e-6)
    assert os.environ["KERASJOB_HOME"] in tracking.tracking_uri()
