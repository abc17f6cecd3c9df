"""A script of the user's own, from the command line: any data folder, arguments after ``--`` unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kerasjob.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_the_example_script_runs_through_the_cli_with_its_own_arguments(capsys, isolated_home):
    argv = ["submit", "--source-dir", str(EXAMPLES / "custom_script"), "--entry-script", "train.py",
            "--data-folder", str(EXAMPLES / "custom_data"), "--experiment", "regression", "--model-name",
            "regression", "--json", "--", "--units", "4", "--epochs", "2", "--learning-rate", "0.05"]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["status"] == "completed"
    assert set(result["metrics"]) >= {"loss", "val_loss"}
    assert (result["model"]["name"], result["model"]["version"]) == ("regression", "1")
    # The script saw exactly what followed "--", and nothing kerasjob made up for MNIST.
    assert "'units': 4, 'epochs': 2, 'learning_rate': 0.05" in captured.err
    assert "--batch-size" not in captured.err

    # its own experiment, its own metric in runs list, and a model with a signature
    assert main(["runs", "list", "--experiment", "regression", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["primary_metric"] == "final_val_mse" and listed["primary_metric_value"] > 0
    assert main(["runs", "list"]) == 0
    assert "final_val_mse" in capsys.readouterr().out
    mlmodel = (isolated_home / "runs" / result["run_id"] / "outputs" / "model" / "MLmodel").read_text()
    assert "signature:" in mlmodel and "saved_input_example_info" in mlmodel


def test_a_custom_scripts_folder_need_not_hold_mnist(tmp_path, capsys):
    source = tmp_path / "job"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    data = tmp_path / "anything"
    data.mkdir()
    (data / "table.csv").write_text("a,b\n1,2\n")
    assert main(["submit", "--source-dir", str(source), "--data-folder", str(data), "--dry-run", "--json", "--",
                 "--my-flag", "3"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["script_arguments"][-2:] == ["--my-flag", "3"]
    assert plan["entry_script"] == "train.py"
