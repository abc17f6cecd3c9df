"""`import kerasjob` stays light; the CLI's exit codes and JSON output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kerasjob.cli import main

HEAVY = ("azureml", "azure.ai.ml", "tensorflow", "keras", "mlflow")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    return eval(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)


def test_import_kerasjob_loads_no_sdk():
    assert _loaded_after("import kerasjob; kerasjob.TrainingJob(); kerasjob.submit_training") == []


def test_a_bad_input_through_the_cli_loads_no_sdk_and_exits_2():
    code = "from kerasjob.cli import main\nassert main(['submit', '--data-folder', '/nonexistent']) == 2"
    assert _loaded_after(code) == []


def test_a_missing_extra_names_the_install_line(monkeypatch):
    import importlib.util

    from kerasjob import BackendUnavailable, TrainingJob
    from kerasjob.backends.azureml import AzureMLBackend

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("azureml") else real(name, *a))
    with pytest.raises(BackendUnavailable) as caught:
        AzureMLBackend().check(TrainingJob())
    assert 'pip install "kerasjob[azureml]"' in str(caught.value)


def test_cli_bad_input_exits_2_and_names_the_folder(capsys):
    assert main(["submit", "--data-folder", "/nonexistent", "--json"]) == 2
    assert "/nonexistent" in capsys.readouterr().err


def test_cli_unknown_flag_exits_2():
    with pytest.raises(SystemExit) as caught:
        main(["submit", "--bogus"])
    assert caught.value.code == 2


def test_cli_dry_run_prints_the_plan_as_json(tiny_mnist, capsys):
    assert main(["submit", "--data-folder", str(tiny_mnist), "--epochs", "3", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["backend"] == "local" and "keras_mnist.py" in plan["files"]
    assert plan["script_arguments"][-2:] == ["--epochs", "3"]


@pytest.mark.slow
def test_cli_submit_json_runs_lists_and_downloads(tiny_mnist, tmp_path, capsys):
    args = ["submit", "--data-folder", str(tiny_mnist), "--epochs", "1", "--first-layer-neurons", "16",
            "--second-layer-neurons", "8", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "completed" and result["model"] == {"name": "keras-mnist", "version": "1",
                                                                    "champion": True}
    assert result["url"].startswith("sqlite:///") and "Final test accuracy" in result["metrics"]

    assert main(["runs", "list", "--json"]) == 0
    assert [run["run_id"] for run in json.loads(capsys.readouterr().out)] == [result["run_id"]]
    assert main(["runs", "logs", result["run_id"]]) == 0
    assert "Final test accuracy" in capsys.readouterr().out
    assert main(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["latest_version"] == "1"
    assert main(["models", "download", "keras-mnist", str(tmp_path / "model")]) == 0
    assert (tmp_path / "model" / "model.keras").is_file()
    assert main(["models", "download", "keras-mnist", str(tmp_path / "v1"), "--version", "1"]) == 0
    assert (tmp_path / "v1" / "model.keras").is_file()


@pytest.mark.slow
def test_cli_failed_run_exits_1(tmp_path, capsys):
    # A mid-file corrupted .gz no longer gets this far (the preflight reads every byte: exit 2, in
    # test_cli_bad_inputs.py); a script that fails does.
    source = tmp_path / "job"
    source.mkdir()
    (source / "train.py").write_text("import sys\nprint('giving up')\nsys.exit(3)\n")
    assert main(["submit", "--source-dir", str(source), "--data-folder", str(tmp_path), "--quiet", "--json"]) == 1
    output = json.loads(capsys.readouterr().out)
    assert output["status"] == "failed"


def test_cli_workers_flag_sets_the_distribution(tiny_mnist, capsys):
    assert main(["submit", "--data-folder", str(tiny_mnist), "--workers", "2", "--dry-run", "--json"]) == 0
    assert "worker_count=2" in json.loads(capsys.readouterr().out)["distribution"]


def test_cli_workers_over_the_cluster_limit_exits_2_naming_both_numbers(tiny_mnist, capsys):
    assert main(["submit", "--data-folder", str(tiny_mnist), "--workers", "5", "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert "max_nodes=4" in error and "Received: --workers 5" in error and "--max-nodes" in error
