"""The examples are valid and their code compiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_notebook_is_valid_and_its_cells_compile():
    notebook = nbformat.read(EXAMPLES / "walkthrough.ipynb", as_version=4)
    nbformat.validate(notebook)
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert any("submit_training(job, dry_run=True)" in source for source in cells)
    for source in cells:
        compile(source, "walkthrough.ipynb", "exec")
    import dataclasses

    from kerasjob import TrainingJob

    known = set(dir(TrainingJob)) | {field.name for field in dataclasses.fields(TrainingJob)}
    used = set(re.findall(r"\bjob\.(\w+)", "\n".join(cells)))  # compiling does not catch a renamed method
    assert used and used <= known, used - known


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path, shared_mnist, monkeypatch):
    """Every cell, as a reader runs it: one epoch, predict and its picture, a local endpoint, the Azure cells as
    dry runs (no config.json here), a two-trial sweep and two workers. The committed copy holds these outputs."""
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / "walkthrough.ipynb", as_version=4)
    run_dir = tmp_path / "checkout" / "examples"  # so that ../../shared/data/mnist is the shared copy
    run_dir.mkdir(parents=True)
    (tmp_path / "shared").symlink_to(shared_mnist.parents[1])
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(run_dir)}}).execute()
    outputs = {index: cell.outputs for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    texts = "\n".join(output.get("text", "") for cell_outputs in outputs.values() for output in cell_outputs)
    assert "Model saved to outputs/model (an MLflow model holding model.keras)" in texts
    assert any(output.output_type == "display_data" and "image/png" in output.data
               for cell_outputs in outputs.values() for output in cell_outputs)  # the ten digits, labelled
    assert " True\n" in texts  # the endpoint's digits are predict's
    assert "register outputs/model as model 'keras-mnist' (new version) in the workspace's model registry" in texts


def test_the_script_example_rejects_a_bad_folder_with_exit_2(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "submit_mnist.py"), "--data-folder", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Invalid `data`" in done.stderr and "Traceback" not in done.stderr


def test_the_script_example_ends_in_one_line_when_azure_refuses_the_login(workspace_config, monkeypatch, capsys,
                                                                          tmp_path):
    """Azure's refusal is a KerasJobError like any other: one line and exit 2, not a 140-line traceback."""
    import runpy

    from kerasjob.testing import FakeAzureML

    monkeypatch.setattr(sys, "argv", ["submit_mnist.py", "--workspace-config", str(workspace_config)])
    with FakeAzureML(access="not-logged-in"), pytest.raises(SystemExit) as ended:
        runpy.run_path(str(EXAMPLES / "submit_mnist.py"), run_name="__main__")
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "login" in err.lower()
    assert list(tmp_path.glob("model-v*")) == []  # it writes nothing into the current folder
