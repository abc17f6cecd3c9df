"""The generic trainer: the fused epoch against Keras's ``fit`` for any compiled model, and ``keras_fit.py`` end to end.

Keras picks its backend once per process, so each backend's comparisons run in
one child process (tiny arrays, one epoch each); every case trains two copies
of one model, one with the fused epoch and one with ``fit`` on the same order,
and compares the epoch's logs and the weights after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TRAINING = Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training"
BACKENDS = ("tensorflow", "jax")

_COMPARE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, keras
from fused_epoch import epoch_order, make_trainer

rng = np.random.default_rng(0)
n, batch = 90, 16  # five full batches and fit's smaller last batch of 10
x = rng.normal(size=(n, 5)).astype("float32")
labels = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
x_val = rng.normal(size=(30, 5)).astype("float32")
labels_val = (x_val[:, 0] > 0).astype("int64")


@keras.saving.register_keras_serializable(package="test")
def doubled_crossentropy(y_true, y_pred):
    return 2.0 * keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


class ConfidentHits(keras.metrics.Metric):  # a custom stateful metric: share of samples with max prob > 0.5
    def __init__(self, name="confident", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.seen = self.add_variable(shape=(), initializer="zeros", name="seen")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.hits.assign_add(keras.ops.sum(keras.ops.cast(keras.ops.max(y_pred, axis=-1) > 0.5, "float32")))
        self.seen.assign_add(keras.ops.cast(keras.ops.shape(y_pred)[0], "float32"))

    def result(self):
        return self.hits / self.seen


def classifier(**compile_args):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")])
    model.compile(**{"optimizer": keras.optimizers.Adam(0.01), "loss": "sparse_categorical_crossentropy",
                     "metrics": ["accuracy"], **compile_args})
    return model


def two_inputs():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(6, activation="tanh")(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, {"kind": keras.layers.Dense(3, activation="softmax", name="kind")(hidden),
                                           "size": keras.layers.Dense(1, name="size")(hidden)})
    model.compile(optimizer="rmsprop", loss={"kind": "sparse_categorical_crossentropy", "size": "mse"},
                  loss_weights={"kind": 1.0, "size": 0.5}, metrics={"kind": ["accuracy"], "size": ["mae"]})
    return model


def conv_net():
    model = keras.Sequential([keras.Input((5, 1)), keras.layers.Conv1D(4, 2, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def compare(build, x, y, fit_args, trainer_args, shuffle=True):
    keras.utils.set_random_seed(5)
    fused, reference = build(), build()
    reference.set_weights(fused.get_weights())
    lines = []
    trainer = make_trainer(fused, x, y, batch_size=batch, seed=11, shuffle=shuffle, log=lines.append, **trainer_args)
    logs = trainer.train_epoch(0)
    trainer.write_back()
    order = np.asarray(epoch_order(11, 0, n)) if shuffle else np.arange(n)
    take = lambda s: None if s is None else keras.tree.map_structure(lambda a: a[order], s)
    history = reference.fit(take(x), take(y), batch_size=batch, epochs=1, shuffle=False, verbose=0,
                            **{k: take(v) if k == "sample_weight" else v for k, v in fit_args.items()}).history
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(fused.get_weights(), reference.get_weights()))
    return {"fused": logs, "fit": {k: v[0] for k, v in history.items()}, "weight_gap": gap,
            "is_fused": trainer.fused, "log": lines, "xla": getattr(trainer, "xla", None)}


weights = rng.uniform(0.2, 2.0, size=n).astype("float32")
validation = (x_val, labels_val)
cases = {
    "class_weight": compare(classifier, x, labels, {"class_weight": {0: 1.0, 2: 3.0}, "validation_data": validation},
                            {"class_weight": {0: 1.0, 2: 3.0}, "validation": validation}),
    "sample_weight": compare(classifier, x, labels, {"sample_weight": weights, "validation_data": validation},
                             {"sample_weight": weights, "validation": validation}),
    "multi_input": compare(two_inputs, {"a": x[:, :3], "b": x[:, 3:]}, {"kind": labels, "size": x[:, :1] * 2},
                           {}, {}),
    "custom_loss_metric_split_no_shuffle": compare(
        lambda: classifier(loss=doubled_crossentropy, metrics=["accuracy", ConfidentHits()]), x, labels,
        {"validation_split": 0.25}, {"validation_split": 0.25}, shuffle=False),
    "conv": compare(conv_net, x[:, :, None], labels, {"validation_data": (x_val[:, :, None], labels_val)},
                    {"validation": (x_val[:, :, None], labels_val)}),
    "fallback_run_eagerly": compare(lambda: classifier(run_eagerly=True), x, labels,
                                    {"validation_data": validation}, {"validation": validation}),
}
print(json.dumps(cases))
"""


