"""Every bad input is refused before any side effect: typed error, argument named,
what was received echoed, and not one Azure call made."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from kerasjob import ComputeConfig, TensorflowDistribution, ValidationError, submit_training
from kerasjob.testing import FakeAzureML, FakeMLClient

from mnist_files import make_tiny_mnist, write_idx


def _source_with(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    for name, content in files.items():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return source


def _conda(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "env.yml"
    path.write_text(text)
    return path


def _broken_data(tmp_path: Path, fault: str) -> Path:
    import gzip

    folder = make_tiny_mnist(tmp_path / f"data-{fault}")
    images = folder / "train-images-idx3-ubyte.gz"
    labels = folder / "train-labels-idx1-ubyte.gz"
    if fault == "missing":
        labels.unlink()
    elif fault == "truncated":
        images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-500]))
    elif fault == "corrupted":
        images.write_bytes(images.read_bytes()[:100] + b"\x00garbage" * 50)
    elif fault == "magic":
        import numpy as np

        labels.unlink()
        write_idx(folder / "train-labels-idx1-ubyte", np.zeros(300, dtype="uint8"), magic=0x0803)
    elif fault == "counts":
        import numpy as np

        labels.unlink()
        write_idx(folder / "train-labels-idx1-ubyte", np.zeros(299, dtype="uint8"))
    return folder


NO_TF_CONDA = "dependencies:\n  - python=3.11\n  - pip:\n      - keras==3.*\n"
GPU_CONDA = "dependencies:\n  - pip:\n      - tensorflow-gpu==2.0.0\n      - keras\n"

# (case id, argument the message must name, builder of submit_training's kwargs, what must be echoed)
CASES = [
    ("compute-space", "compute", lambda t: {"compute": "GPU cluster"}, "GPU cluster"),
    ("compute-too-long", "compute", lambda t: {"compute": "a" * 17}, "a" * 17),
    ("compute-starts-digit", "compute", lambda t: {"compute": "1gpu"}, "1gpu"),
    ("compute-ends-dash", "compute", lambda t: {"compute": "gpu-"}, "gpu-"),
    ("vm-size", "vm_size", lambda t: {"compute": _lazy(lambda: ComputeConfig(vm_size="NC6"))}, "NC6"),
    ("min-over-max", "min_nodes", lambda t: {"compute": _lazy(lambda: ComputeConfig(min_nodes=5, max_nodes=4))}, "5"),
    ("max-zero", "max_nodes", lambda t: {"compute": _lazy(lambda: ComputeConfig(max_nodes=0))}, "0"),
    ("idle-negative", "idle_seconds_before_scaledown",
     lambda t: {"compute": _lazy(lambda: ComputeConfig(idle_seconds_before_scaledown=-1))}, "-1"),
    ("experiment-space", "experiment", lambda t: {"experiment": "my experiment"}, "my experiment"),
    ("experiment-empty", "experiment", lambda t: {"experiment": ""}, "''"),
    ("model-name-slash", "model_name", lambda t: {"model_name": "keras/mnist"}, "keras/mnist"),
    ("model-name-leading-dot", "model_name", lambda t: {"model_name": ".hidden"}, ".hidden"),
    ("model-path-outside", "model_path", lambda t: {"model_path": "../model"}, "../model"),
    ("dataset-name", "dataset_name", lambda t: {"dataset_name": "mnist data"}, "mnist data"),
    ("hp-unknown", "hyperparameters", lambda t: {"hyperparameters": {"batchsize": 50}}, "batchsize"),
    ("mpi-packaged-script", "distribution",
     lambda t: {"distribution": _lazy(lambda: __import__("kerasjob").MpiDistribution(node_count=2))},
     "MpiDistribution"),
    ("hp-list", "hyperparameters['batch_size']", lambda t: {"hyperparameters": {"batch_size": [50]}}, "[50]"),
    ("hp-nan", "hyperparameters['learning_rate']", lambda t: {"hyperparameters": {"learning_rate": math.nan}}, "nan"),
    ("hp-zero-lr", "hyperparameters['learning_rate']", lambda t: {"hyperparameters": {"learning_rate": 0.0}}, "0.0"),
    ("hp-float-batch", "hyperparameters['batch_size']", lambda t: {"hyperparameters": {"batch_size": 50.5}}, "50.5"),
    ("hp-zero-epochs", "hyperparameters['epochs']", lambda t: {"hyperparameters": {"epochs": 0}}, "0"),
    ("hp-not-mapping", "hyperparameters", lambda t: {"hyperparameters": [("epochs", 2)]}, "epochs"),
    ("hp-data-folder", "hyperparameters", lambda t: {"hyperparameters": {"data_folder": "x"}}, "data_folder"),
    ("timeout-negative", "timeout", lambda t: {"timeout": -5}, "-5"),
    ("timeout-string", "timeout", lambda t: {"timeout": "1h"}, "1h"),
    ("compile-cache-string", "compile_cache", lambda t: {"compile_cache": "no"}, "'no'"),
    ("data-mode", "data_mode", lambda t: {"data_mode": "stream"}, "stream"),
    ("data-registered-bad-version", "data", lambda t: {"data": "azureml:mnist:latest"}, "azureml:mnist:latest"),
    ("data-missing-folder", "data", lambda t: {"data": str(t / "nope")}, "nope"),
    ("data-missing-file", "data", lambda t: {"data": str(_broken_data(t, "missing"))}, "train-labels-idx1-ubyte"),
    ("data-truncated", "data", lambda t: {"data": str(_broken_data(t, "truncated"))}, "train-images-idx3-ubyte.gz"),
    ("data-corrupted", "data", lambda t: {"data": str(_broken_data(t, "corrupted"))}, "train-images-idx3-ubyte.gz"),
    ("data-wrong-magic", "data", lambda t: {"data": str(_broken_data(t, "magic"))}, "train-labels-idx1-ubyte"),
    ("data-count-mismatch", "data", lambda t: {"data": str(_broken_data(t, "counts"))}, "299 labels"),
    ("source-missing", "source_dir", lambda t: {"source_dir": t / "nowhere"}, "nowhere"),
    ("script-missing", "entry_script", lambda t: {"source_dir": _source_with(t, {}), "entry_script": "main.py"},
     "main.py"),
    ("script-outside", "entry_script", lambda t: {"source_dir": _source_with(t, {}), "entry_script": "../train.py"},
     "../train.py"),
    ("script-not-python", "entry_script", lambda t: {"source_dir": _source_with(t, {}), "entry_script": "train.sh"},
     "train.sh"),
    ("secret-config-json", "source_dir", lambda t: {"source_dir": _source_with(t, {"config.json": "{}"}),
                                                    "entry_script": "train.py"}, "src"),
    ("secret-dotenv", "source_dir", lambda t: {"source_dir": _source_with(t, {".env": "KEY=1"}),
                                               "entry_script": "train.py"}, "src"),
    ("secret-pem", "source_dir", lambda t: {"source_dir": _source_with(t, {"certs/server.pem": "x"}),
                                            "entry_script": "train.py"}, "src"),
    ("secret-azureml-dir", "source_dir", lambda t: {"source_dir": _source_with(t, {".azureml/config.json": "{}"}),
                                                    "entry_script": "train.py"}, "src"),
    ("snapshot-too-many-files", "source_dir",
     lambda t: {"source_dir": _source_with(t, {f"f/{i}.txt": "" for i in range(2001)}), "entry_script": "train.py"},
     "src"),
    ("conda-missing", "conda_file", lambda t: {"conda_file": t / "missing.yml"}, "missing.yml"),
    ("conda-not-yaml", "conda_file", lambda t: {"conda_file": _conda(t, "dependencies: [unclosed")}, "env.yml"),
    ("conda-no-tensorflow", "conda_file", lambda t: {"conda_file": _conda(t, NO_TF_CONDA)}, "env.yml"),
    ("conda-tensorflow-gpu", "conda_file", lambda t: {"conda_file": _conda(t, GPU_CONDA)}, "env.yml"),
    ("base-image", "base_image", lambda t: {"base_image": "not an image"}, "not an image"),
    ("workers-over-max-nodes", "distribution",
     lambda t: {"distribution": TensorflowDistribution(worker_count=8)}, "worker_count=8"),
    ("worker-count-zero", "worker_count", lambda t: {"distribution": _lazy(lambda: TensorflowDistribution(0))}, "0"),
    ("unknown-field", "epochs", lambda t: {"epochs": 2}, "2"),
    ("keras-backend-unknown", "keras_backend", lambda t: {"keras_backend": "torch"}, "torch"),
    ("keras-backend-jax-workers", "keras_backend",
     lambda t: {"keras_backend": "jax", "distribution": TensorflowDistribution(worker_count=2)}, "jax"),
    ("keras-backend-as-hyperparameter", "hyperparameters",
     lambda t: {"hyperparameters": {"keras_backend": "jax"}}, "keras_backend"),
    ("conda-lacks-the-backend", "conda_file",
     lambda t: {"keras_backend": "jax", "conda_file": _conda(t, "dependencies:\n  - pip:\n      - tensorflow\n"
                                                                "      - keras\n")}, "env.yml"),
    ("hp-seed-negative", "hyperparameters['seed']", lambda t: {"hyperparameters": {"seed": -1}}, "-1"),
    ("hp-mixed-precision-string", "hyperparameters['mixed_precision']",
     lambda t: {"hyperparameters": {"mixed_precision": "yes"}}, "yes"),
    ("backend-unknown", "backend", lambda t: {"backend": "sagemaker"}, "sagemaker"),
    ("auth-unknown", "auth", lambda t: {"auth": "password"}, "password"),
]


class _lazy:
    """Build the argument inside the test, so that its own ValidationError is what is checked."""

    def __init__(self, build):
        self.build = build


FAKES = {"azureml": FakeAzureML, "azureml-v2": FakeMLClient}


@pytest.mark.parametrize("backend", sorted(FAKES))
@pytest.mark.parametrize("case, argument, build, received", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_before_any_azure_call(backend, case, argument, build, received, tmp_path,
                                                    workspace_config):
    kwargs = build(tmp_path)
    with FAKES[backend]() as azure, pytest.raises(ValidationError) as caught:
        kwargs = {name: value.build() if isinstance(value, _lazy) else value for name, value in kwargs.items()}
        kwargs.setdefault("workspace_config", workspace_config)
        kwargs.setdefault("backend", backend)
        submit_training(show_output=False, **kwargs)
    message = str(caught.value)
    assert caught.value.argument == argument
    assert f"`{argument}`" in message
    assert "Received:" in message
    assert received in message, message
    assert azure.calls == []


def test_the_table_is_at_least_25_cases():
    assert len(CASES) >= 25


def test_secrets_are_accepted_when_the_user_opts_in(tmp_path, workspace_config):
    source = _source_with(tmp_path, {".env": "KEY=1"})
    with FakeAzureML() as azure:
        plan = submit_training(source_dir=source, entry_script="train.py", allow_secrets=True,
                               workspace_config=workspace_config, dry_run=True)
    assert ".env" in plan.files
    assert azure.calls == []


@pytest.mark.parametrize("backend", sorted(FAKES))
def test_missing_workspace_config_is_refused_before_any_call(tmp_path, backend):
    with FAKES[backend]() as azure, pytest.raises(ValidationError) as caught:
        submit_training(backend=backend, show_output=False)
    assert caught.value.argument == "workspace_config"
    assert azure.calls == []


# Azure ML's rule for online endpoint names, as azure-ai-ml checks it (validate_endpoint_or_deployment_name in
# azure/ai/ml/entities/_endpoint/_endpoint_helpers.py): 3-32 characters, a letter first, then letters, digits or
# '-', a letter or digit last. tests/test_endpoints_azure.py pins kerasjob's rule to the SDK's own function.
BAD_ENDPOINT_NAMES = [("too-short", "ab"), ("too-long", "a" * 33), ("leading-digit", "1mnist"),
                      ("leading-dash", "-mnist"), ("trailing-dash", "mnist-"), ("underscore", "mnist_prod"),
                      ("space", "mnist prod"), ("dot", "mnist.v1"), ("empty", ""), ("not-a-string", 42)]


@pytest.mark.parametrize("backend", ["azureml", "azureml-v2"])
@pytest.mark.parametrize("name", [name for _, name in BAD_ENDPOINT_NAMES], ids=[case for case, _ in BAD_ENDPOINT_NAMES])
def test_a_bad_endpoint_name_is_refused_before_any_azure_call(backend, name, workspace_config):
    from kerasjob import deploy_model

    with FakeMLClient() as azure, pytest.raises(ValidationError) as caught:
        deploy_model("keras-mnist:1", endpoint=name, backend=backend, workspace_config=workspace_config)
    assert caught.value.argument == "endpoint"
    assert f"Received: endpoint={name!r}" in str(caught.value)
    assert azure.calls == []


# --- kerasjob.fit: your own model and data, refused before anything starts, on every backend (local included) ----

def _fit_model(compiled: bool = True):  # type: ignore[no-untyped-def]
    import keras

    inputs = keras.Input((4,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs), name="bad-input-net")
    if compiled:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _fit_data(rows: int = 20):  # type: ignore[no-untyped-def]
    import numpy as np

    x = np.random.default_rng(0).random((rows, 4), dtype=np.float32)
    return x, (x[:, 0] * 3).astype("int64").clip(0, 2)


def _fit(t: Path, **changes):  # type: ignore[no-untyped-def]
    x, y = _fit_data()
    return {"model": _fit_model(), "x": x, "y": y, **changes}


def _with_nan():  # type: ignore[no-untyped-def]
    x, _ = _fit_data()
    x[3, 2] = float("nan")
    return x


def _uncompiled_builder(hyperparameters):  # type: ignore[no-untyped-def]
    return _fit_model(compiled=False)


def _holding_a_file(t: Path):  # type: ignore[no-untyped-def]
    handle = open(t / "held.txt", "w")  # noqa: SIM115 - a live file the builder holds on to

    def build(hyperparameters):  # type: ignore[no-untyped-def]
        handle.write("x")
        return _fit_model()
    return build


def _npz_without_y(t: Path) -> str:
    import numpy as np

    np.savez(t / "only-x.npz", x=_fit_data()[0])
    return str(t / "only-x.npz")


FIT_CASES = [
    ("fit-x-shape", "x", lambda t: _fit(t, x=_fit_data()[0][:, :3]), "shape (20, 3)"),
    ("fit-x-text", "x", lambda t: _fit(t, x=[["a", "b", "c", "d"]] * 20), "dtype <U1"),
    ("fit-y-length", "y", lambda t: _fit(t, y=_fit_data()[1][:5]), "shape (5,)"),
    ("fit-x-nan", "x", lambda t: _fit(t, x=_with_nan()), "shape (20, 4)"),
    ("fit-y-out-of-range", "y", lambda t: _fit(t, y=_fit_data()[1] + 7), "shape (20,)"),
    ("fit-y-one-hot-for-sparse-loss", "y", lambda t: _fit(t, y=__import__("numpy").eye(3)[_fit_data()[1]]),
     "shape (20, 3)"),
    ("fit-model-uncompiled", "model", lambda t: _fit(t, model=_fit_model(compiled=False)), "bad-input-net"),
    ("fit-builder-uncompiled", "model", lambda t: _fit(t, model=_uncompiled_builder), "_uncompiled_builder"),
    ("fit-model-cannot-travel", "model", lambda t: _fit(t, model=_holding_a_file(t)), "build"),
    ("fit-model-missing-file", "model", lambda t: _fit(t, model=str(t / "missing.keras")), "missing.keras"),
    ("fit-x-dict-unknown-input", "x", lambda t: _fit(t, x={"pixels": _fit_data()[0]}), "pixels"),
    ("fit-sample-weight-length", "sample_weight", lambda t: _fit(t, sample_weight=[1.0] * 3), "shape (3,)"),
    ("fit-validation-shape", "validation_data[0]",
     lambda t: _fit(t, validation_data=(_fit_data()[0][:, :2], _fit_data()[1])), "shape (20, 2)"),
    ("fit-validation-not-a-tuple", "validation_data", lambda t: _fit(t, validation_data=[1, 2, 3, 4]), "list"),
    ("fit-epochs-zero", "epochs", lambda t: _fit(t, epochs=0), "0"),
    ("fit-class-weight-keys", "class_weight", lambda t: _fit(t, class_weight={"cat": 1.0}), "cat"),
    ("fit-y-missing", "y", lambda t: _fit(t, y=None), "None"),
    ("fit-npz-without-y", "x", lambda t: _fit(t, x=_npz_without_y(t), y=None), "only-x.npz"),
]


@pytest.mark.parametrize("backend", ["local", *sorted(FAKES)])
@pytest.mark.parametrize("case, argument, build, received", FIT_CASES, ids=[case[0] for case in FIT_CASES])
def test_bad_model_or_data_is_refused_before_anything_starts(backend, case, argument, build, received, tmp_path,
                                                             workspace_config, isolated_home):
    pytest.importorskip("keras")
    from kerasjob import fit

    kwargs = build(tmp_path)
    fake = FAKES.get(backend)
    with (fake() if fake else _no_fake()) as azure, pytest.raises(ValidationError) as caught:
        if fake:
            kwargs.setdefault("workspace_config", workspace_config)
        fit(backend=backend, show_output=False, **kwargs)
    message = str(caught.value)
    assert caught.value.argument == argument, message
    assert f"`{argument}`" in message and "Received:" in message
    assert received in message, message
    assert azure is None or azure.calls == []
    assert not (isolated_home / "runs").exists() and not (isolated_home / "packages").exists()
    assert not (isolated_home / "data").exists()  # nothing written: neither the model nor the data


class _no_fake:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


def test_the_fit_table_has_at_least_12_cases():
    assert len(FIT_CASES) >= 12
