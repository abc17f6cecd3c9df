"""``TrainingJob``: everything that describes a training job, checked once, at construction.

Backends translate a job; they never re-validate or mutate it. Defaults are the
seed walkthrough's job: the packaged ``keras_mnist.py`` on MNIST, batch size 50,
300 and 100 neurons, learning rate 0.001, 20 epochs, experiment ``keras-mnist``
on compute ``gpu-cluster``, model ``keras-mnist`` from ``outputs/model``.

Example:
    >>> job = TrainingJob(hyperparameters={"epochs": 2})
    >>> job.script_arguments("/data")[:4]
    ['--data-folder', '/data', '--batch-size', 50]
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Union, cast

from .environment import DEFAULT_BASE_IMAGE, DEFAULT_CONDA_FILE, PACKAGED_CONDA_FILES, read_conda_file
from .errors import ValidationError
from .training import contract

__all__ = ["DEFAULT_ENTRY_SCRIPT", "DEFAULT_SOURCE_DIR", "REGISTERED_DATASET_PREFIX", "ComputeConfig", "Distribution",
           "MpiDistribution", "Scalar", "TensorflowDistribution", "TrainingJob"]

DEFAULT_SOURCE_DIR = Path(__file__).with_name("training")
DEFAULT_ENTRY_SCRIPT = "keras_mnist.py"
REGISTERED_DATASET_PREFIX = "azureml:"

# Azure ML naming rules (AmlCompute, Experiment, Model and Dataset docs), pinned in tests.
_COMPUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,14}[A-Za-z0-9]")
_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}")
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_VM_SIZE = re.compile(r"Standard_[A-Za-z0-9_]+", re.IGNORECASE)
_HYPERPARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

Scalar = Union[str, int, float, bool]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_name(argument: str, value: object, pattern: re.Pattern[str], expected: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValidationError(argument, expected, value)


@dataclass(frozen=True)
class ComputeConfig:
    """An Azure ML compute cluster (AmlCompute), created when absent.

    The seed's ``STANDARD_NC6`` (K80) is retired; the default is a current T4 size.

    Example:
        >>> ComputeConfig("gpu-cluster", max_nodes=2).max_nodes
        2
    """

    name: str = "gpu-cluster"
    vm_size: str = "Standard_NC4as_T4_v3"
    min_nodes: int = 0
    max_nodes: int = 4
    idle_seconds_before_scaledown: int = 1800
    low_priority: bool = False

    def __post_init__(self) -> None:
        _check_name("compute", self.name, _COMPUTE_NAME,
                    "2-16 letters, digits or '-', starting with a letter and ending with a letter or digit")
        _check_name("vm_size", self.vm_size, _VM_SIZE, "an Azure VM size such as 'Standard_NC4as_T4_v3'")
        if not _is_int(self.min_nodes) or self.min_nodes < 0:
            raise ValidationError("min_nodes", "an integer >= 0", self.min_nodes)
        if not _is_int(self.max_nodes) or self.max_nodes < 1:
            raise ValidationError("max_nodes", "an integer >= 1", self.max_nodes)
        if self.min_nodes > self.max_nodes:
            raise ValidationError("min_nodes", f"at most max_nodes={self.max_nodes}", self.min_nodes)
        if not _is_int(self.idle_seconds_before_scaledown) or self.idle_seconds_before_scaledown < 0:
            raise ValidationError("idle_seconds_before_scaledown", "an integer >= 0", self.idle_seconds_before_scaledown)
        if not isinstance(self.low_priority, bool):
            raise ValidationError("low_priority", "True or False", self.low_priority)


@dataclass(frozen=True)
class TensorflowDistribution:
    """Multi-worker data-parallel TensorFlow: ``worker_count`` nodes, one worker each."""

    worker_count: int = 2

    def __post_init__(self) -> None:
        if not _is_int(self.worker_count) or self.worker_count < 1:
            raise ValidationError("worker_count", "an integer >= 1", self.worker_count)

    @property
    def node_count(self) -> int:
        return self.worker_count


@dataclass(frozen=True)
class MpiDistribution:
    """MPI (Horovod-style): ``node_count`` nodes, ``process_count_per_node`` processes each."""

    node_count: int = 1
    process_count_per_node: int = 1

    def __post_init__(self) -> None:
        for name in ("node_count", "process_count_per_node"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValidationError(name, "an integer >= 1", value)


Distribution = Union[TensorflowDistribution, MpiDistribution]


@dataclass(frozen=True)
class TrainingJob:
    """A Keras training job, validated at construction; immutable afterwards.

    Args:
        source_dir: folder uploaded to the run (only it); defaults to the packaged training folder.
        entry_script: script inside ``source_dir`` that the run executes.
        hyperparameters: passed to the script as ``--name value`` (``_`` becomes ``-``).
            For the packaged script, unnamed ones keep the seed's defaults; it also takes
            ``seed`` (an int) and ``mixed_precision`` (a bool), passed only when given.
        data: ``None`` for MNIST (downloaded locally, a registered dataset on Azure),
            a local folder holding the four IDX files, or ``"azureml:NAME[:VERSION]"``.
        data_mode: ``"download"`` (default: MNIST is small) or ``"mount"``.
        dataset_name: name under which MNIST is registered on Azure.
        compute: a cluster name or a ``ComputeConfig``.
        conda_file, base_image: the environment (see ``kerasjob.environment``); the packaged
            conda file follows ``keras_backend``.
        experiment: experiment name. model_name: registered model name.
        model_path: folder of the run that holds the model.
        distribution: ``None``, ``TensorflowDistribution`` or ``MpiDistribution``.
        timeout: seconds after which the run is canceled; ``None`` for no limit.
        allow_secrets: upload files that look like credentials anyway.
        allow_symlinks: copy what a symlink leading out of ``source_dir`` points to (refused otherwise).
        max_restarts: how often the local supervisor starts a failed training process again (it resumes from
            its latest checkpoint in ``outputs/checkpoints``); 0 (default) for never.
        keras_backend: ``"tensorflow"`` (default) or ``"jax"``: what Keras runs on. It picks the
            packaged conda file and reaches the packaged script as ``--keras-backend``.
            Several workers (``TensorflowDistribution``) train on TensorFlow only.
        arguments: passed unchanged after the rest, for a script of your own (``kerasjob submit ... -- ARGS``).
        compile_cache: keep the compiled programs in a persistent cache shared by runs, sweep trials and
            restarts (``kerasjob.training.compile_cache``): ``$KERASJOB_CACHE_DIR/compile`` locally, a folder on
            the workspace's default datastore on Azure ML. True (default) or False.
        model: your own Keras model, trained by kerasjob's packaged trainer (``keras_fit.py``; see
            ``kerasjob.fit``): a compiled ``keras.Model``, a ``.keras`` path, or a builder
            ``fn(hyperparameters) -> compiled keras.Model``. It replaces ``source_dir`` and ``entry_script``
            with a content-addressed package (``kerasjob.model_package``); ``hyperparameters`` then carry
            ``fit``'s options (``epochs``, ``batch_size``, ``validation_split``, ``shuffle``, ``class_weight``,
            ``seed``) and, for a builder, its own values.
        x, y, validation_data, sample_weight: the model's data, as ``keras.Model.fit`` takes them (arrays, dicts
            of arrays, a DataFrame/Series, an ``.npz`` file or folder of shards, ``"azureml:NAME[:VERSION]"``);
            checked against the model and written once as a content-addressed ``.npz`` folder that becomes
            ``data`` (``kerasjob.data_package``). Without ``x``, ``data`` names such a folder or asset.

    Example:
        >>> TrainingJob(compute="GPU cluster")
        Traceback (most recent call last):
        ...
        kerasjob.errors.ValidationError: Invalid `compute`: expected 2-16 letters, digits or '-', starting with a letter and ending with a letter or digit. Received: compute='GPU cluster'
    """

    source_dir: Path = DEFAULT_SOURCE_DIR
    entry_script: str = DEFAULT_ENTRY_SCRIPT
    hyperparameters: Mapping[str, Scalar] = field(default_factory=dict)
    data: str | Path | None = None
    data_mode: str = "download"
    dataset_name: str = "mnist-dataset"
    compute: ComputeConfig | str = field(default_factory=ComputeConfig)
    conda_file: Path = DEFAULT_CONDA_FILE
    base_image: str = DEFAULT_BASE_IMAGE
    experiment: str = "keras-mnist"
    model_name: str = "keras-mnist"
    model_path: str = "outputs/model"
    distribution: Distribution | None = None
    timeout: float | None = None
    allow_secrets: bool = False
    allow_symlinks: bool = False
    max_restarts: int = 0
    keras_backend: str = contract.DEFAULT_KERAS_BACKEND
    arguments: tuple[str, ...] = ()
    compile_cache: bool = True
    model: Any = None
    x: Any = field(default=None, repr=False)
    y: Any = field(default=None, repr=False)
    validation_data: Any = field(default=None, repr=False)
    sample_weight: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        write_model_job = _check_model_job(self)
        _validate_source(self)
        _validate_hyperparameters(self)
        _validate_data(self)
        _validate_names(self)
        _validate_compute_and_distribution(self)
        _validate_timeout(self)
        _validate_max_restarts(self)
        _validate_keras_backend(self)
        _validate_arguments(self)
        _validate_environment(self)
        _validate_snapshot(self)
        if write_model_job is not None:
            write_model_job()  # only once every check above has passed

    # --- derived views -------------------------------------------------------------

    @property
    def uses_packaged_script(self) -> bool:
        return self.source_dir.resolve() == DEFAULT_SOURCE_DIR.resolve() and self.entry_script == DEFAULT_ENTRY_SCRIPT

    @property
    def is_model_job(self) -> bool:
        """Whether the job trains a model of the caller's (``model=``) with kerasjob's packaged trainer."""
        return self.model is not None

    @property
    def primary_metric(self) -> tuple[str, str]:
        """The metric a run's model is judged by and its goal: ``Final test accuracy`` for the packaged script;
        for a model job ``val_<first compiled metric>`` with validation data, else the train one, else the loss.

            >>> TrainingJob().primary_metric
            ('Final test accuracy', 'maximize')
        """
        if not self.is_model_job:
            return "Final test accuracy", "maximize"
        from .model_package import package_model

        summary = package_model(self.model).summary
        prefix = "val_" if self._has_validation else ""
        if summary.metrics:
            metric = summary.metrics[0]
            return prefix + metric, "minimize" if ("loss" in metric or "error" in metric) else "maximize"
        return prefix + "loss", "minimize"

    @property
    def model_arguments(self) -> tuple[str, ...]:
        """A model job's ``--model model.keras`` (or ``--builder builder.pkl``) ``[--custom-objects ...]``, read by
        the packaged trainer from its own folder; empty for a script.

            >>> TrainingJob().model_arguments
            ()
        """
        if not self.is_model_job:
            return ()
        from .model_package import package_model

        return package_model(self.model).arguments

    @property
    def _has_validation(self) -> bool:
        split = self.hyperparameters.get("validation_split", 0.0)
        folder = self.local_data_folder
        return bool(split) or (folder is not None and (folder / "validation").is_dir()) or (
            folder is None and self.registered_dataset is not None)

    @property
    def worker_count(self) -> int:
        """How many training processes the job runs (1 without a distribution).

            >>> TrainingJob(distribution=TensorflowDistribution(worker_count=2)).worker_count
            2
        """
        if isinstance(self.distribution, TensorflowDistribution):
            return self.distribution.worker_count
        if isinstance(self.distribution, MpiDistribution):
            return self.distribution.node_count * self.distribution.process_count_per_node
        return 1

    @property
    def compute_config(self) -> ComputeConfig:
        return cast(ComputeConfig, self.compute)  # normalised to a ComputeConfig in __post_init__

    @property
    def registered_dataset(self) -> tuple[str, str | None] | None:
        """``(name, version)`` when ``data`` names a registered Azure dataset."""
        if isinstance(self.data, str) and self.data.startswith(REGISTERED_DATASET_PREFIX):
            name, _, version = self.data[len(REGISTERED_DATASET_PREFIX):].partition(":")
            return name, version or None
        return None

    @property
    def local_data_folder(self) -> Path | None:
        if self.data is None or self.registered_dataset:
            return None
        return Path(self.data)

    @property
    def script_inputs(self) -> Mapping[str, Scalar]:
        """Every ``--name value`` the script receives after ``--data-folder``: the hyperparameters, then
        ``keras_backend`` for the packaged script when it is not the default.

            >>> dict(TrainingJob(keras_backend="jax").script_inputs)["keras_backend"]
            'jax'
        """
        inputs = dict(self.hyperparameters)
        if (self.uses_packaged_script or self.is_model_job) and self.keras_backend != contract.DEFAULT_KERAS_BACKEND:
            inputs["keras_backend"] = self.keras_backend
        return MappingProxyType(inputs)

    def script_arguments(self, data_folder: object) -> list:
        """The script's argv after its name: ``--data-folder <data>``, each of ``script_inputs``, then
        ``arguments`` unchanged.

        ``data_folder`` is whatever stands for the data on the backend (a path, or
        an Azure dataset input); values are passed as the user gave them.
        """
        arguments: list = [contract.DATA_FOLDER_FLAG, data_folder, *self.model_arguments]
        for name, value in self.script_inputs.items():
            arguments += [contract.flag_for(name), value]
        return arguments + list(self.arguments)

    def with_changes(self, **changes: object) -> "TrainingJob":
        """A copy with ``changes`` applied and validated again (the original is untouched).

        Unlike ``dataclasses.replace``, ``hyperparameters`` are merged into the packaged
        script's, and moving to another script drops keras_mnist.py's defaults.

            >>> TrainingJob().with_changes(hyperparameters={"epochs": 2}).hyperparameters["batch_size"]
            50
        """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        stays_packaged = self.uses_packaged_script and not ({"source_dir", "entry_script", "model"} & set(changes))
        new_hyperparameters = changes.get("hyperparameters")
        if stays_packaged and isinstance(new_hyperparameters, Mapping):
            changes["hyperparameters"] = {**self.hyperparameters, **new_hyperparameters}
        elif self.uses_packaged_script and "hyperparameters" not in changes:
            # Another script: it gets only the values set on purpose, not keras_mnist.py's defaults.
            changes["hyperparameters"] = {name: value for name, value in self.hyperparameters.items()
                                          if name not in contract.HYPERPARAMETERS
                                          or value != contract.HYPERPARAMETERS[name].default}
        values.update(changes)
        return TrainingJob(**values)


# --- one check per concern, in the order a user would fix them -----------------------


def _set(job: TrainingJob, name: str, value: object) -> None:
    object.__setattr__(job, name, value)  # normalising inside a frozen dataclass


_DEFAULT_NAME = "keras-mnist"
_FIT_OPTIONS: dict[str, tuple[str, object]] = {  # name -> (what it must be, a check)
    "epochs": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "validation_split": ("a number in [0, 1)", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                         and 0 <= v < 1),
    "shuffle": ("True or False", lambda v: isinstance(v, bool)),
    "class_weight": ("a JSON object of class index -> weight", lambda v: isinstance(v, str)),
    "seed": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
}


def _check_model_job(job: TrainingJob) -> Callable[[], None] | None:
    """``model=``: the model and its data checked against each other (nothing written); returns what writes the
    model as the job's source folder and the data as its ``data``, run once every other check has passed."""
    data_fields = ("x", "y", "validation_data", "sample_weight")
    if job.model is None:
        for name in data_fields:
            if getattr(job, name) is not None:
                raise ValidationError(name, "None unless `model` is given (x, y, ... are a model's data)",
                                      type(getattr(job, name)).__name__,
                                      hint="Pass model=<a compiled keras.Model> too, or use kerasjob.fit(model, x, y).")
        return None
    from .data_package import prepare_data
    from .model_package import FIT_ENTRY_SCRIPT, pinned_conda_file, prepare_model

    if not isinstance(job.hyperparameters, Mapping):
        raise ValidationError("hyperparameters", "a mapping of names to str, int, float or bool", job.hyperparameters)
    for name, (expected, check) in _FIT_OPTIONS.items():
        if name in job.hyperparameters and not check(job.hyperparameters[name]):  # type: ignore[operator]
            raise ValidationError(name, expected, job.hyperparameters[name])
    prepared = prepare_model(job.model, builder_hyperparameters={
        name: value for name, value in job.hyperparameters.items() if name not in _FIT_OPTIONS})
    data = None
    if job.x is not None:
        data = prepare_data(prepared.summary, job.x, job.y, validation_data=job.validation_data,
                            sample_weight=job.sample_weight)
    elif job.data is None:
        raise ValidationError("x", "the training data (arrays, a DataFrame, an .npz file or folder, or "
                              "'azureml:NAME[:VERSION]') for model=", None)
    elif any(getattr(job, name) is not None for name in data_fields[1:]):
        raise ValidationError("x", "the training inputs, given with y / validation_data / sample_weight", None)
    _set(job, "source_dir", DEFAULT_SOURCE_DIR)  # checked as the trainer's folder; the package adds the model
    _set(job, "entry_script", FIT_ENTRY_SCRIPT)
    derived = re.sub(r"[^A-Za-z0-9_-]+", "-", prepared.summary.name).strip("-_") or "keras-model"
    if job.experiment == _DEFAULT_NAME:
        _set(job, "experiment", derived)
    if job.model_name == _DEFAULT_NAME:
        _set(job, "model_name", derived)
    if job.dataset_name == "mnist-dataset":  # on Azure, the data asset (v2) or FileDataset (v1) of the model's data
        _set(job, "dataset_name", f"{job.model_name}-data" if _ASSET_NAME.fullmatch(str(job.model_name)) else derived)
    if data is not None and data.registered is not None:
        _set(job, "data", data.registered)
    for name in data_fields:
        _set(job, name, None)  # consumed: the job holds the written folder, never the caller's arrays

    def write() -> None:
        package = prepared.write()
        _set(job, "model", package.folder)
        _set(job, "source_dir", package.folder)
        if data is not None and data.registered is None:
            _set(job, "data", data.write().data)
        if package.pickles:
            _set(job, "conda_file", pinned_conda_file(Path(job.conda_file)))

    return write