@pytest.fixture(scope="module", params=BACKENDS)
def compared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    environment = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    environment.update(KERAS_BACKEND=request.param, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", _COMPARE, str(TRAINING)], capture_output=True, text=True,
                          timeout=600, env=environment, cwd=tmp_path_factory.mktemp("compare"))
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "backend": request.param}


def _same_epoch(case: dict, backend: str = "jax") -> None:
    fused, fit = case["fused"], case["fit"]
    assert set(fused) == set(fit)  # Keras's names, validation's with val_
    for name, value in fit.items():
        if backend == "tensorflow" and name.endswith("_loss") and name not in ("loss", "val_loss"):
            # A multi-output model's per-output loss trackers: Keras weighs each batch by
            # ``y_pred.shape[0]`` (keras/src/trainers/compile_utils.py), which TF's fit graph does not know
            # (its batches have no static size), so TF's fit averages batches, JAX's fit and the fused epoch
            # (static batch shapes) average samples. The total loss and the weights agree on both.
            continue
        assert fused[name] == pytest.approx(value, rel=2e-5, abs=1e-6), name
    assert case["weight_gap"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("case", ["class_weight", "sample_weight", "multi_input"])
def test_one_fused_epoch_is_fits_epoch(compared: dict, case: str) -> None:
    _same_epoch(compared[case], compared["backend"])
    assert compared[case]["is_fused"]


@pytest.mark.slow
def test_class_weight_and_validation_log_under_keras_names(compared: dict) -> None:
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(compared["class_weight"]["fused"])
    assert {"kind_accuracy", "size_mae", "loss"} <= set(compared["multi_input"]["fused"])


@pytest.mark.slow
def test_a_custom_loss_and_metric_with_validation_split_and_no_shuffle(compared: dict) -> None:
    case = compared["custom_loss_metric_split_no_shuffle"]
    _same_epoch(case, compared["backend"])
    assert "confident" in case["fused"] and "val_confident" in case["fused"]


@pytest.mark.slow
def test_a_conv_net_on_a_cpu_runs_its_tensorflow_epoch_as_a_graph_without_xla(compared: dict) -> None:
    case = compared["conv"]  # TensorFlow's oneDNN convolutions beat XLA's on a CPU (benchmarks/fit_speed.py)
    assert case["is_fused"] and case["xla"] is (False if compared["backend"] == "tensorflow" else None)
    _same_epoch(case, compared["backend"])


@pytest.mark.slow
def test_a_model_the_fused_loop_cannot_serve_trains_with_fit_and_says_so(compared: dict) -> None:
    case = compared["fallback_run_eagerly"]
    assert not case["is_fused"]
    assert len(case["log"]) == 1 and "run_eagerly=True" in case["log"][0] and "steps_per_execution" in case["log"][0]
    _same_epoch(case, compared["backend"])


_MAKE_INPUTS = r"""
import sys, numpy as np, keras, cloudpickle
folder = sys.argv[1]


class Scale(keras.layers.Layer):  # defined in __main__: travels in the custom objects pickle
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


rng = np.random.default_rng(1)
x = rng.normal(size=(120, 4)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
model = keras.Sequential([keras.Input((4,)), Scale(0.5), keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.save(f"{folder}/model.keras")
with open(f"{folder}/custom_objects.pkl", "wb") as stream:
    cloudpickle.dump({"Scale": Scale}, stream)
np.savez(f"{folder}/shards/part-0.npz", x=x[:70], y=y[:70])
np.savez(f"{folder}/shards/part-1.npz", x=x[70:100], y=y[70:100])
np.savez(f"{folder}/validation.npz", x=x[100:], y=y[100:])
np.savez(f"{folder}/table.npz", x=x, y=y, x_columns=np.array(["a", "b", "c", "d"]))


def build(hyperparameters):
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hyperparameters["units"], activation="relu"),
                            keras.layers.Dense(2, activation="softmax")])
    net.compile(optimizer=keras.optimizers.SGD(hyperparameters["learning_rate"]),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


with open(f"{folder}/builder.pkl", "wb") as stream:
    cloudpickle.dump(build, stream)
"""


def _mlmodel(folder: Path) -> dict:
    import yaml

    return dict(yaml.safe_load((folder / "MLmodel").read_text()))


def _environment(tmp_path: Path, backend: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "KERAS_BACKEND")}
    environment.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend,
                       KERASJOB_METRICS_FILE=str(tmp_path / "metrics.jsonl"))
    return environment


