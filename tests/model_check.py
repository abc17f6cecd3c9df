"""Load a saved Keras model in a separate process and score it, so that TensorFlow
never loads inside the test process (it shares that process badly with the Azure SDK)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_PROBE = r"""
import json, sys
import numpy as np, keras
sys.path.insert(0, sys.argv[3])
from mnist_data import load_mnist
model = keras.saving.load_model(sys.argv[1])
probe = model.predict(np.zeros((3, 784), dtype="float32"), verbose=0)
result = {"shape": list(probe.shape), "row_sums": probe.sum(axis=1).tolist()}
if sys.argv[2]:
    _, _, x_test, y_test = load_mnist(sys.argv[2])
    result["accuracy"] = float(np.mean(model.predict(x_test, verbose=0, batch_size=2000).argmax(axis=1) == y_test))
print(json.dumps(result))
"""


def check_model(model_file: Path, data_folder: Path | None = None) -> dict:
    """``{"shape", "row_sums"}`` of a prediction on zeros, and ``accuracy`` on ``data_folder``'s test set."""
    training = Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training"
    done = subprocess.run([sys.executable, "-c", _PROBE, str(model_file), str(data_folder or ""), str(training)],
                          capture_output=True, text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3",
                                                                           "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


_PYFUNC_PROBE = r"""
import json, sys
import mlflow, numpy as np
mlflow.set_tracking_uri(sys.argv[2])
model = mlflow.pyfunc.load_model(sys.argv[1])
probe = np.asarray(model.predict(np.zeros((3, 784), dtype="float32")))
print(json.dumps({"shape": list(probe.shape), "row_sums": probe.sum(axis=1).tolist(),
                  "flavors": sorted(model.metadata.flavors), "signature": model.metadata.signature.to_dict()}))
"""


def check_pyfunc(model_uri: str, tracking_uri: str) -> dict:
    """Load ``model_uri`` (e.g. ``models:/keras-mnist/1``) with ``mlflow.pyfunc`` in a separate process and
    predict on zeros: ``{"shape", "row_sums", "flavors", "signature"}``."""
    done = subprocess.run([sys.executable, "-c", _PYFUNC_PROBE, model_uri, tracking_uri], capture_output=True,
                          text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