def _validate_source(job: TrainingJob) -> None:
    if not isinstance(job.source_dir, (str, os.PathLike)):
        raise ValidationError("source_dir", "a folder path", job.source_dir)
    source = Path(job.source_dir)
    if not source.is_dir():
        raise ValidationError("source_dir", "an existing folder", str(source))
    _set(job, "source_dir", source)
    if not isinstance(job.entry_script, str) or not job.entry_script.endswith(".py"):
        raise ValidationError("entry_script", "a Python file name ending in .py", job.entry_script)
    script = (source / job.entry_script).resolve()
    if not script.is_relative_to(source.resolve()):
        raise ValidationError("entry_script", f"a file inside source_dir={str(source)!r}", job.entry_script)
    if not script.is_file():
        raise ValidationError("entry_script", f"a file that exists in source_dir={str(source)!r}", job.entry_script)


def _validate_hyperparameters(job: TrainingJob) -> None:
    given = job.hyperparameters
    if not isinstance(given, Mapping):
        raise ValidationError("hyperparameters", "a mapping of names to str, int, float or bool", given)
    for name, value in given.items():
        if not isinstance(name, str) or not _HYPERPARAMETER_NAME.fullmatch(name):
            raise ValidationError("hyperparameters", "names made of letters, digits and '_'", name)
        if name == "data_folder":
            raise ValidationError("hyperparameters", "no `data_folder` (pass the data as `data=`)", name)
        if not isinstance(value, (str, int, float, bool)):
            raise ValidationError(f"hyperparameters[{name!r}]", "a str, int, float or bool", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"hyperparameters[{name!r}]", "a finite number", value)
    merged = dict(given)
    if job.uses_packaged_script:
        merged = {name: spec.default for name, spec in contract.HYPERPARAMETERS.items()}
        merged.update(given)
        for name, value in given.items():
            if name in contract.OPTIONS:
                _check_option(name, value)
                continue
            spec = contract.HYPERPARAMETERS.get(name)
            if spec is None:
                known = ", ".join([*contract.HYPERPARAMETERS, *contract.OPTIONS])
                hint = ("The backend is a job setting (it picks the environment too): pass `keras_backend`"
                        if name == "keras_backend" else "")
                raise ValidationError("hyperparameters", f"one of {known} for keras_mnist.py", name, hint=hint)
            kind = "an integer" if spec.type is int else "a number"
            if spec.type is int and not _is_int(value) or spec.type is float and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise ValidationError(f"hyperparameters[{name!r}]", kind, value)
            number = cast(float, value)  # the check above let only an int or a float through
            too_small = number <= spec.minimum if spec.exclusive_minimum else number < spec.minimum
            if too_small:
                bound = f"> {spec.minimum:g}" if spec.exclusive_minimum else f">= {spec.minimum:g}"
                raise ValidationError(f"hyperparameters[{name!r}]", f"{kind} {bound}", value)
    _set(job, "hyperparameters", MappingProxyType(merged))


