"""Adding a backend is one folder: a backend defined outside kerasjob (``tests/process_backend/``: one package, each
job a plain child process) and registered with ``register_backend`` trains, registers under the champion rule,
tunes and serves through the same ``submit_training``, ``tune_training`` and ``deploy_model`` as the built-in ones,
with nothing in kerasjob naming it."""

from __future__ import annotations

import json

import pytest

from kerasjob import (Sweep, TrainingFailed, TrainingJob, ValidationError, choice, deploy_model, download_model,
                      get_endpoint, list_endpoints, submit_training, tune_training)
from kerasjob.backends import BACKENDS, get_backend, register_backend
from kerasjob.run import finish_attached_run

#: The job: a script of its own that logs the metric the champion rule reads and writes a model (a scale).
SCRIPT = """\
import argparse, json, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--data-folder")
parser.add_argument("--scale", type=float, required=True)
args = parser.parse_args()
outputs = pathlib.Path("outputs")
(outputs / "model").mkdir(parents=True, exist_ok=True)
accuracy = round(1 - abs(args.scale - 2) / 10, 6)
(outputs / "metrics.json").write_text(json.dumps({"Final test accuracy": accuracy}))
(outputs / "model" / "model.json").write_text(json.dumps({"scale": args.scale}))
print(f"scale {args.scale}: Final test accuracy {accuracy}")
"""


@pytest.fixture
def job(tmp_path):
    assert "process" not in BACKENDS  # kerasjob knows nothing of it until it is registered
    register_backend("process", "process_backend:ProcessBackend")
    source = tmp_path / "job"
    source.mkdir()
    (source / "train.py").write_text(SCRIPT)
    yield TrainingJob(source_dir=source, entry_script="train.py", hyperparameters={"scale": 1.5},
                      experiment="contract", model_name="scaler")
    BACKENDS.pop("process")


def test_a_registered_backend_is_chosen_by_name_and_a_bad_registration_is_refused(job):
    assert get_backend("process").name == "process"
    with pytest.raises(ValidationError, match="target"):
        register_backend("other", "process_backend.ProcessBackend")
    assert "other" not in BACKENDS


def test_it_trains_registers_once_and_keeps_the_better_model_champion(job, tmp_path):
    first = submit_training(job, backend="process", show_output=False)
    assert (first.status, first.backend, first.metrics) == ("completed", "process", {"Final test accuracy": 0.95})
    assert (first.model_name, first.model_version, first.champion) == ("scaler", "1", True)
    assert json.loads((download_model(first, tmp_path / "model") / "model.json").read_text()) == {"scale": 1.5}

    worse = submit_training(job, backend="process", show_output=False, hyperparameters={"scale": 0.5})
    assert (worse.model_version, worse.champion) == ("2", False)  # registered, but the champion stays

    pending = submit_training(job, backend="process", wait=False, hyperparameters={"scale": 2.0})
    attached = finish_attached_run(get_backend("process").attach(pending.id), model_name="scaler")
    assert (attached.model_version, attached.champion) == ("3", True)
    again = finish_attached_run(get_backend("process").attach(pending.id), model_name="scaler")
    assert (again.model_version, again.champion) == ("3", True)  # registered once per run


def test_a_failed_run_registers_nothing_and_carries_its_log(job):
    with pytest.raises(TrainingFailed) as failed:
        submit_training(job, backend="process", show_output=False, hyperparameters={"scale": "big"})
    assert "invalid float value: 'big'" in failed.value.log_tail
    assert get_backend("process").attach(failed.value.run_id).model_registry().versions("scaler") == []


def test_it_tunes_through_its_own_sweeper_and_registers_the_best_trial(job):
    sweep = Sweep(space={"scale": choice(1.0, 2.0, 3.0)}, primary_metric="Final test accuracy", goal="maximize",
                  max_total_runs=3, max_concurrent_runs=1)
    result = tune_training(job, sweep, backend="process", show_output=False)
    assert [trial.parameters["scale"] for trial in result.trials] == [1.0, 2.0, 3.0]
    assert all(trial.state == "completed" for trial in result.trials)
    assert (result.best.parameters, result.best.metric) == ({"scale": 2.0}, 1.0)
    assert (result.backend, result.model_version, result.champion) == ("process", "1", True)


def test_it_serves_a_registered_model_at_an_endpoint(job):
    trained = submit_training(job, backend="process", show_output=False, hyperparameters={"scale": 3.0})
    endpoint = deploy_model(trained, endpoint="scaler", backend="process")
    assert endpoint.invoke([1, 2]).outputs == [[3.0], [6.0]]
    assert get_endpoint("scaler", backend="process") is endpoint
    assert [each.name for each in list_endpoints(backend="process")] == ["scaler"]
    with pytest.raises(ValidationError, match="port"):  # a host that starts no server takes no server options
        deploy_model("scaler:1", endpoint="scaler", backend="process", port=8080)
    endpoint.delete()
    assert list_endpoints(backend="process") == []
