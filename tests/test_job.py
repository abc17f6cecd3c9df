"""TrainingJob: the seed's defaults, Azure's naming rules pinned, immutability."""

from __future__ import annotations

import pytest

from kerasjob import ComputeConfig, TrainingJob, ValidationError, submit_training
from kerasjob.environment import read_conda_file
from kerasjob.snapshot import scan_snapshot


def test_defaults_are_the_seed_job():
    job = TrainingJob()
    assert dict(job.hyperparameters) == {"batch_size": 50, "first_layer_neurons": 300, "second_layer_neurons": 100,
                                         "learning_rate": 0.001, "epochs": 20}
    assert (job.entry_script, job.experiment, job.model_name, job.model_path) == (
        "keras_mnist.py", "keras-mnist", "keras-mnist", "outputs/model")
    assert job.compute_config == ComputeConfig("gpu-cluster", "Standard_NC4as_T4_v3", 0, 4, 1800, False)
    assert job.data is None and job.data_mode == "download"


def test_script_arguments_are_the_seeds_flags():
    assert TrainingJob().script_arguments("/data") == [
        "--data-folder", "/data", "--batch-size", 50, "--first-layer-neurons", 300, "--second-layer-neurons", 100,
        "--learning-rate", 0.001, "--epochs", 20]


def test_the_callers_objects_are_never_mutated():
    hyperparameters = {"epochs": 3}
    job = TrainingJob(hyperparameters=hyperparameters)
    changed = job.with_changes(hyperparameters={"batch_size": 25})
    assert hyperparameters == {"epochs": 3}
    assert job.hyperparameters["batch_size"] == 50 and changed.hyperparameters["batch_size"] == 25
    assert changed.hyperparameters["epochs"] == 3
    with pytest.raises(TypeError):
        job.hyperparameters["epochs"] = 5
    with pytest.raises(AttributeError):
        job.epochs = 5


@pytest.mark.parametrize("name, ok", [
    ("gpu-cluster", True), ("a1", True), ("A" * 16, True), ("a", False), ("a" * 17, False),
    ("1cluster", False), ("gpu_cluster", False), ("gpu-", False), ("gpu cluster", False),
])
def test_compute_names_follow_amlcompute_rules(name, ok):
    if ok:
        assert ComputeConfig(name).name == name
    else:
        with pytest.raises(ValidationError):
            ComputeConfig(name)


@pytest.mark.parametrize("field, value, ok", [
    ("experiment", "keras-mnist_2", True), ("experiment", "9lives", True), ("experiment", "x" * 255, True),
    ("experiment", "x" * 256, False), ("experiment", "-x", False), ("experiment", "a.b", False),
    ("model_name", "keras.mnist-v2_1", True), ("model_name", "x" * 256, False), ("model_name", "_x", False),
    ("model_name", "a b", False),
])
def test_experiment_and_model_names_follow_azure_rules(field, value, ok):
    if ok:
        assert getattr(TrainingJob(**{field: value}), field) == value
    else:
        with pytest.raises(ValidationError):
            TrainingJob(**{field: value})


def test_a_custom_script_takes_any_scalar_hyperparameters(tmp_path):
    (tmp_path / "train.py").write_text("")
    job = TrainingJob(source_dir=tmp_path, entry_script="train.py", hyperparameters={"dropout": 0.5, "name": "x",
                                                                                      "augment": True})
    assert job.script_arguments("d")[2:] == ["--dropout", 0.5, "--name", "x", "--augment", True]


def test_the_environment_name_follows_its_content(tmp_path):
    text = (TrainingJob().conda_file).read_text()
    copy = tmp_path / "env.yml"
    copy.write_text(text)
    assert read_conda_file(copy).name == read_conda_file().name
    copy.write_text(text + "      - pandas\n")
    assert read_conda_file(copy).name != read_conda_file().name
    assert read_conda_file(base_image="mcr.microsoft.com/azureml/other:1").name != read_conda_file().name


def test_the_job_environment_pins_every_package_and_brings_its_own_cuda():
    """One environment name installs one set of code; no CUDA 11 image shadows TensorFlow's CUDA 12."""
    import yaml

    from kerasjob.environment import DEFAULT_BASE_IMAGE, V1_RUNTIME_REQUIREMENT

    document = yaml.safe_load(TrainingJob().conda_file.read_text())
    pip = next(entry["pip"] for entry in document["dependencies"] if isinstance(entry, dict))
    assert all("==" in requirement and "*" not in requirement for requirement in pip), pip
    assert any(requirement.startswith("tensorflow[and-cuda]==") for requirement in pip)
    assert not any(requirement.startswith("azureml-defaults") for requirement in pip)  # v2 jobs don't need it
    assert V1_RUNTIME_REQUIREMENT.startswith("azureml-defaults==")  # added for v1 runs only
    assert "cuda" not in DEFAULT_BASE_IMAGE and DEFAULT_BASE_IMAGE.startswith("mcr.microsoft.com/azureml/")