def _check_option(name: str, value: Scalar) -> None:
    """``seed``: an int >= 0; ``mixed_precision``: True or False (contract.OPTIONS)."""
    option = contract.OPTIONS[name]
    if option.type is bool:
        if not isinstance(value, bool):
            raise ValidationError(f"hyperparameters[{name!r}]", "True or False", value)
    elif not _is_int(value) or option.minimum is not None and cast(int, value) < option.minimum:
        raise ValidationError(f"hyperparameters[{name!r}]", f"an integer >= {option.minimum}", value)


def _validate_data(job: TrainingJob) -> None:
    if job.data_mode not in ("download", "mount"):
        raise ValidationError("data_mode", "'download' or 'mount'", job.data_mode)
    _check_name("dataset_name", job.dataset_name, _ASSET_NAME,
                "1-255 letters, digits, '-', '_' or '.', starting with a letter or digit")
    if job.data is None:
        return
    if isinstance(job.data, str) and job.data.startswith(REGISTERED_DATASET_PREFIX):
        name, _, version = job.data[len(REGISTERED_DATASET_PREFIX):].partition(":")
        if not _ASSET_NAME.fullmatch(name) or (version and not version.isdigit()):
            raise ValidationError("data", "'azureml:NAME' or 'azureml:NAME:VERSION' with a numeric version", job.data)
        return
    if not isinstance(job.data, (str, os.PathLike)):
        raise ValidationError("data", "a folder path, 'azureml:NAME[:VERSION]' or None for MNIST", job.data)
    if not job.uses_packaged_script:  # a script of the user's reads whatever it wants from its folder
        folder = Path(job.data).expanduser()
        if not folder.is_dir():
            raise ValidationError("data", "an existing folder", str(job.data))
        _set(job, "data", folder)
        return
    from .dataset import check_data_folder

    _set(job, "data", check_data_folder(job.data))


