"""Every device of a node on JAX (issue 23), rehearsed on the CPU: ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
gives a child process two JAX devices, as a node with two GPUs has.

Keras picks its backend and XLA its devices once per process, so each case runs in a child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training"
TWO_DEVICES = "--xla_force_host_platform_device_count=2"

_TWO_DEVICES_AGAINST_ONE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import jax, keras, numpy as np
from data_parallel import DataParallelTrainer, use_all_devices
from fused_epoch import make_trainer

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 784)).astype("float32")
y = rng.integers(0, 10, 256)

def build():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.RMSprop(0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model

devices = use_all_devices(keras)
parallel = DataParallelTrainer(build(), (x, y, None), (x[:64], y[:64], None), 16, 3, True, devices)
parallel_logs = [parallel.train_epoch(epoch) for epoch in range(2)]
replicas = [[np.asarray(shard.data) for shard in array.addressable_shards] for array in parallel._state[0]]
program = parallel._compiled.as_text()
parallel_weights = [np.asarray(array) for array in parallel._state[0]]

keras.distribution.set_distribution(None)
single = make_trainer(build(), x, y, validation=(x[:64], y[:64]), batch_size=32, seed=3)  # the global batch
single_logs = [single.train_epoch(epoch) for epoch in range(2)]
single_weights = [np.asarray(array) for array in single._state[0]]
print(json.dumps({
    "devices": devices,
    "replica_devices": [len(shards) for shards in replicas],
    "replicas_identical": all(np.array_equal(shards[0], other) for shards in replicas for other in shards),
    "weights_changed": bool(np.abs(parallel_weights[0] - np.asarray(build().trainable_variables[0].value)).max() > 0),
    "all_reduce": "all-reduce" in program,
    "per_device_batch": "f32[16,784]" in program,
    "max_difference": max(float(np.abs(a - b).max()) for a, b in zip(parallel_weights, single_weights)),
    "parallel_loss": [logs["loss"] for logs in parallel_logs], "single_loss": [logs["loss"] for logs in single_logs],
}))
"""


def _two_device_environment() -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "TF_CONFIG")}
    environment.update(KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
                       XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {TWO_DEVICES}".strip())
    return environment


@pytest.mark.slow
def test_two_devices_each_train_on_a_shard_and_end_with_the_weights_of_one_global_batch(tmp_path):
    done = subprocess.run([sys.executable, "-c", _TWO_DEVICES_AGAINST_ONE, str(TRAINING)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=_two_device_environment())
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["devices"] == 2
    # every weight lives on both devices, and the two copies are the same after two epochs
    assert set(outcome["replica_devices"]) == {2} and outcome["replicas_identical"] and outcome["weights_changed"]
    # the compiled epoch gives each device 16 of the 32 samples of a step, and sums the gradients across them
    assert outcome["per_device_batch"] and outcome["all_reduce"]
    # the same arithmetic as one device on the global batch (batch_size x devices)
    assert outcome["max_difference"] < 1e-5
    assert outcome["parallel_loss"] == pytest.approx(outcome["single_loss"], rel=1e-5)


@pytest.mark.slow
def test_the_packaged_script_trains_on_every_device_of_its_node(tiny_mnist, tmp_path):
    done = subprocess.run(
        [sys.executable, str(TRAINING / "keras_mnist.py"), "--data-folder", str(tiny_mnist), "--epochs", "2",
         "--batch-size", "16", "--first-layer-neurons", "32", "--second-layer-neurons", "16", "--seed", "1",
         "--keras-backend", "jax"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_two_device_environment())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Data parallel over 2 devices: global batch 32 (16 per device)" in done.stdout
    assert "Epoch 2/2" in done.stdout and "Final test accuracy:" in done.stdout
    assert (tmp_path / "outputs" / "model" / "model.keras").stat().st_size > 0
    assert list((tmp_path / "outputs" / "checkpoints").iterdir())  # checkpointed (and resumable) as on one device


_MODEL_AND_DATA = r"""
import sys
import keras, numpy as np
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.save(sys.argv[1] + "/model.keras")
rng = np.random.default_rng(0)
x = rng.normal(size=(200, 8)).astype("float32")
np.savez(sys.argv[1] + "/data.npz", x=x, y=(x[:, 0] > 0).astype("int64") + (x[:, 1] > 0))
"""


@pytest.mark.slow
def test_the_generic_trainer_trains_on_every_device_of_its_node(tmp_path):
    environment = _two_device_environment()
    made = subprocess.run([sys.executable, "-c", _MODEL_AND_DATA, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=environment)
    assert made.returncode == 0, made.stderr[-3000:]
    done = subprocess.run(
        [sys.executable, str(TRAINING / "keras_fit.py"), "--model", str(tmp_path / "model.keras"), "--data",
         str(tmp_path / "data.npz"), "--epochs", "2", "--batch-size", "10", "--validation-split", "0.2",
         "--class-weight", '{"0": 1.0, "1": 2.0, "2": 1.0}', "--seed", "1", "--checkpoint-dir", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Data parallel over 2 devices: global batch 20 (10 per device)" in done.stdout
    history = json.loads((tmp_path / "outputs" / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    assert (tmp_path / "outputs" / "model" / "model.keras").stat().st_size > 0
