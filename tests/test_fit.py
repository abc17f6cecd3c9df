"""kerasjob.fit on the local backend: your own model, a real child process, a real MLflow store, tiny data."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kerasjob
from kerasjob import TrainingJob, ValidationError
from kerasjob.data_package import package_data
from kerasjob.model_package import CUSTOM_OBJECTS_FILE, MODEL_FILE, package_model, pinned_conda_file
from kerasjob.snapshot import scan_snapshot

pytestmark = pytest.mark.slow


class DoubleIt(keras.layers.Layer):
    """A custom layer of the caller's own module: not importable in the job, so it travels by value."""

    def call(self, inputs):  # type: ignore[no-untyped-def]
        return inputs * 2.0


def tiny_classifier(name: str = "tiny-net", units: int = 8):  # type: ignore[no-untyped-def]
    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(units, activation="relu")(DoubleIt()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden), name=name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tiny_data(rows: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    x = generator.random((rows, 4), dtype=np.float32)
    return x, (x[:, 0] * 3).astype("int64").clip(0, 2)


def test_fit_trains_registers_and_gives_back_history_and_the_model(tmp_path):
    x, y = tiny_data()
    result = kerasjob.fit(tiny_classifier(), x, y, epochs=2, batch_size=16, validation_data=tiny_data(16, seed=1),
                          show_output=False)
    assert result.status == "completed" and result.model_name == "tiny-net"  # named after the model, not keras-mnist
    assert len(result.history["loss"]) == 2 and len(result.history["val_accuracy"]) == 2
    assert result.metrics["val_accuracy"] == pytest.approx(result.history["val_accuracy"][-1], abs=1e-6)
    assert result.champion  # the first version of the model
    model = result.load_model()
    assert isinstance(model.layers[1], DoubleIt) and model.predict(x[:5], verbose=0).shape == (5, 3)
    prediction = kerasjob.predict(result, x[:5])  # through the MLflow signature: (n, 4) float32
    assert len(prediction.digits) == 5 and len(prediction.probabilities[0]) == 3
    np.save(tmp_path / "rows.npy", x[:3])
    assert len(kerasjob.predict(f"{result.model_name}:{result.model_version}", tmp_path / "rows.npy").digits) == 3
    with pytest.raises(ValidationError, match="shape"):
        kerasjob.predict(result, np.zeros((2, 7), dtype="float32"))
    with pytest.raises(ValidationError, match="images only go to image models"):
        kerasjob.predict(result, [str(tmp_path / "rows.npy"), str(tmp_path / "rows.npy")])

    from kerasjob.local_runs import list_runs

    row = list_runs(limit=1)[0]
    assert row["primary_metric"] == "val_accuracy" and row["primary_metric_value"] == pytest.approx(
        result.metrics["val_accuracy"], abs=1e-4)


def test_the_job_carries_the_model_and_a_content_addressed_data_folder_never_the_data_in_its_snapshot(
        isolated_home):
    x, y = tiny_data()
    model = tiny_classifier()
    job = TrainingJob(model=model, x=x, y=y, hyperparameters={"epochs": 1, "batch_size": 8})
    assert job.entry_script == "fit_job.py" and job.experiment == "tiny-net" and job.x is None
    files = scan_snapshot(job.source_dir).files
    assert MODEL_FILE in files and CUSTOM_OBJECTS_FILE in files and not any(f.endswith(".npz") for f in files)
    data = job.local_data_folder
    assert data is not None and data.is_relative_to(isolated_home / "data") and (data / "train" / "data.npz").is_file()
    again = TrainingJob(model=model, x=x.copy(), y=y.copy(), hyperparameters={"epochs": 1})
    assert again.local_data_folder == data  # same content, same folder: written once
    arguments = [str(a) for a in job.script_arguments("DATA")]
    assert arguments[:6] == ["--data-folder", "DATA", "--model", MODEL_FILE, "--custom-objects", CUSTOM_OBJECTS_FILE]
    assert job.primary_metric == ("accuracy", "maximize")
    assert job.with_changes(hyperparameters={"epochs": 3}).source_dir == job.source_dir  # re-validated, not re-packed
    plan = kerasjob.fit(model, x, y, epochs=1, dry_run=True)
    assert plan.entry_script == "fit_job.py" and "--model" in plan.script_arguments


def test_a_dataframe_model_trains_registers_and_answers_named_columns_at_a_local_endpoint():
    pandas = pytest.importorskip("pandas")
    x, y = tiny_data()
    frame = pandas.DataFrame(x, columns=["age", "income", "tenure", "score"])
    inputs = keras.Input((4,), name="customer")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs), name="churn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    result = kerasjob.fit(model, frame, pandas.Series(y), epochs=1, batch_size=16, show_output=False)
    assert result.model_name == "churn" and result.model_version == "1"
    request = {"age": [0.1, 0.9], "income": [0.5, 0.5], "tenure": [0.2, 0.3], "score": [0.7, 0.1]}
    assert len(kerasjob.predict(result, request).digits) == 2
    endpoint = kerasjob.deploy_model("churn:1", endpoint="churn-local")
    try:
        answer = endpoint.invoke(request)
        assert len(answer.digits) == 2 and len(answer.probabilities[0]) == 3
        with pytest.raises(ValidationError, match="Missing: score"):
            endpoint.invoke({name: values for name, values in request.items() if name != "score"})
    finally:
        endpoint.delete()