def _validate_names(job: TrainingJob) -> None:
    _check_name("experiment", job.experiment, _EXPERIMENT_NAME,
                "1-255 letters, digits, '-' or '_', starting with a letter or digit")
    _check_name("model_name", job.model_name, _ASSET_NAME,
                "1-255 letters, digits, '-', '_' or '.', starting with a letter or digit")
    path = job.model_path
    if not isinstance(path, str) or not path.startswith("outputs/") or ".." in Path(path).parts or path.strip("/") == "outputs":
        raise ValidationError("model_path", "a folder under 'outputs/' such as 'outputs/model'", path)


def _validate_compute_and_distribution(job: TrainingJob) -> None:
    if isinstance(job.compute, str):
        _set(job, "compute", ComputeConfig(name=job.compute))
    elif not isinstance(job.compute, ComputeConfig):
        raise ValidationError("compute", "a cluster name or a ComputeConfig", job.compute)
    distribution = job.distribution
    if distribution is None:
        return
    if not isinstance(distribution, (TensorflowDistribution, MpiDistribution)):
        raise ValidationError("distribution", "None, TensorflowDistribution(...) or MpiDistribution(...)", distribution)
    if isinstance(distribution, MpiDistribution) and job.uses_packaged_script:
        # MPI starts N copies of the script; keras_mnist.py is not rank-aware, so each would train alone,
        # log to the same run and write the same model file at once.
        raise ValidationError(
            "distribution", "TensorflowDistribution(worker_count=N) for the packaged keras_mnist.py", distribution,
            hint="It trains data-parallel under MultiWorkerMirroredStrategy from TF_CONFIG; MpiDistribution is "
                 "for a script of your own that reads its rank (e.g. OMPI_COMM_WORLD_RANK).")
    compute = job.compute_config
    if distribution.node_count > compute.max_nodes:
        raise ValidationError(
            "distribution", f"at most max_nodes={compute.max_nodes} nodes of compute {compute.name!r}",
            distribution, hint=f"It needs {distribution.node_count} nodes; raise `max_nodes` or lower the count.",
        )


