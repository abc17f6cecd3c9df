"""Compile once per shape (issue 23): the persistent compilation cache the trainers turn on.

The slow tests count compilations in real runs of the packaged script on JAX: the script reports JAX's own
``/jax/compilation_cache/cache_hits`` and ``cache_misses`` events (a miss is a program compiled and written), and
the cache folder's files are compared before and after.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from kerasjob import Sweep, ValidationError, choice, submit_training, tune_training
from kerasjob.backends.local import LocalRun
from kerasjob.training import compile_cache

SMALL = {"epochs": 1, "batch_size": 32, "first_layer_neurons": 32, "second_layer_neurons": 16}
CACHE_LINE = re.compile(r"Compile cache: (?P<folder>.+): (?P<read>\d+) programs read from the cache, "
                        r"(?P<compiled>\d+) compiled and written")


def _cache_counts(log: str) -> tuple[Path, int, int]:
    match = CACHE_LINE.search(log)
    assert match, log[-2000:]
    # shown as $KERASJOB_CACHE_DIR/compile/...: no machine path in a notebook's outputs (issue 22 item 4)
    return Path(os.path.expandvars(match["folder"])), int(match["read"]), int(match["compiled"])


def _files(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


def test_the_folder_follows_the_environment_and_none_turns_it_off(tmp_path):
    assert compile_cache.cache_root({"KERASJOB_COMPILE_CACHE": str(tmp_path / "cc")}) == tmp_path / "cc"
    assert compile_cache.cache_root({"KERASJOB_CACHE_DIR": str(tmp_path)}) == tmp_path / "compile"
    assert compile_cache.cache_root({"KERASJOB_COMPILE_CACHE": "none", "KERASJOB_CACHE_DIR": str(tmp_path)}) is None
    assert compile_cache.enable_compile_cache("jax", {"KERASJOB_COMPILE_CACHE": "none"}) is None
    # one folder per Keras version, backend version and machine: a program built elsewhere is never read here
    folder = compile_cache.folder_for(tmp_path, "jax")
    assert folder.parent.parent.name.startswith("keras-3.") and folder.parent.name.startswith("jax-0.")
    assert folder.name == compile_cache.machine_digest() and len(folder.name) == 12


def test_tensorflow_gets_its_xla_persistent_cache_flag_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory=/old")
    folder = compile_cache.enable_compile_cache("tensorflow", {"KERASJOB_COMPILE_CACHE": str(tmp_path)})
    import os

    assert folder is not None and folder.is_dir()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={folder}"


def test_the_backend_in_use_is_read_without_loading_keras(tmp_path):
    assert compile_cache.keras_backend_in_use({"KERAS_BACKEND": "jax"}) == "jax"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert compile_cache.keras_backend_in_use({"KERAS_HOME": str(tmp_path)}) == "jax"
    assert compile_cache.keras_backend_in_use({"KERAS_HOME": str(tmp_path / "absent")}) == "tensorflow"


def test_the_plan_names_the_cache_and_compile_cache_false_turns_it_off(tmp_path):
    plan = submit_training(dry_run=True, data=None)
    assert plan.compile_cache.startswith("$KERASJOB_CACHE_DIR/compile ")  # no machine path in the plan
    assert os.environ["KERASJOB_CACHE_DIR"] == str(tmp_path / "cache")
    assert "compile cache: " in plan.describe()
    assert submit_training(dry_run=True, data=None, compile_cache=False).compile_cache == "off (compile_cache=False)"
    with pytest.raises(ValidationError) as caught:
        submit_training(dry_run=True, data=None, compile_cache="yes")
    assert caught.value.argument == "compile_cache" and "Received: compile_cache='yes'" in str(caught.value)


@pytest.mark.slow
def test_a_second_run_of_the_same_job_compiles_nothing(tiny_mnist, tmp_path):
    job = {"data": tiny_mnist, "keras_backend": "jax", "hyperparameters": SMALL, "show_output": False}
    first = submit_training(**job)
    folder, read, compiled = _cache_counts(first.run.log_tail(60))
    assert folder.is_relative_to(tmp_path / "cache" / "compile")  # the local backend's cache, handed to the run
    assert read == 0 and compiled > 0
    written = _files(folder)
    assert len(written) >= compiled

    second = submit_training(**job)
    assert _cache_counts(second.run.log_tail(60)) == (folder, compiled, 0)  # every program read, none compiled
    assert _files(folder) == written

    off = submit_training(**job, compile_cache=False)
    assert "Compile cache: off" in off.run.log_tail(60) and _files(folder) == written


@pytest.mark.slow
def test_a_sweeps_later_trials_reuse_the_first_trials_programs(tiny_mnist):
    sweep = Sweep(space={"learning_rate": choice(0.001, 0.002, 0.003, 0.004)}, sampling="grid", max_total_runs=4,
                  max_concurrent_runs=1, policy=None)
    result = tune_training(data=tiny_mnist, keras_backend="jax", hyperparameters=SMALL, sweep=sweep,
                           show_output=False)
    assert len(result.trials) == 4 and {trial.state for trial in result.trials} == {"completed"}
    counts = [_cache_counts(LocalRun.from_id(trial.run_id).log_tail(60)) for trial in result.trials]
    (first_folder, first_read, first_compiled), *later = counts
    assert first_read == 0 and first_compiled > 0
    assert later == [(first_folder, first_compiled, 0)] * 3


def test_azure_jobs_mount_one_datastore_folder_as_their_compile_cache():
    from kerasjob import TrainingJob
    from kerasjob.backends._azure import describe_compile_cache
    from kerasjob.backends.azureml_v2 import build_command_job, compile_cache_uri

    assert compile_cache_uri() == "azureml://datastores/workspaceblobstore/paths/kerasjob/compile-cache/"
    command = build_command_job(TrainingJob(), environment="env:1")
    assert "--compile-cache ${{outputs.compile_cache}}" in command.command
    assert command.outputs["compile_cache"].path == compile_cache_uri()
    assert "kerasjob/compile-cache/ on datastore workspaceblobstore" in describe_compile_cache(TrainingJob())
    assert describe_compile_cache(TrainingJob(compile_cache=False)) == "off (compile_cache=False)"
