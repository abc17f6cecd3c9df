"""The examples are valid and their code compiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: What a reader's copy of the notebook must not show: a path of the machine it was run on (the checkout, a
#: temporary folder, the venv, a home folder) or a warning (Python's, tqdm's, TensorFlow's absl/C++ lines, a
#: progress bar written over many outputs).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|tmp|home|Users|usr|opt|var|mnt|private)/|site-packages|\.venv\b"
                          r"|[A-Za-z]:\\")
WARNING_TEXT = re.compile(r"Warning\b|WARNING|warnings\.warn|IProgress|absl|oneDNN|cuda|^[IWEF]\d{4} "
                          r"|Traceback|Downloading artifacts|\d+%\|", re.MULTILINE)


def _output_texts(notebook: nbformat.NotebookNode) -> list[tuple[int, str, str]]:
    """``(cell index, output kind, text)`` of every output of every code cell."""
    texts = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            kind = output.get("name", output.output_type)
            if output.output_type == "error":
                texts.append((index, "error", "\n".join(output.get("traceback", []))))
            elif output.output_type == "stream":
                texts.append((index, kind, output.get("text", "")))
            else:
                texts.append((index, kind, str(output.get("data", {}).get("text/plain", ""))))
                if "text/html" in output.get("data", {}):  # a live display's folded log (kerasjob.progress)
                    texts.append((index, f"{kind} html", str(output["data"]["text/html"])))
    return texts


def _unclean(notebook: nbformat.NotebookNode) -> list[str]:
    """Each output that shows a machine path or a warning, or is written to stderr, named by its cell."""
    return [f"cell {index} ({kind}): {text[:300]!r}" for index, kind, text in _output_texts(notebook)
            if kind in ("stderr", "error") or MACHINE_PATH.search(text) or WARNING_TEXT.search(text)]


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
    shown = "\n".join(str(output.get("data", {}).get("text/html", "")) for cell_outputs in outputs.values()
                      for output in cell_outputs)
    # submit_training, tune_training and kerasjob.fit show one live display each, updated in place, the log folded
    assert "Sweep of 2 trials" in shown and "2 trials, 2 ended" in shown and "<details><summary>Log (" in shown
    assert "[worker 0] Final test accuracy" in shown
    assert any(output.output_type == "display_data" and "image/png" in output.data
               for cell_outputs in outputs.values() for output in cell_outputs)  # the ten digits, labelled
    assert " True\n" in texts  # the endpoint's digits are predict's
    assert "register outputs/model as model 'keras-mnist' (new version) in the workspace's model registry" in texts
    assert "'val_accuracy': [" in str(outputs)  # your own Keras model: kerasjob.fit's history
    assert "predict:" in texts and "load_model:" in texts
    assert _unclean(notebook) == []  # no machine path, no warning


def test_the_committed_notebook_shows_its_outputs_without_machine_paths_or_warnings():
    """The committed copy is executed (every code cell has run, in order, and shows what it made) and its outputs
    hold no path of the machine it ran on and no warning, no stderr at all. Cheap: nothing runs."""
    notebook = nbformat.read(EXAMPLES / "walkthrough.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    texts = "\n".join(text for _, _, text in _output_texts(notebook))
    assert "Model saved to outputs/model" in texts and "'val_accuracy': [" in texts and "predict:" in texts
    assert "Sweep of 2 trials" in texts and "<progress " in texts  # the live displays' last state
    assert _unclean(notebook) == []


def test_the_cleanliness_check_sees_a_path_and_a_warning():
    """The check above is not vacuous: a machine path, a Python warning and TensorFlow's C++ lines are caught."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="MNIST from /tmp/tmpsiu81a66/checkout/mnist\n"),
        nbformat.v4.new_output("stream", name="stdout",
                               text="I0000 00:00:1795.3 32721 cudart_stub.cc:31] Could not find cuda drivers\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "'/work/main/.venv/lib/python3.11'"}),
        nbformat.v4.new_output("stream", name="stderr", text="TqdmWarning: IProgress not found.\n"),
        nbformat.v4.new_output("stream", name="stdout", text="Epoch 1/1 - loss 0.36 - val_accuracy 0.94\n"),
    ])])
    assert [line.split(":")[0] for line in _unclean(notebook)] == ["cell 0 (stdout)"] * 2 + [
        "cell 0 (execute_result)", "cell 0 (stderr)"]


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