def _validate_max_restarts(job: TrainingJob) -> None:
    value = job.max_restarts
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValidationError("max_restarts", "an integer from 0 to 100", value)
    if not isinstance(job.allow_symlinks, bool):
        raise ValidationError("allow_symlinks", "True or False", job.allow_symlinks)
    if not isinstance(job.compile_cache, bool):
        raise ValidationError("compile_cache", "True or False", job.compile_cache)


def _validate_timeout(job: TrainingJob) -> None:
    timeout = job.timeout
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise ValidationError("timeout", "a number of seconds > 0, or None for no limit", timeout)


def _validate_arguments(job: TrainingJob) -> None:
    arguments = job.arguments
    if isinstance(arguments, (str, bytes)) or not isinstance(arguments, (list, tuple)) or not all(
            isinstance(argument, str) for argument in arguments):
        raise ValidationError("arguments", "a list of strings, passed to the script unchanged", arguments)
    _set(job, "arguments", tuple(arguments))
    if arguments and job.uses_packaged_script:
        raise ValidationError(
            "arguments", "none for the packaged script (its flags are hyperparameters: --epochs ...)", arguments,
            hint="Arguments passed unchanged are for a script of your own: give its folder in `source_dir`.")


def _validate_keras_backend(job: TrainingJob) -> None:
    backend = job.keras_backend
    if backend not in contract.KERAS_BACKENDS:
        raise ValidationError("keras_backend", " or ".join(map(repr, contract.KERAS_BACKENDS)), backend)
    if backend != "tensorflow" and isinstance(job.distribution, TensorflowDistribution) and job.worker_count > 1:
        raise ValidationError(
            "keras_backend", "'tensorflow' for several workers (TensorflowDistribution)", backend,
            hint=f"Multi-worker training runs under TensorFlow's MultiWorkerMirroredStrategy. Train on {backend} "
                 "with one worker, or on 'tensorflow' with several.")


