"""The local backend for real: child processes, Keras training on tiny data, an MLflow store."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from kerasjob import (RunStatus, TrainingFailed, TrainingJob, ValidationError, download_model,
                      finish_training, submit_training)
from kerasjob.backends.local import LocalBackend, LocalRun
from kerasjob.tracking import client

from model_check import check_model, check_pyfunc

pytestmark = pytest.mark.slow

FAST = {"epochs": 2, "batch_size": 32, "first_layer_neurons": 32, "second_layer_neurons": 16}


def _script(tmp_path: Path, body: str) -> Path:
    source = tmp_path / "script-src"
    source.mkdir(exist_ok=True)
    (source / "train.py").write_text(body)
    return source


def _no_process_left(*pids: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_a_local_run_trains_tracks_registers_and_loads(tiny_mnist, tmp_path):
    first = submit_training(data=tiny_mnist, hyperparameters=FAST, show_output=False)
    assert first.status == "completed" and first.backend == "local"
    assert first.model_version == "1"
    second = submit_training(data=tiny_mnist, hyperparameters=FAST, show_output=False)
    assert second.model_version == "2" and second.run_id != first.run_id

    mlflow_client = client()
    mlflow_id = first.run.mlflow_run_id  # kerasjob's id is the run folder's; the supervisor made the MLflow run
    run = mlflow_client.get_run(mlflow_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["batch_size"] == "32" and run.data.params["epochs"] == "2"
    assert run.data.tags["kerasjob.backend"] == "local" and len(run.data.tags["kerasjob.source_sha256"]) == 64
    assert run.data.tags["kerasjob.run_id"] == first.run_id and run.data.tags["mlflow.user"] not in ("", "unknown")
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == "mnist" and len(dataset.dataset.digest) == 12
    assert str(tiny_mnist.resolve()) in dataset.dataset.source
    assert [m.step for m in mlflow_client.get_metric_history(mlflow_id, "Accuracy")] == [0, 1]
    assert len(mlflow_client.get_metric_history(mlflow_id, "Loss")) == 2
    assert len(mlflow_client.get_metric_history(mlflow_id, "Train accuracy")) == 2
    assert 0.0 <= first.metrics["Final test accuracy"] <= 1.0
    artifacts = {a.path for a in mlflow_client.list_artifacts(mlflow_id, "outputs")}
    assert "outputs/model" in artifacts and "outputs/training.png" in artifacts
    assert {a.path for a in mlflow_client.list_artifacts(mlflow_id, "logs")} == {"logs/driver_log.txt"}

    version = mlflow_client.get_model_version("keras-mnist", "1")
    assert version.run_id == mlflow_id
    assert version.tags["run_id"] == first.run_id and "Final test accuracy" in version.tags

    run_dir = Path(first.run.run_dir)
    assert (run_dir / "keras_mnist.py").is_file() and (run_dir / "outputs" / "model" / "model.keras").is_file()
    assert "Final test accuracy" in (run_dir / "logs" / "driver_log.txt").read_text()

    folder = download_model(first, tmp_path / "model")
    checked = check_model(folder / "model.keras")
    assert checked["shape"] == [3, 10]
    assert all(abs(total - 1.0) < 1e-4 for total in checked["row_sums"])
    # the registered model is an MLflow model: MLflow loads and serves it by its registry URI
    assert (folder / "MLmodel").is_file() and (folder / "input_example.json").is_file()
    served = check_pyfunc("models:/keras-mnist/1", first.url)
    assert served["flavors"] == ["keras", "python_function"] and served["shape"] == [3, 10]
    assert "784" in served["signature"]["inputs"] and "10]" in served["signature"]["outputs"]
    assert all(abs(total - 1.0) < 1e-4 for total in served["row_sums"])


def test_output_is_streamed_line_by_line(tiny_mnist):
    lines = []
    run = LocalBackend().submit(TrainingJob(data=tiny_mnist, hyperparameters=FAST))
    assert run.wait(on_line=lines.append).value == "completed"
    assert any(line.startswith("Epoch 2/2") for line in lines)
    assert any(line.startswith("Final test accuracy") for line in lines)


def test_a_script_that_raises_fails_with_its_log_tail_and_registers_nothing(tiny_mnist, tmp_path):
    source = _script(tmp_path, "print('starting')\nraise RuntimeError('broken script')\n")
    with pytest.raises(TrainingFailed) as caught:
        submit_training(source_dir=source, entry_script="train.py", data=tiny_mnist, show_output=False)
    assert caught.value.status == "failed"
    assert "RuntimeError: broken script" in caught.value.log_tail
    mlflow_client = client()
    assert mlflow_client.get_run(LocalRun.from_id(caught.value.run_id).mlflow_run_id).info.status == "FAILED"
    assert mlflow_client.search_model_versions("name = 'keras-mnist'") == []


SLEEPER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("grandchild", child.pid, flush=True)
time.sleep(600)
"""


