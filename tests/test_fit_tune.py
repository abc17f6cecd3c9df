"""kerasjob.tune: a builder swept over its own hyperparameters, locally (Optuna, real trials) and on the Azure ML v2
fake; the preflight refuses a name the builder does not read and a metric the model does not log, before any trial."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kerasjob
from conftest import run_in_own_process
from kerasjob import Sweep, ValidationError, choice, loguniform
from kerasjob.testing import FakeMLClient

SPACE = {"units": choice(4, 8), "learning_rate": loguniform(-6, -3)}


def build_model(hyperparameters):  # type: ignore[no-untyped-def]
    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(int(hyperparameters["units"]), activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden), name="swept")
    model.compile(optimizer=keras.optimizers.Adam(float(hyperparameters["learning_rate"])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tiny_data(rows: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).random((rows, 4), dtype=np.float32)
    return x, (x[:, 0] * 3).astype("int64").clip(0, 2)


def sweep(**changes):  # type: ignore[no-untyped-def]
    return Sweep(space=SPACE, primary_metric="val_accuracy", max_total_runs=4, max_concurrent_runs=2, policy=None,
                 **changes)


@pytest.mark.slow
def test_a_four_trial_builder_sweep_runs_locally_and_registers_the_best_trial():
    x, y = tiny_data()
    result = kerasjob.tune(build_model, x, y, sweep=sweep(seed=3), epochs=1, batch_size=8,
                           validation_data=tiny_data(16, seed=1), show_output=False)
    assert len(result.trials) == 4 and all(t.state == "completed" for t in result.trials), result.trials
    assert {"units", "learning_rate"} <= set(result.best.parameters)
    assert result.best.metric == max(t.metric for t in result.trials if t.metric is not None)
    assert result.model_name == "build_model" and result.model_version == "1" and result.champion
    model = kerasjob.predict(f"{result.model_name}:{result.model_version}", x[:2])
    assert len(model.digits) == 2


def test_the_same_sweep_runs_on_the_v2_fake_with_the_data_asset_once():
    x, y = tiny_data()
    metrics = [{"val_accuracy": [0.4, 0.5 + 0.1 * i], "loss": [1.0]} for i in range(4)]
    with FakeMLClient(trial_metrics=metrics) as azure:
        result = kerasjob.tune(build_model, x, y, sweep=sweep(), epochs=1, validation_data=tiny_data(16, seed=1),
                               backend="azureml-v2", ml_client=azure.ml_client, show_output=False)
    assert len(result.trials) == 4 and result.best.metric == pytest.approx(0.8)
    assert [m.version for m in azure.models["build_model"]] == ["1"]
    assert [a.version for a in azure.data_assets["build_model-data"]] == ["1"]
    sent = azure.submissions[0]
    assert "--builder builder.pkl" in sent.trial.command and set(sent.search_space) == {"units", "learning_rate"}


def test_the_preflight_refuses_what_the_builder_or_model_cannot_do_before_any_trial(isolated_home):
    x, y = tiny_data()
    with pytest.raises(ValidationError) as caught:
        kerasjob.tune(build_model, x, y, space={**SPACE, "dropout": choice(0.1, 0.2)},
                      sweep=sweep(), validation_data=tiny_data(16))
    assert caught.value.argument == "space" and "dropout" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        kerasjob.tune(build_model, x, y, sweep=Sweep(space=SPACE, primary_metric="val_auc", max_total_runs=4),
                      validation_data=tiny_data(16))
    assert caught.value.argument == "primary_metric" and "val_accuracy" in str(caught.value)
    with pytest.raises(ValidationError, match="validation_data"):
        kerasjob.tune(build_model, x, y, sweep=sweep())  # val_accuracy without validation data
    assert not (isolated_home / "runs").exists()


def test_the_same_sweep_runs_as_hyperdrive_on_the_v1_fake(request):
    if run_in_own_process(request):
        return
    from kerasjob.testing import FakeAzureML

    x, y = tiny_data()
    metrics = [{"val_accuracy": [0.4, 0.5 + 0.1 * i]} for i in range(4)]
    with FakeAzureML(trial_metrics=metrics) as azure:
        result = kerasjob.tune(build_model, x, y, sweep=sweep(), epochs=1, validation_data=tiny_data(16, seed=1),
                               backend="azureml", workspace=azure.workspace, show_output=False)
    assert len(result.trials) == 4 and result.best.metric == pytest.approx(0.8)
    assert [m.name for m in azure.registered_models] == ["build_model"]
    assert len(azure.datasets["build_model-data"]) == 1
