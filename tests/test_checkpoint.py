"""Checkpoint and resume (issue 20, item 2): both packaged trainers write a checkpoint after every epoch and a new
process resumes from the newest one, in the same epoch order, logging each epoch's metrics once.

Real child processes, real Keras on JAX (bit-exact on a CPU), tiny data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TRAINING = Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training"
sys.path.insert(0, str(TRAINING))

from checkpoint import KEEP, checkpoint_dir_from, latest_checkpoint, save_checkpoint  # noqa: E402

_MAKE = r"""
import sys, numpy as np, keras
folder = sys.argv[1]
rng = np.random.default_rng(2)
x = rng.normal(size=(150, 6)).astype("float32")
y = (x[:, 0] - x[:, 3] > 0).astype("int64")
np.savez(f"{folder}/data.npz", x=x[:120], y=y[:120])
np.savez(f"{folder}/validation.npz", x=x[120:], y=y[120:])
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.1),
                          keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.save(f"{folder}/model.keras")
"""


def _environment(run: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "KERAS_BACKEND", "TF_CONFIG")}
    environment.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="jax", KERASJOB_METRICS_FILE=str(run / "metrics.jsonl"))
    return environment


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _final_state(run: Path, epoch: int) -> list[np.ndarray]:
    checkpoint = latest_checkpoint(run / "outputs" / "checkpoints")
    assert checkpoint is not None and checkpoint.epoch == epoch
    return checkpoint.arrays


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    done = subprocess.run([sys.executable, "-c", _MAKE, str(folder)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def _fit(inputs: Path, run: Path, epochs: int) -> subprocess.CompletedProcess[str]:
    run.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(TRAINING / "keras_fit.py"), "--model", str(inputs / "model.keras"), "--data",
         str(inputs / "data.npz"), "--validation-data", str(inputs / "validation.npz"), "--epochs", str(epochs),
         "--batch-size", "16", "--seed", "4"],
        cwd=run, capture_output=True, text=True, timeout=600, env=_environment(run))
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_two_epochs_then_a_new_process_to_four_equals_four_at_once(inputs: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _fit(inputs, straight, 4)
    _fit(inputs, resumed, 2)
    second = _fit(inputs, resumed, 4)
    assert "Resuming from checkpoint" in second.stdout and "Epoch 1/4" not in second.stdout

    for expected, actual in zip(_final_state(straight, 3), _final_state(resumed, 3), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)  # weights, dropout seed, optimizer state
    assert [record["step"] for record in _records(resumed)] == [0, 1, 2, 3]  # each epoch logged once
    history = json.loads((resumed / "outputs" / "history.json").read_text())
    expected = json.loads((straight / "outputs" / "history.json").read_text())
    assert set(history) == set(expected)
    for name, values in expected.items():
        assert history[name] == pytest.approx(values, abs=1e-6), name
    assert all(len(values) == 4 for values in history.values())
    assert len(list((resumed / "outputs" / "checkpoints").glob("*.npz"))) == KEEP


@pytest.mark.slow
def test_the_mnist_script_killed_with_sigkill_mid_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    from mnist_files import make_tiny_mnist

    data = make_tiny_mnist(tmp_path / "data", train=4000, test=100)
    command = [sys.executable, str(TRAINING / "keras_mnist.py"), "--data-folder", str(data), "--epochs", "5",
               "--batch-size", "8", "--first-layer-neurons", "16", "--second-layer-neurons", "8", "--seed", "2",
               "--keras-backend", "jax"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for run in (straight, killed):
        run.mkdir()
    done = subprocess.run(command, cwd=straight, capture_output=True, text=True, timeout=600,
                          env=_environment(straight))
    assert done.returncode == 0, done.stderr[-3000:]

    process = subprocess.Popen(command, cwd=killed, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=_environment(killed))
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Epoch 2/5"):
            process.send_signal(signal.SIGKILL)  # wherever it is now: epoch 3, writing a checkpoint, ...
            break
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not (killed / "outputs" / "model").exists()
    done = subprocess.run(command, cwd=killed, capture_output=True, text=True, timeout=600, env=_environment(killed))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Resuming from checkpoint" in done.stdout

    for expected, actual in zip(_final_state(straight, 4), _final_state(killed, 4), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    steps = [record["step"] for record in _records(killed) if record["step"] is not None]
    assert steps == [0, 1, 2, 3, 4]  # each epoch's Accuracy once, none lost
    straight_accuracy = [r["metrics"]["Accuracy"] for r in _records(straight) if r["step"] is not None]
    assert [r["metrics"]["Accuracy"] for r in _records(killed) if r["step"] is not None] == straight_accuracy
    assert (killed / "outputs" / "model" / "MLmodel").is_file()


def test_a_checkpoint_is_written_whole_and_the_newest_two_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    for epoch in range(4):
        save_checkpoint(folder, epoch, [np.full((2, 3), epoch, dtype="float32"), np.arange(epoch + 1)],
                        {"seed": 9, "history": {"loss": [0.5] * (epoch + 1)}})
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-000002.npz", "epoch-000003.npz"]
    (folder / "epoch-000004.npz").write_bytes(b"PK\x03\x04 cut short")  # not a whole file: skipped
    newest = latest_checkpoint(folder)
    assert newest is not None and newest.epoch == 3 and newest.record["seed"] == 9
    assert newest.arrays[0].tolist() == [[3.0] * 3] * 2 and newest.arrays[1].tolist() == [0, 1, 2, 3]
    assert latest_checkpoint(tmp_path / "absent") is None
    assert checkpoint_dir_from("none") is None and checkpoint_dir_from("") is None
    assert checkpoint_dir_from("ckpt") == Path("ckpt")