def _wait_for_line(run: LocalRun, prefix: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in run.log_tail(50).splitlines():
            if line.startswith(prefix):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no line starting with {prefix!r}: {run.log_tail()}")


def test_cancel_kills_the_whole_process_group_and_marks_the_run_killed(tiny_mnist, tmp_path):
    source = _script(tmp_path, SLEEPER)
    run = LocalBackend(grace_seconds=1).submit(TrainingJob(source_dir=source, entry_script="train.py", data=tiny_mnist))
    grandchild = int(_wait_for_line(run, "grandchild").split()[1])
    state = run._state()
    run.cancel()
    assert run.status().value == "canceled"
    assert _no_process_left(*state["child_pids"], grandchild, state["supervisor_pid"])
    assert client().get_run(run.mlflow_run_id).info.status == "KILLED"


def test_ctrl_c_while_waiting_cancels_the_run(tiny_mnist, tmp_path):
    source = _script(tmp_path, SLEEPER)
    run = LocalBackend(grace_seconds=1).submit(TrainingJob(source_dir=source, entry_script="train.py", data=tiny_mnist))

    def interrupt(line):
        if line.startswith("grandchild"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.wait(on_line=interrupt)
    assert run.status().value == "canceled"
    assert _no_process_left(*run._state()["child_pids"])


def test_a_timeout_cancels_and_raises_training_failed(tiny_mnist, tmp_path):
    source = _script(tmp_path, "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n")
    started = time.monotonic()
    with pytest.raises(TrainingFailed, match="Timed out after 2 s") as caught:
        submit_training(source_dir=source, entry_script="train.py", data=tiny_mnist, timeout=2, show_output=False)
    assert time.monotonic() - started < 60
    assert caught.value.status == "canceled"
    assert client().get_run(LocalRun.from_id(caught.value.run_id).mlflow_run_id).info.status == "KILLED"


def test_two_submits_at_once_give_two_runs_and_two_versions(tiny_mnist):
    results, errors = [], []

    def one():
        try:
            results.append(submit_training(data=tiny_mnist, hyperparameters={**FAST, "epochs": 1}, show_output=False))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.run_id for r in results}) == 2
    assert sorted(r.model_version for r in results) == ["1", "2"]


