"""The examples are valid and their code compiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat

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


def test_the_script_example_rejects_a_bad_folder_with_exit_2(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "submit_mnist.py"), "--data-folder", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Invalid `data`" in done.stdout
