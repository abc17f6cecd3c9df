"""How every sweep reads a swept value back and how each distribution writes itself out (tuning.results)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kerasjob import Sweep, TrainingJob, choice, loguniform, normal, quniform, uniform
from kerasjob.tuning.results import cast_trial_value

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "kerasjob"
TUNING = PACKAGE / "tuning"
#: Each backend's sweeper, in the backend's own folder.
SWEEPERS = sorted((PACKAGE / "backends").glob("*/sweep.py"))
PACKAGED = TrainingJob()
SEED = Sweep()


@pytest.mark.parametrize("name, raw, expected", [
    ("batch_size", 50.0, 50),          # HyperDrive's JSON
    ("batch_size", "50", 50),          # an MLflow param
    ("batch_size", 49.6, 50),          # rounded, never truncated
    ("learning_rate", "0.01", 0.01),
    ("learning_rate", 0.01, 0.01),
    ("batch_size", None, None),        # not logged
])
def test_the_packaged_scripts_values_take_its_declared_types(name, raw, expected):
    value = cast_trial_value(name, raw, PACKAGED, SEED)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("distribution, raw, expected", [
    (choice("relu", "tanh"), "tanh", "tanh"),
    (choice(0.88, 0.9), "0.9", 0.9),
    (choice(25, 50), 50.0, 50),
    (choice(25, 50), "50", 50),
    (uniform(0.1, 0.5), "0.25", 0.25),
    (uniform(0.1, 0.5), 0.25, 0.25),
    (loguniform(-6, -1), "0.01", 0.01),
    (normal(0, 1), "1", 1.0),
    (quniform(10, 100, 10), 50.0, 50),
    (quniform(0, 1, 0.1), "0.5", 0.5),
])
def test_another_scripts_values_are_read_back_by_their_distribution(distribution, raw, expected, tmp_path):
    (tmp_path / "train.py").write_text("import argparse\n")
    job = TrainingJob(source_dir=tmp_path, entry_script="train.py")
    value = cast_trial_value("x", raw, job, Sweep(space={"x": distribution}, policy=None))
    assert value == expected and type(value) is type(expected)


def test_each_distribution_writes_itself_out_for_hyperdrive_and_for_v2():
    pytest.importorskip("azureml.train.hyperdrive")
    pytest.importorskip("azure.ai.ml")
    from kerasjob.tuning.azureml_v2 import sweep_search_space
    from kerasjob.tuning.hyperdrive import hyperdrive_parameter_space

    sweep = Sweep(space={"batch_size": choice(25, 50), "learning_rate": loguniform(-6, -1),
                         "first_layer_neurons": quniform(10, 100, 10), "second_layer_neurons": choice(10, 20)})
    v1 = hyperdrive_parameter_space(sweep)
    assert sorted(v1) == ["--batch-size", "--first-layer-neurons", "--learning-rate", "--second-layer-neurons"]
    assert v1["--learning-rate"] == ["loguniform", [-6, -1]]
    assert v1["--first-layer-neurons"] == ["quniform", [10, 100, 10]] and v1["--batch-size"] == ["choice", [[25, 50]]]
    v2 = sweep_search_space(sweep)
    assert type(v2["learning_rate"]).__name__ == "LogUniform" and v2["batch_size"].values == [25, 50]
    assert (v2["first_layer_neurons"].min_value, v2["first_layer_neurons"].q) == (10, 10)


def test_the_sweepers_import_only_the_shared_results_never_the_facade():
    assert [path.parent.name for path in SWEEPERS] == ["azureml", "azureml_v2", "local"]
    for path in SWEEPERS:
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 3}
        assert "tuning_results" in imported and not {"tuning", "run"} & imported, path
    package = ast.parse((TUNING / "__init__.py").read_text())
    top_level = {node.module for node in package.body if isinstance(node, ast.ImportFrom) and node.module
                 and node.module.startswith(("backends.", "tuning"))}
    assert top_level == {"tuning_results"}  # the sweepers load through the backend, never at import


def test_every_sweep_ends_in_register_best():
    for path in SWEEPERS:
        source = path.read_text()
        assert "register_best(" in source and "register_trained_model" not in source and "TuningResult(" not in source