def test_a_run_folder_that_cannot_be_written_is_refused_before_any_run(tiny_mnist, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the home should be")
    monkeypatch.setenv("KERASJOB_HOME", str(blocker))
    with pytest.raises(ValidationError, match="KERASJOB_HOME.*cannot be written"):
        submit_training(data=tiny_mnist, show_output=False)


def test_a_tracking_store_that_cannot_be_written_is_refused(tiny_mnist, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/store/mlflow.db")
    with pytest.raises(ValidationError, match="MLflow store"):
        submit_training(data=tiny_mnist, show_output=False)
    assert not (Path(os.environ["KERASJOB_HOME"]) / "runs").exists() or not any(
        (Path(os.environ["KERASJOB_HOME"]) / "runs").iterdir())


def test_the_users_tracking_uri_is_respected(tiny_mnist, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = submit_training(data=tiny_mnist, hyperparameters=FAST, show_output=False)
    assert result.url == uri
    assert client(uri).get_run(result.run.mlflow_run_id).info.status == "FINISHED"


def test_registered_azure_datasets_are_refused_locally(tiny_mnist):
    from kerasjob import ValidationError

    with pytest.raises(ValidationError, match="local backend"):
        submit_training(data="azureml:mnist-dataset", show_output=False)


USER_MLFLOW_SCRIPT = """
import os, mlflow
print("run id", os.environ["MLFLOW_RUN_ID"], flush=True)
with mlflow.start_run():
    mlflow.log_metric("Accuracy", 0.5, step=0)
"""


def test_a_users_script_gets_its_mlflow_run_before_it_starts(tiny_mnist, tmp_path):
    source = _script(tmp_path, USER_MLFLOW_SCRIPT)
    run = LocalBackend().submit(TrainingJob(source_dir=source, entry_script="train.py", data=tiny_mnist))
    assert run.wait().value == "completed"
    assert f"run id {run.mlflow_run_id}" in run.log_tail()
    assert client().get_run(run.mlflow_run_id).data.metrics == {"Accuracy": 0.5}


def test_kerasjobs_script_reports_through_the_supervisor_and_never_imports_mlflow(tiny_mnist):
    result = submit_training(data=tiny_mnist, hyperparameters=FAST, show_output=False)
    history = client().get_metric_history(result.run.mlflow_run_id, "Accuracy")
    assert [m.step for m in history] == [0, 1]
    assert "MLFLOW_RUN_ID" not in LocalRun.from_id(result.run_id)._launch["env"]
    assert "Accuracy" in (Path(result.run.run_dir) / "logs" / "metrics.jsonl").read_text()


def test_a_store_failure_after_the_script_started_stops_it_and_the_run_ends_failed(tiny_mnist, monkeypatch):
    # The caller only checks the store's first bytes (that is why --no-wait is instant): the supervisor opens it,
    # while the script starts. A store that breaks after the caller's check (simulated: the check is skipped)
    # stops the script; the run ends failed, saying why. A store damaged before submit is refused up front
    # (tests/test_faults.py).
    import kerasjob.tracking

    monkeypatch.setattr(kerasjob.tracking, "check_store", lambda uri: None)
    store = Path(os.environ["KERASJOB_HOME"]) / "mlflow.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(b"not an SQLite database" * 100)
    run = LocalBackend(grace_seconds=1).submit(TrainingJob(data=tiny_mnist, hyperparameters=FAST))
    assert run.wait() is RunStatus.FAILED
    assert "MLflow run could not be recorded" in run.reason()
    with pytest.raises(TrainingFailed, match="MLflow run could not be recorded"):
        finish_training(run, TrainingJob(data=tiny_mnist, hyperparameters=FAST))
    runs = Path(os.environ["KERASJOB_HOME"]) / "runs"
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(runs) in " ".join(p.info["cmdline"] or [])]


def test_the_metrics_file_is_read_by_complete_lines_only(tmp_path):
    from kerasjob.backends.local_supervisor import read_metrics_lines

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"metrics": {"Accuracy": 0.5}, "step": 0}\n{"metrics": {"Accu')
    records, position = read_metrics_lines(path, 0)
    assert records == [{"metrics": {"Accuracy": 0.5}, "step": 0}]
    with open(path, "a") as stream:
        stream.write('racy": 0.6}, "step": 1}\n')
    assert read_metrics_lines(path, position)[0] == [{"metrics": {"Accuracy": 0.6}, "step": 1}]
    assert read_metrics_lines(tmp_path / "absent.jsonl", 0) == ([], 0)


def test_a_busy_store_is_retried_not_fatal():
    from kerasjob.backends import local_supervisor

    calls = []

    def flaky(value):
        calls.append(value)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return value

    assert local_supervisor.store_call(flaky, 7) == 7 and len(calls) == 3