def test_a_builder_travels_pickled_and_is_called_with_its_hyperparameters():
    x, y = tiny_data()
    calls = []

    def build(hyperparameters):  # type: ignore[no-untyped-def]
        calls.append(dict(hyperparameters))
        return tiny_classifier("built", units=int(hyperparameters.get("units", 4)))

    package = package_model(build, builder_hyperparameters={"units": 6})
    assert calls == [{"units": 6}] and package.builder and package.arguments[:2] == ("--builder", "builder.pkl")
    result = kerasjob.fit(build, x, y, epochs=1, hyperparameters={"units": 5}, show_output=False)
    assert result.model_name == "build" and result.load_model().layers[2].units == 5


def test_what_cannot_travel_is_refused_with_the_reason(tmp_path):
    handle = open(tmp_path / "log.txt", "w")  # noqa: SIM115 - a live file the builder holds on to
    try:
        def build(hyperparameters):  # type: ignore[no-untyped-def]
            handle.write("built\n")
            return tiny_classifier()

        with pytest.raises(ValidationError) as caught:
            TrainingJob(model=build, x=tiny_data()[0], y=tiny_data()[1])
        assert caught.value.argument == "model" and "`handle` (a _io.TextIOWrapper) cannot be pickled" in str(caught.value)
    finally:
        handle.close()


def test_the_job_python_is_pinned_to_the_caller_when_a_pickle_travels(tmp_path):
    conda = tmp_path / "env.yml"
    conda.write_text("dependencies:\n  - python=3.8\n  - pip\n")
    pinned = pinned_conda_file(conda)
    assert f"python={sys.version_info.major}.{sys.version_info.minor}" in pinned.read_text()
    assert pinned_conda_file(pinned) == pinned


def test_an_npz_folder_of_shards_is_checked_shard_by_shard_and_linked_not_rewritten(tmp_path):
    summary = package_model(tiny_classifier()).summary
    x, y = tiny_data()
    shards = tmp_path / "shards"
    shards.mkdir()
    np.savez(shards / "part-0.npz", x=x[:24], y=y[:24])
    np.savez(shards / "part-1.npz", x=x[24:], y=y[24:])
    package = package_data(summary, shards)
    assert package.rows == 48 and sorted(p.name for p in (package.data / "train").iterdir()) == [  # type: ignore[operator]
        "part-0.npz", "part-1.npz"]
    x_bad = x.copy()
    x_bad[30, 1] = np.inf
    np.savez(shards / "part-1.npz", x=x_bad[24:], y=y[24:])
    with pytest.raises(ValidationError, match="part-1.npz: x") as caught:
        package_data(summary, shards)
    assert "NaN or inf" in str(caught.value) and "row 6" in str(caught.value)
    assert json.loads(json.dumps(summary.to_dict()))["metrics"] == ["accuracy"]


def test_the_cli_fits_a_keras_file_on_an_npz_file(tmp_path):
    import subprocess

    x, y = tiny_data()
    inputs = keras.Input((4,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs), name="cli-net")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.savez(tmp_path / "val.npz", x=x[:8], y=y[:8])
    command = [sys.executable, "-m", "kerasjob.cli", "fit", str(tmp_path / "model.keras"), str(tmp_path / "train.npz")]
    plan = subprocess.run(command + ["--epochs", "1", "--dry-run"], capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0 and "fit_job.py" in plan.stdout and "--model model.keras" in plan.stdout, plan.stderr
    bad = subprocess.run(command + ["--epochs", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "epochs" in bad.stderr
    done = subprocess.run(command + ["--epochs", "2", "--batch-size", "8", "--validation-data", str(tmp_path / "val.npz"),
                                     "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert document["model"]["name"] == "cli-net" and "val_accuracy" in document["metrics"]