@pytest.fixture(scope="module")
def job_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "shards").mkdir()
    done = subprocess.run([sys.executable, "-c", _MAKE_INPUTS, str(folder)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.mark.slow
def test_the_script_trains_a_model_file_with_custom_objects_on_shards(job_inputs: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(TRAINING / "keras_fit.py"), "--model", str(job_inputs / "model.keras"),
         "--custom-objects", str(job_inputs / "custom_objects.pkl"), "--data", str(job_inputs / "shards"),
         "--validation-data", str(job_inputs / "validation.npz"), "--epochs", "2", "--batch-size", "16",
         "--seed", "3", "--keras-backend", "jax"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_environment(tmp_path, "jax"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Data: 100 training samples" in done.stdout and "fused epoch" in done.stdout

    history = json.loads((tmp_path / "outputs" / "history.json").read_text())
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in history.values())
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [0, 1]
    assert records[1]["metrics"]["val_accuracy"] == history["val_accuracy"][1]

    model = tmp_path / "outputs" / "model"
    mlmodel = _mlmodel(model)
    assert {"python_function", "keras"} <= set(mlmodel["flavors"])
    signature = {side: json.loads(mlmodel["signature"][side]) for side in ("inputs", "outputs")}
    assert [spec["tensor-spec"]["shape"] for spec in signature["inputs"]] == [[-1, 4]]  # inferred from the data
    assert [spec["tensor-spec"]["shape"] for spec in signature["outputs"]] == [[-1, 2]]
    assert (model / "model.keras").is_file() and (model / "custom_objects.pkl").is_file()
    assert (tmp_path / "outputs" / "training.png").stat().st_size > 0
    # Served in a process that never defined the custom layer: the pyfunc flavor registers it first.
    served = subprocess.run(
        [sys.executable, "-c", "import sys, numpy as np, mlflow.pyfunc; "
         "print(mlflow.pyfunc.load_model(sys.argv[1]).predict(np.zeros((3, 4), 'float32')).shape)", str(model)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert served.returncode == 0, served.stderr[-3000:]
    assert served.stdout.strip().splitlines()[-1] == "(3, 2)"
    assert sorted(p.name for p in (tmp_path / "outputs" / "checkpoints").glob("*.npz")) == [
        "epoch-000000.npz", "epoch-000001.npz"]


@pytest.mark.slow
def test_a_builder_gets_the_hyperparameters_and_a_table_gets_a_column_signature(job_inputs: Path,
                                                                                 tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(TRAINING / "keras_fit.py"), "--builder", str(job_inputs / "builder.pkl"),
         "--data", str(job_inputs / "table.npz"), "--validation-split", "0.25", "--epochs", "1",
         "--keras-backend", "tensorflow", "--units", "7", "--learning-rate", "0.05", "--checkpoint-dir", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_environment(tmp_path, "tensorflow"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(json.loads((tmp_path / "outputs" / "history.json").read_text())) == {
        "loss", "accuracy", "val_loss", "val_accuracy"}
    inputs = json.loads(_mlmodel(tmp_path / "outputs" / "model")["signature"]["inputs"])
    assert [(spec["name"], spec["type"]) for spec in inputs] == [(column, "double") for column in "abcd"]
    example = json.loads((tmp_path / "outputs" / "model" / "serving_input_example.json").read_text())
    assert example["dataframe_split"]["columns"] == ["a", "b", "c", "d"]
    assert not (tmp_path / "outputs" / "checkpoints").exists()


def test_hyperparameters_and_flags_read_as_the_facade_sends_them() -> None:
    sys.path.insert(0, str(TRAINING))
    import keras_fit

    args, hyperparameters = keras_fit.parse_args(
        ["--model", "m.keras", "--data", "d.npz", "--class-weight", '{"0": 1.0, "1": 2.5}', "--shuffle", "false",
         "--units", "64", "--learning-rate", "0.001", "--activation", "relu", "--use-bias=true"])
    assert args.class_weight == {0: 1.0, 1: 2.5} and args.shuffle is False and args.epochs == 1
    assert hyperparameters == {"units": 64, "learning_rate": 0.001, "activation": "relu", "use_bias": True}
    for bad in (["--epochs", "0"], ["--validation-split", "1.5"], ["--class-weight", "[1, 2]"], ["--units"]):
        with pytest.raises(SystemExit):
            keras_fit.parse_args(["--model", "m.keras", "--data", "d.npz", *bad])


def test_shards_are_read_in_order_and_must_agree(tmp_path: Path) -> None:
    sys.path.insert(0, str(TRAINING))
    import keras_fit

    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "b" / "2.npz", **{"x.left": np.ones((2, 1)), "x.right": np.ones((2, 2)), "y": np.ones(2)})
    np.savez(tmp_path / "1.npz", **{"x.left": np.zeros((3, 1)), "x.right": np.zeros((3, 2)), "y": np.zeros(3)})
    data = keras_fit.load_data(tmp_path)
    assert len(data) == 5 and set(data.x) == {"left", "right"} and data.y.tolist() == [0, 0, 0, 1, 1]
    np.savez(tmp_path / "3.npz", x=np.ones((1, 1)))
    with pytest.raises(ValueError, match="the first held"):
        keras_fit.load_data(tmp_path)
