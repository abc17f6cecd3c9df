"""End to end on real MNIST: kerasjob.fit with a conv net whose custom layer lives in the calling script's __main__."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = Path(__file__).with_name("fit_mnist_script.py")


def test_a_convnet_with_a_main_layer_reaches_97_percent_and_comes_back_and_serves(shared_mnist, isolated_home):
    done = subprocess.run([sys.executable, str(SCRIPT), str(shared_mnist)], capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["val_accuracy"] >= 0.97 and figures["metric"] == pytest.approx(figures["val_accuracy"], abs=1e-6)
    assert figures["load_model_accuracy"] == pytest.approx(figures["val_accuracy"], abs=2e-3)
    assert figures["pyfunc_shape"] == [1000, 10] and figures["pyfunc_accuracy"] >= 0.95
    assert figures["model"] == "mnist-convnet:1" and figures["champion"]