def test_the_snapshot_honours_amlignore_and_lists_sizes(tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(b"0" * 1000)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"0")
    (tmp_path / ".amlignore").write_text("data/\n")
    assert scan_snapshot(tmp_path).files == {".amlignore": 6, "train.py": 9}


def test_a_snapshot_over_300_mb_is_refused_naming_its_biggest_files(tmp_path, monkeypatch):
    import kerasjob.snapshot as snapshot

    monkeypatch.setattr(snapshot, "MAX_SNAPSHOT_BYTES", 1000)
    (tmp_path / "train.py").write_text("")
    (tmp_path / "weights.h5").write_bytes(b"0" * 2000)
    with pytest.raises(ValidationError, match=r"weights.h5 \(0.0 MB\)"):
        TrainingJob(source_dir=tmp_path, entry_script="train.py")


def test_the_dry_run_plan_shows_what_would_happen(tiny_mnist):
    plan = submit_training(data=tiny_mnist, dry_run=True)
    assert plan.backend == "local" and plan.total_bytes == sum(plan.files.values())
    assert plan.script_arguments[:2] == ["--data-folder", str(tiny_mnist)]
    assert plan.environment_name.startswith("kerasjob-keras-env-") and len(plan.environment_hash) == 64
    assert "register outputs/model as model 'keras-mnist'" in plan.model_registration
    assert "keras_mnist.py" in plan.describe()


def test_another_script_does_not_inherit_keras_mnists_default_hyperparameters(tmp_path):
    from kerasjob.run import make_job

    (tmp_path / "train.py").write_text("print('hi')\n")
    job = make_job(None, source_dir=tmp_path, entry_script="train.py", hyperparameters={"quality": 0.5})
    assert dict(job.hyperparameters) == {"quality": 0.5}
    tuned = TrainingJob(hyperparameters={"epochs": 3}).with_changes(source_dir=tmp_path, entry_script="train.py")
    assert dict(tuned.hyperparameters) == {"epochs": 3}


def test_the_keras_backend_picks_the_environment_and_reaches_the_script_as_a_flag():
    import yaml

    from kerasjob.environment import PACKAGED_CONDA_FILES

    job = TrainingJob(keras_backend="jax")
    assert job.conda_file == PACKAGED_CONDA_FILES["jax"]
    assert job.script_arguments("/data")[-2:] == ["--keras-backend", "jax"]
    spec = read_conda_file(job.conda_file)
    assert spec.keras_backends == ("jax",) and spec.name.startswith("kerasjob-keras-jax-env-")
    pip = next(entry["pip"] for entry in yaml.safe_load(job.conda_file.read_text())["dependencies"]
               if isinstance(entry, dict))
    assert all("==" in requirement for requirement in pip), pip
    assert any(requirement.startswith("jax[cuda12]==") for requirement in pip)
    assert not any(requirement.startswith("tensorflow") for requirement in pip)
    back = job.with_changes(keras_backend="tensorflow")
    assert back.conda_file == TrainingJob().conda_file and "--keras-backend" not in back.script_arguments("/data")


def test_a_custom_script_gets_no_backend_flag_but_its_environment_follows(tmp_path):
    (tmp_path / "train.py").write_text("")
    job = TrainingJob(source_dir=tmp_path, entry_script="train.py", keras_backend="jax")
    assert job.script_arguments("d") == ["--data-folder", "d"]
    assert read_conda_file(job.conda_file).keras_backends == ("jax",)


def test_seed_and_mixed_precision_are_passed_only_when_given(tmp_path):
    assert "--seed" not in TrainingJob().script_arguments("d")
    job = TrainingJob(hyperparameters={"seed": 3, "mixed_precision": True})
    assert job.script_arguments("d")[-4:] == ["--seed", 3, "--mixed-precision", True]
    assert job.with_changes(hyperparameters={"epochs": 2}).hyperparameters["seed"] == 3
    (tmp_path / "train.py").write_text("")
    moved = job.with_changes(source_dir=tmp_path, entry_script="train.py")
    assert dict(moved.hyperparameters) == {"seed": 3, "mixed_precision": True}  # set on purpose: kept
