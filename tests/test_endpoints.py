"""A local endpoint for real: MLflow's scoring server on loopback, deployed, invoked, redeployed and deleted through
the CLI, with nothing left running. The server runs in its own processes (TensorFlow stays out of this one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import psutil
import pytest

from kerasjob import ValidationError, deploy_model, submit_training
from kerasjob.cli import main

FAST = {"epochs": 2, "batch_size": 32}


@pytest.fixture(autouse=True)
def no_server_outlives_its_test():
    """Whatever happens in a test, every endpoint it deployed is stopped afterwards."""
    yield
    from kerasjob.endpoints import list_endpoints

    for endpoint in list_endpoints():
        endpoint.delete()


@pytest.mark.parametrize("name", ["ab", "1mnist", "mnist-", "has space", "a" * 33])
def test_an_endpoint_name_outside_azures_rule_is_refused_before_anything_starts(name, tmp_path):
    with pytest.raises(ValidationError) as caught:
        deploy_model(tmp_path, endpoint=name)
    assert caught.value.argument == "endpoint" and "3-32 letters" in str(caught.value)


def _cli_json(capsys, *arguments: str) -> object:
    assert main([*arguments, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _group_alive(pid: int) -> bool:
    return any(process.info["pid"] == pid or _pgid(process.info["pid"]) == pid
               for process in psutil.process_iter(["pid"]))


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.slow
def test_deploy_invoke_redeploy_and_delete_through_the_cli(tiny_mnist, capsys):
    first = submit_training(data=tiny_mnist, hyperparameters=FAST, show_output=False)
    second = submit_training(data=tiny_mnist, hyperparameters=FAST, show_output=False)
    images = str(tiny_mnist / "t10k-images-idx3-ubyte.gz")

    deployed = _cli_json(capsys, "deploy", f"keras-mnist:{first.model_version}", "--endpoint", "mnist")
    assert deployed["running"] and deployed["url"].startswith("http://127.0.0.1:")
    assert [entry["name"] for entry in _cli_json(capsys, "endpoints", "list")] == ["mnist"]

    served = _cli_json(capsys, "endpoints", "invoke", "mnist", images)
    predicted = subprocess.run([sys.executable, "-m", "kerasjob.cli", "predict", f"keras-mnist:{first.model_version}",
                                images, "--json"], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert served["digits"] == json.loads(predicted.stdout.strip().splitlines()[-1])["digits"]

    # MLflow's documented JSON, sent by any HTTP client; a malformed payload is a 400 and the server keeps serving
    request = urllib.request.Request(deployed["url"] + "/invocations", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"inputs": [[0.0] * 784]}).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        assert len(json.loads(response.read())["predictions"][0]) == 10
    malformed = urllib.request.Request(deployed["url"] + "/invocations", data=b'{"inputs": [[1, 2]]}',
                                       headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(malformed, timeout=60)
    assert refused.value.code == 400 and b"message" in refused.value.read()
    assert _cli_json(capsys, "endpoints", "invoke", "mnist", images)["digits"] == served["digits"]

    # redeploying the name starts the new server first, then stops the old one
    redeployed = _cli_json(capsys, "deploy", f"keras-mnist:{second.model_version}", "--endpoint", "mnist")
    assert redeployed["url"] != deployed["url"] and redeployed["model"].endswith(f"/{second.model_version}")
    assert not _group_alive(deployed["pid"])
    assert main(["endpoints", "logs", "mnist"]) == 0 and "Uvicorn running" in capsys.readouterr().out

    assert main(["endpoints", "delete", "mnist"]) == 0
    assert not _group_alive(redeployed["pid"])
    assert _cli_json(capsys, "endpoints", "list") == []
    assert main(["endpoints", "invoke", "mnist", images]) == 2
    assert "deployed endpoints (none)" in capsys.readouterr().err


def test_a_workspace_argument_deploy_does_not_know_is_refused_by_name(tmp_path):
    with pytest.raises(ValidationError) as caught:
        deploy_model(tmp_path, endpoint="mnist", workspace_nmae="ws")
    assert caught.value.argument == "workspace_nmae" and "workspace_name" in str(caught.value)


def test_a_server_that_does_not_start_fails_with_its_log_and_leaves_nothing_recorded(tmp_path):
    from kerasjob.endpoints import list_endpoints
    from kerasjob.errors import DeploymentFailed

    not_a_model = tmp_path / "empty-model"
    not_a_model.mkdir()
    with pytest.raises(DeploymentFailed) as caught:
        deploy_model(not_a_model, endpoint="broken", timeout=120)
    assert caught.value.endpoint == "broken" and "exited" in str(caught.value)
    assert "MLmodel" in caught.value.log_tail
    assert list_endpoints() == []
