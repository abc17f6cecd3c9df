"""The CLI against both fake Azure MLs: the workspace flags, Azure's refusals (exit 2, one line, no traceback,
nothing created), following a run by id, and Ctrl-C (exit 130, the run canceled on the service)."""

from __future__ import annotations

import json

import pytest

from kerasjob.cli import main
from kerasjob.testing import FakeAzureML, FakeMLClient

FAKES = {"azureml": FakeAzureML, "azureml-v2": FakeMLClient}
CREATES = {"azureml": "Experiment.submit", "azureml-v2": "Jobs.create_or_update"}


def _submit_args(backend: str, config, *extra: str) -> list[str]:
    return ["submit", "--backend", backend, "--workspace-config", str(config), "--quiet", *extra]


def _refused(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasjob: "), captured.err
    return lines[0]


@pytest.mark.parametrize("backend", sorted(FAKES))
@pytest.mark.parametrize("access, words", [
    ("forbidden", "AccessDenied|HTTP 403|role"),
    ("no-workspace", "config.json"),
])
def test_a_refused_login_or_missing_workspace_exits_2_naming_the_fix(backend, access, words, workspace_config,
                                                                     capsys):
    with FAKES[backend](access=access) as azure:
        line = _refused(capsys, main(_submit_args(backend, workspace_config)))
    assert any(word in line for word in words.split("|")), line
    assert CREATES[backend] not in azure.service_calls


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_not_logged_in_exits_2_and_says_az_login(backend, workspace_config, capsys):
    with FAKES[backend](access="not-logged-in") as azure:
        line = _refused(capsys, main(_submit_args(backend, workspace_config, "--auth", "cli")))
    assert "az login" in line
    assert CREATES[backend] not in azure.service_calls


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_a_malformed_config_json_exits_2_even_on_dry_run(backend, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text("{'subscription_id': 'single quotes are not JSON'}")
    with FAKES[backend]() as azure:
        for extra in ((), ("--dry-run",)):
            line = _refused(capsys, main(_submit_args(backend, config, *extra)))
            assert "--workspace-config" in line and "JSON" in line
    assert azure.calls == []


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_the_workspace_flags_name_the_workspace_as_az_ml_does(backend, capsys):
    ids = ["--subscription-id", "00000000-0000-0000-0000-000000000000", "--resource-group", "rg",
           "--workspace-name", "ws"]
    with FAKES[backend]() as azure:
        assert main(["submit", "--backend", backend, *ids, "--dry-run", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["backend"] == backend
        assert azure.calls == []
        assert main(["submit", "--backend", backend, "--subscription-id", "s", "--dry-run"]) == 2
    assert "resource_group" in capsys.readouterr().err


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_a_no_wait_run_is_followed_and_canceled_by_id(backend, workspace_config, capsys):
    workspace = ["--backend", backend, "--workspace-config", str(workspace_config)]
    with FAKES[backend](statuses=["Running"] * 50) as azure:
        assert main(_submit_args(backend, workspace_config, "--no-wait", "--json")) == 0
        run_id = json.loads(capsys.readouterr().out)["run_id"]
        assert main(["runs", "show", run_id, *workspace, "-o", "json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert (shown["run_id"], shown["backend"], shown["status"]) == (run_id, backend, "running")
        assert main(["runs", "cancel", run_id, *workspace]) == 0
        assert capsys.readouterr().out.strip() == f"Run {run_id}: canceled"
        assert main(["runs", "show", "no-such-run", *workspace]) == 1
        assert "no-such-run" in capsys.readouterr().err
    assert azure.service_calls.count(CREATES[backend]) == 1


@pytest.mark.parametrize("backend", sorted(FAKES))
@pytest.mark.parametrize("command", ["submit", "tune"])
def test_ctrl_c_cancels_the_run_or_sweep_on_the_service_and_exits_130(backend, command, workspace_config, capsys):
    arguments = (_submit_args(backend, workspace_config) if command == "submit" else
                 ["tune", "--backend", backend, "--workspace-config", str(workspace_config), "--quiet",
                  "--max-total-runs", "2", "--max-concurrent-runs", "2"])
    with FAKES[backend](statuses=["Running"] * 20, interrupt_after=4) as azure:
        assert main(arguments) == 130
        if backend == "azureml":
            cancel = "Run.cancel" if command == "submit" else "HyperDrive.cancel"  # a sweep: HyperDriveRun.cancel
            assert azure.runs[0].canceled and cancel in azure.service_calls
        else:
            assert azure.ml_client.jobs.get(azure.submissions[0].name).status == "Canceled"
    assert "the run was canceled" in capsys.readouterr().err


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_a_no_wait_run_is_waited_for_by_id_and_registered_once(backend, workspace_config, capsys):
    workspace = ["--backend", backend, "--workspace-config", str(workspace_config)]
    with FAKES[backend](statuses=["Running"] * 3) as azure:
        assert main(_submit_args(backend, workspace_config, "--no-wait", "--json")) == 0
        run_id = json.loads(capsys.readouterr().out)["run_id"]
        for _ in range(2):  # waiting twice registers once
            assert main(["runs", "wait", run_id, "--quiet", *workspace]) == 0
            assert f"Run {run_id} completed. Model 'keras-mnist' version 1 registered." in capsys.readouterr().out
    assert len(azure.registered_models if backend == "azureml" else azure.models["keras-mnist"]) == 1
