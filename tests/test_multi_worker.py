"""Multi-worker training: the script's TF_CONFIG handling, and the local N-worker rehearsal for real."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import psutil
import pytest

from kerasjob import TensorflowDistribution, TrainingFailed, TrainingJob, submit_training
from kerasjob.backends.local import LocalBackend
from kerasjob.tracking import client

from model_check import check_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training"))
import multi_worker  # noqa: E402  (the training folder's helper; imports nothing heavy)

FAST = {"epochs": 2, "batch_size": 32, "first_layer_neurons": 32, "second_layer_neurons": 16}


def _tf_config(cluster: dict, index: int = 0) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def test_an_empty_ps_entry_from_azure_is_removed_before_tensorflow_reads_it(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config({"worker": ["a:1", "b:2"], "ps": []}, index=1))
    config = multi_worker.cluster_from_environment()
    assert config["cluster"] == {"worker": ["a:1", "b:2"]}
    assert "ps" not in json.loads(__import__("os").environ["TF_CONFIG"])["cluster"]
    assert not multi_worker.is_chief(config)


@pytest.mark.parametrize("cluster, index, chief", [
    ({"worker": ["a:1", "b:2"]}, 0, True),
    ({"worker": ["a:1", "b:2"]}, 1, False),
])
def test_worker_zero_is_the_chief_when_no_chief_is_named(monkeypatch, cluster, index, chief):
    monkeypatch.setenv("TF_CONFIG", _tf_config(cluster, index))
    assert multi_worker.is_chief(multi_worker.cluster_from_environment()) is chief


def test_one_worker_means_plain_training(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config({"worker": ["a:1"], "ps": []}))
    assert multi_worker.cluster_from_environment() is None


@pytest.mark.slow
def test_two_local_workers_train_in_sync_and_register_one_model(tiny_mnist, tmp_path):
    result = submit_training(data=tiny_mnist, hyperparameters=FAST, distribution=TensorflowDistribution(2),
                             show_output=False)
    assert result.workers == 2 and result.to_dict()["workers"] == 2
    log = result.run.log_tail(lines=10_000)
    for worker in (0, 1):
        assert f"[worker {worker}] Epoch 2/2" in log, log
    digests = dict(re.findall(r"\[worker (\d)\] Workers: 2, global batch 64, weights sha256 (\w+)", log))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], log
    versions = client().search_model_versions("name = 'keras-mnist'")
    assert [str(v.version) for v in versions] == ["1"]
    assert [m.step for m in client().get_metric_history(result.run.mlflow_run_id, "Accuracy")] == [0, 1]  # the chief only
    train_accuracy = client().get_metric_history(result.run.mlflow_run_id, "Train accuracy")  # over all workers' batches
    assert [m.step for m in train_accuracy] == [0, 1] and all(0.0 <= m.value <= 1.0 for m in train_accuracy)
    assert not (Path(result.run.run_dir) / "workers" / "1" / "outputs").exists()
    from kerasjob import download_model

    model = download_model(result, tmp_path / "model") / "model.keras"
    assert check_model(model)["shape"] == [3, 10]


CRASHING_WORKER = """
import json, os, time
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
print("worker started", os.getpid(), flush=True)
if index == 1:
    time.sleep(1)
    raise SystemExit(3)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_crashing_worker_fails_the_run_stops_the_others_and_registers_nothing(tiny_mnist, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(CRASHING_WORKER)
    job = TrainingJob(source_dir=source, entry_script="train.py", data=tiny_mnist,
                      distribution=TensorflowDistribution(2))
    run = LocalBackend(grace_seconds=1).submit(job)
    from kerasjob.run import finish_training

    with pytest.raises(TrainingFailed, match="Worker 1 failed with exit code 3") as caught:
        finish_training(run, job)
    assert caught.value.status == "failed"
    pids = run._state()["child_pids"]
    assert len(pids) == 2
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert client().search_model_versions("name = 'keras-mnist'") == []


def test_mpi_is_refused_locally_with_the_way_to_rehearse(tiny_mnist):
    from kerasjob import MpiDistribution, ValidationError

    with pytest.raises(ValidationError, match="TensorflowDistribution"):
        submit_training(data=tiny_mnist, distribution=MpiDistribution(node_count=2), show_output=False)