def _validate_environment(job: TrainingJob) -> None:
    conda_file = job.conda_file
    if isinstance(conda_file, (str, os.PathLike)) and Path(conda_file).resolve() in {
            path.resolve() for path in PACKAGED_CONDA_FILES.values()}:
        conda_file = PACKAGED_CONDA_FILES[job.keras_backend]  # kerasjob's own conda file follows the backend
    spec = read_conda_file(conda_file, job.base_image)
    if job.keras_backend not in spec.keras_backends:
        raise ValidationError(
            "conda_file", f"a conda file that lists `{job.keras_backend}` (keras_backend={job.keras_backend!r})",
            str(spec.conda_file), hint=f"It lists {' and '.join(spec.keras_backends)}; add the backend, or "
                                       f"leave conda_file out to use kerasjob's own for {job.keras_backend}.")
    _set(job, "conda_file", spec.conda_file)


def _validate_snapshot(job: TrainingJob) -> None:
    from .snapshot import MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_FILES, scan_snapshot

    if not isinstance(job.allow_secrets, bool):
        raise ValidationError("allow_secrets", "True or False", job.allow_secrets)
    snapshot = scan_snapshot(job.source_dir, allow_symlinks=job.allow_symlinks)
    biggest = ", ".join(f"{path} ({size / 1e6:.1f} MB)" for path, size in snapshot.biggest())
    if snapshot.total_bytes > MAX_SNAPSHOT_BYTES:
        raise ValidationError(
            "source_dir", f"a snapshot of at most {MAX_SNAPSHOT_BYTES // 2**20} MB (Azure ML's limit)",
            str(job.source_dir),
            hint=f"It holds {snapshot.total_bytes / 1e6:.1f} MB; biggest files: {biggest}. "
                 "Move data out, or list it in .amlignore.",
        )
    if len(snapshot.files) > MAX_SNAPSHOT_FILES:
        raise ValidationError(
            "source_dir", f"a snapshot of at most {MAX_SNAPSHOT_FILES} files (Azure ML's limit)", str(job.source_dir),
            hint=f"It holds {len(snapshot.files)} files; list what the job does not need in .amlignore.",
        )
    secrets = snapshot.secrets()
    if secrets and not job.allow_secrets:
        raise ValidationError(
            "source_dir", "no files that look like credentials in the snapshot", str(job.source_dir),
            hint=f"Found: {', '.join(secrets)}. Remove them, list them in .amlignore, or pass `allow_secrets=True`.",
        )

