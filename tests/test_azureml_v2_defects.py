"""Azure ML v2 behaviours the real SDK shows only when its own code runs (over kerasjob.testing.FakeMLClient)."""

from __future__ import annotations

import pytest

from kerasjob import BackendUnavailable, Sweep, TrainingFailed, TrainingJob, submit_training, tune_training
from kerasjob.backends.azureml_v2 import STATUS_MAP, AzureMLv2Backend
from kerasjob.azure_errors import is_not_found
from kerasjob.backends.base import RunStatus
from kerasjob.errors import DataError, KerasJobError
from kerasjob.testing import FakeMLClient



def submit(azure, **kwargs):
    return submit_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False, **kwargs)


def test_a_missing_asset_by_label_is_the_sdks_chained_mlexception_and_counts_as_not_found():
    from azure.ai.ml.exceptions import MlException

    with FakeMLClient() as azure, pytest.raises(MlException) as caught:
        azure.ml_client.data.get("nothing", label="latest")
    assert is_not_found(caught.value)


def test_an_unknown_latest_data_asset_is_a_data_error():
    with FakeMLClient() as azure, pytest.raises(DataError, match="No data asset 'other'"):
        submit(azure, data="azureml:other")


def test_the_v2_backend_needs_the_azureml_mlflow_plugin(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("azureml.mlflow") else real(name, *a))
    with FakeMLClient() as azure, pytest.raises(BackendUnavailable, match="azureml-mlflow"):
        submit(azure)
    assert "Jobs.create_or_update" not in azure.service_calls


def test_ctrl_c_inside_the_sdks_streaming_loop_cancels_the_job_on_the_service():
    with FakeMLClient(interrupt_after=2) as azure:
        run = AzureMLv2Backend(azure.ml_client).submit(TrainingJob())
        with pytest.raises(KeyboardInterrupt):
            run.wait()
        assert azure.ml_client.jobs.get(run.id).status == "Canceled"
    assert "Jobs.cancel" in azure.service_calls and azure.models == {}


def test_ctrl_c_during_a_sweep_cancels_the_sweep_on_the_service():
    with FakeMLClient(interrupt_after=2) as azure, pytest.raises(KeyboardInterrupt):
        tune_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False,
                      sweep=Sweep(max_total_runs=2, max_concurrent_runs=2))
    sweep = azure.submissions[0]
    assert azure.ml_client.jobs.get(sweep.name).status == "Canceled" and azure.models == {}


def test_a_lost_sweep_submit_response_makes_exactly_one_sweep():
    with FakeMLClient(lost_responses={"Jobs.create_or_update": 1}) as azure:
        result = tune_training(backend="azureml-v2", ml_client=azure.ml_client, show_output=False,
                               sweep=Sweep(max_total_runs=2, max_concurrent_runs=2))
    assert [job.name for job in azure.submissions] == [result.sweep_run_id]


def test_streaming_that_returns_before_the_end_is_followed_by_polling():
    assert STATUS_MAP["NotResponding"] is RunStatus.RUNNING
    with FakeMLClient(statuses=["Queued", "Running", "NotResponding", "Running", "Finalizing"]) as azure:
        result = submit(azure)
    assert result.status == "completed" and result.model_version == "1"


def test_a_failed_job_carries_the_service_error_and_a_clean_log_tail():
    lines = ["Epoch 1/20", "Traceback (most recent call last):", "ValueError: boom"]
    with FakeMLClient(final_status="Failed", log_lines=lines, error_message="User error: boom") as azure, \
            pytest.raises(TrainingFailed) as caught:
        submit(azure)
    assert "User error: boom" in str(caught.value)
    assert caught.value.log_tail.splitlines() == lines  # no RunId / Web View / Execution Summary banner


def test_a_retried_stream_does_not_repeat_lines():
    from azure.core.exceptions import ServiceRequestError

    lines = ["Epoch 1/2", "Epoch 2/2"]
    failures = {"RunHistory.get_details": [None, None, ServiceRequestError("reset")]}
    with FakeMLClient(statuses=["Queued", "Running", "Running", "Running"], log_lines=lines,
                      failures=failures) as azure:
        run = AzureMLv2Backend(azure.ml_client).submit(TrainingJob())
        seen = []
        assert run.wait(on_line=seen.append) is RunStatus.COMPLETED
    assert seen == lines and failures["RunHistory.get_details"] == []


def test_attach_finds_a_job_by_name_and_refuses_an_unknown_one():
    with FakeMLClient() as azure:
        backend = AzureMLv2Backend(azure.ml_client)
        run = backend.submit(TrainingJob())
        assert backend.attach(run.id).id == run.id
        with pytest.raises(KerasJobError, match="No Azure ML job named 'nope'"):
            backend.attach("nope")
