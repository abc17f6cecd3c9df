"""``make test`` prints no warnings summary from dependencies (issue 22, acceptance; item 3).

A pytest of its own, under this project's configuration, runs what set off the dependencies' warnings in the suite:
azureml-core's conda file handling (its vendored ruamel.yaml: hundreds of ``PendingDeprecationWarning``, filtered
in pyproject.toml by source) and an MLflow ``PythonModel`` (MLflow's "Add type hints to the `predict` method"
``UserWarning``, which no filter can silence: MLflow issues it under its own ``catch_warnings`` and
``simplefilter("once")``; a typed ``predict`` does not set it off). Without the project's filters the same
run shows the summary, so the check is not vacuous."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD_TESTS = '''
import numpy as np


def test_a_v1_environment_from_the_packaged_conda_file():
    from kerasjob.environment import build_environment, read_conda_file

    assert build_environment(read_conda_file()).python.conda_dependencies is not None


def test_an_mlflow_python_model_with_a_typed_predict():
    from mlflow.pyfunc import PythonModel

    class Zeros(PythonModel):
        def predict(self, context, model_input: np.ndarray, params=None) -> list[int]:
            return [0] * len(model_input)

    assert Zeros().predict(None, np.zeros((2, 1))) == [0, 0]
'''


def _child_pytest(tmp_path: Path, *options: str) -> str:
    (tmp_path / "test_dependencies_warn.py").write_text(CHILD_TESTS)
    done = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
                           "-p", "no:cacheprovider", "-q", *options, str(tmp_path / "test_dependencies_warn.py")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done.stdout


def test_the_dependencies_warnings_are_filtered_by_source_and_no_summary_is_printed(tmp_path):
    assert "warnings summary" not in _child_pytest(tmp_path)
    unfiltered = _child_pytest(tmp_path, "-o", "filterwarnings=default")
    assert "warnings summary" in unfiltered and "PendingDeprecationWarning" in unfiltered
