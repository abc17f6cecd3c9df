"""Shared fixtures: an isolated kerasjob home, tiny MNIST files, a workspace config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_files import make_tiny_mnist

# azureml-dataprep's native libraries must load before TensorFlow in a process that uses both: loaded after it,
# the v1 fake's dataset calls (Dataset.File.from_files) corrupt memory and pytest dies of a segmentation fault a
# few tests later (reproduced: `import tensorflow` then tests/test_azure_backends_contract.py). Test modules that
# import keras when collected (test_fit*.py) would otherwise load TensorFlow first.
try:
    import azureml.dataprep.native  # noqa: F401
    import azureml.dataprep.rslex  # noqa: F401
except ImportError:  # the azureml extra is not installed: no v1 test runs
    pass

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own kerasjob home, cache and MLflow store, and no waiting between polls/retries."""
    import tenacity

    import kerasjob.backends.azureml.run as azureml_backend
    import kerasjob.backends.azureml_v2.run as azureml_v2_backend
    import kerasjob.retry as retry

    home = tmp_path / "kerasjob-home"
    monkeypatch.setenv("KERASJOB_HOME", str(home))
    monkeypatch.setenv("KERASJOB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(azureml_backend, "DEFAULT_POLL_SECONDS", 0)
    monkeypatch.setattr(azureml_v2_backend, "POLL_SECONDS", 0)
    monkeypatch.setattr(retry.policy, "wait", tenacity.wait_none())
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    return make_tiny_mnist(tmp_path / "tiny-mnist")


@pytest.fixture
def workspace_config(tmp_path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subscription_id": "00000000-0000-0000-0000-000000000000",
                                "resource_group": "rg", "workspace_name": "ws"}))
    return path


@pytest.fixture
def shared_mnist() -> Path:
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    return SHARED_MNIST


def run_in_own_process(request) -> bool:  # type: ignore[no-untyped-def]
    """For a test that loads Keras and azureml-core's dataset runtime in one process: run it again in a pytest of its
    own and return True (the caller returns), so that neither library's threads outlive it in the suite's process
    (a later local run's wait segfaulted in that mix). Inside that child it returns False and the test runs."""
    import os
    import subprocess
    import sys

    if os.environ.get("KERASJOB_OWN_PROCESS") == request.node.nodeid:
        return False
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
                          cwd=str(Path(__file__).resolve().parents[1]), capture_output=True, text=True, timeout=900,
                          env={**os.environ, "KERASJOB_OWN_PROCESS": request.node.nodeid})
    # judged by pytest's own summary: the mix can also crash that child at exit, after the test has passed
    assert "1 passed" in done.stdout and "failed" not in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    return True
