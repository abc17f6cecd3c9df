"""The packaged script on either Keras backend (TensorFlow or JAX), and its fused epoch against Keras's ``fit``.

Keras picks its backend once per process, so each case trains in a child
process; the JAX child cannot import TensorFlow at all (a stand-in package that
refuses to import sits first on its path), as on a machine with JAX alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_check import check_model, check_pyfunc

TRAINING = Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training"
SMALL = ["--epochs", "1", "--batch-size", "32", "--first-layer-neurons", "32", "--second-layer-neurons", "16"]
BACKENDS = ("tensorflow", "jax")


def _child_environment(backend: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a training child on ``backend``; for JAX, one where ``import tensorflow`` fails."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("KERAS_BACKEND", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "TF_CONFIG")}
    environment.update(TF_CPP_MIN_LOG_LEVEL="3", **extra)
    if backend == "jax":
        blocker = tmp_path / "no-tensorflow" / "tensorflow"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text("raise ImportError('TensorFlow is not installed here (test)')\n")
        environment["PYTHONPATH"] = str(blocker.parent)
    return environment


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_script_trains_one_epoch_on_each_backend_with_the_same_outputs(backend, tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    metrics_file = run_dir / "metrics.jsonl"
    done = subprocess.run(
        [sys.executable, str(TRAINING / "keras_mnist.py"), "--data-folder", str(tiny_mnist), *SMALL, "--seed", "1",
         "--keras-backend", backend],
        cwd=run_dir, capture_output=True, text=True, timeout=600,
        env=_child_environment(backend, tmp_path, KERASJOB_METRICS_FILE=str(metrics_file)))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Fit seconds:" in done.stdout and f"({backend})" in done.stdout

    records = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    per_epoch = [record for record in records if record["step"] == 0]
    assert set(per_epoch[0]["metrics"]) == {"Loss", "Accuracy", "Train loss", "Train accuracy"}
    assert all(0.0 <= per_epoch[0]["metrics"][name] <= 1.0 for name in ("Accuracy", "Train accuracy"))
    assert set(records[-1]["metrics"]) == {"Final test loss", "Final test accuracy"}
    assert records[-1]["metrics"]["Final test loss"] == pytest.approx(per_epoch[0]["metrics"]["Loss"], rel=1e-4)

    outputs = run_dir / "outputs"
    assert (outputs / "training.png").stat().st_size > 0
    assert f"keras_backend: {backend}" in (outputs / "model" / "MLmodel").read_text()
    # Whatever trained it, the model serves on Keras's default backend (TensorFlow), as predict and serving do.
    assert check_model(outputs / "model" / "model.keras")["shape"] == [3, 10]
    served = check_pyfunc(str(outputs / "model"), (tmp_path / "mlruns").as_uri())
    assert served["shape"] == [3, 10] and served["row_sums"] == pytest.approx([1.0] * 3, abs=1e-4)


_FUSED_AGAINST_FIT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import argparse
import numpy as np, keras
import keras_mnist
from fused_epoch import epoch_order, make_trainer
from mnist_data import load_mnist

data = load_mnist(sys.argv[2])
args = argparse.Namespace(first_layer_neurons=32, second_layer_neurons=16, learning_rate=0.001, batch_size=32)
keras.utils.set_random_seed(7)
fused, reference = keras_mnist.build_model(keras, args), keras_mnist.build_model(keras, args)
reference.set_weights(fused.get_weights())

trainer = make_trainer(fused, data[0], data[1], validation=(data[2], data[3]), batch_size=args.batch_size, seed=7)
epoch = keras_mnist.EpochMetrics.from_logs(trainer.train_epoch(0))
order = np.asarray(epoch_order(7, 0, len(data[0])))
logs = reference.fit(data[0][order], data[1][order], batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0,
                     validation_data=(data[2], data[3])).history
print(json.dumps({"fused": epoch._asdict(), "fit": {name: values[0] for name, values in logs.items()},
                  "orders": [np.asarray(epoch_order(7, e, len(data[0]))).tolist() for e in (0, 1)]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_fused_epoch_does_what_fit_does_on_the_same_order(backend, tmp_path):
    """300 samples in batches of 32: nine full batches, then fit's smaller last batch of 12."""
    from mnist_files import make_tiny_mnist

    data = make_tiny_mnist(tmp_path / "data", train=300, test=100)
    done = subprocess.run([sys.executable, "-c", _FUSED_AGAINST_FIT, str(TRAINING), str(data)], capture_output=True,
                          text=True, timeout=600, env=_child_environment(backend, tmp_path, KERAS_BACKEND=backend))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    fused, fit = result["fused"], result["fit"]
    assert fused["train_loss"] == pytest.approx(fit["loss"], rel=1e-4)
    assert fused["train_accuracy"] == pytest.approx(fit["accuracy"], abs=1e-6)
    assert fused["test_loss"] == pytest.approx(fit["val_loss"], rel=1e-4)
    assert fused["test_accuracy"] == pytest.approx(fit["val_accuracy"], abs=1e-6)
    first, second = result["orders"]
    assert sorted(first) == sorted(second) == list(range(300)) and first != second  # a new order every epoch


def test_the_script_refuses_jax_across_several_workers(monkeypatch, tmp_path, capsys):
    """Checked before the data is read or Keras is imported: the workers would each train alone."""
    sys.path.insert(0, str(TRAINING))
    import keras_mnist

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert keras_mnist.main(["--data-folder", str(tmp_path / "absent"), "--keras-backend", "jax"]) == 2
    assert "TensorFlow only" in capsys.readouterr().err


def test_the_scripts_options_read_as_kerasjob_sends_them():
    sys.path.insert(0, str(TRAINING))
    import keras_mnist

    args = keras_mnist.parse_args(["--data-folder", "d", "--seed", "3", "--mixed-precision", "False",
                                   "--keras-backend", "jax"])
    assert (args.seed, args.mixed_precision, args.keras_backend) == (3, False, "jax")
    assert keras_mnist.parse_args(["--data-folder", "d", "--mixed-precision"]).mixed_precision is True
    for bad in (["--keras-backend", "torch"], ["--seed", "-1"], ["--mixed-precision", "maybe"]):
        with pytest.raises(SystemExit):
            keras_mnist.parse_args(["--data-folder", "d", *bad])


def test_the_default_backend_is_one_that_is_installed(monkeypatch):
    sys.path.insert(0, str(TRAINING))
    import keras_mnist

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert keras_mnist.default_keras_backend() == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setattr(keras_mnist.importlib.util, "find_spec", lambda name: None if name == "tensorflow" else object())
    assert keras_mnist.default_keras_backend() == "jax"  # a machine with JAX alone
