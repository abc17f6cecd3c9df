"""The model that travels: a compiled ``keras.Model``, a ``.keras`` file or a builder -> the job's source folder.

The folder is content-addressed under ``$KERASJOB_HOME/packages/<sha256>/`` and holds the packaged trainer
(``training/``: ``keras_fit.py`` and its siblings) and one of:

- ``model.keras``: architecture, compile config and initial weights (Keras's own format);
- ``builder.pkl``: a cloudpickle of ``fn(hyperparameters) -> compiled keras.Model``, for sweeps.

Classes and functions the model uses that the job's environment cannot import (defined in the caller's
``__main__``, a notebook's included, or in a module of the caller's own beside it) travel by value in
``custom_objects.pkl`` ({name: object}), as Ray, SageMaker and MLflow ship them (cloudpickle). When a
pickle travels, the job's Python is pinned to the caller's minor version (``pinned_conda_file``), since
a pickle of code only loads in the Python that wrote it. What cannot be pickled (an open file, a lock,
a live connection held in a closure) is refused before anything starts, naming why.

Example:
    >>> package = package_model(model)                        # doctest: +SKIP
    >>> sorted(p.name for p in package.folder.iterdir())[:2]  # doctest: +SKIP
    ['contract.py', 'custom_objects.pkl']
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import ValidationError

__all__ = ["BUILDER_FILE", "CUSTOM_OBJECTS_FILE", "FIT_ENTRY_SCRIPT", "MODEL_FILE", "PACKAGE_MARKER", "ModelPackage",
           "ModelSummary", "PreparedModel", "build_from", "is_package", "load_custom_objects", "load_trained_model", "package_model",
           "pinned_conda_file", "prepare_model", "summarize"]

MODEL_FILE = "model.keras"
BUILDER_FILE = "builder.pkl"
CUSTOM_OBJECTS_FILE = "custom_objects.pkl"
FIT_ENTRY_SCRIPT = "fit_job.py"
#: What marks a folder as a package this module wrote (and what it says about the model).
PACKAGE_MARKER = "kerasjob_model.json"
_TRAINING_DIR = Path(__file__).with_name("training")
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ModelSummary:
    """What the checks and the job need to know about a compiled model, read in the caller's process."""

    name: str
    inputs: dict[str, tuple[tuple[int | None, ...], str]]     # input name -> (shape without batch, dtype)
    outputs: dict[str, tuple[tuple[int | None, ...], str]]
    loss: str                                                 # the loss's name ("" when a custom object)
    metrics: tuple[str, ...]                                  # the compiled metrics' names, as Keras logs them

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "loss": self.loss, "metrics": list(self.metrics),
                "inputs": {k: [list(shape), dtype] for k, (shape, dtype) in self.inputs.items()},
                "outputs": {k: [list(shape), dtype] for k, (shape, dtype) in self.outputs.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSummary":
        def specs(raw: Mapping[str, Any]) -> dict[str, tuple[tuple[int | None, ...], str]]:
            return {k: (tuple(shape), str(dtype)) for k, (shape, dtype) in raw.items()}

        return cls(name=str(data["name"]), inputs=specs(data["inputs"]), outputs=specs(data["outputs"]),
                   loss=str(data["loss"]), metrics=tuple(data["metrics"]))


@dataclass(frozen=True)
class ModelPackage:
    """A packaged model: the job's source folder, its entry script's model arguments and what it holds."""

    folder: Path
    summary: ModelSummary
    builder: bool = False
    pickles: bool = False
    arguments: tuple[str, ...] = field(default=())


def _module_travels_by_value(module_name: str) -> bool:
    """Whether the job's environment could not import ``module_name``: ``__main__``, or a module of the caller's
    own (a file outside the standard library and site-packages)."""
    if module_name == "__main__" or module_name.startswith("__main__."):
        return True
    module = sys.modules.get(module_name.split(".")[0])
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return False
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    resolved = str(Path(path).resolve())
    return not any(resolved.startswith(str(Path(root).resolve())) for root in roots)


def _walk(config: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(config, Mapping):
        yield config
        for value in config.values():
            yield from _walk(value)
    elif isinstance(config, (list, tuple)):
        for value in config:
            yield from _walk(value)


def _custom_objects(model: Any) -> dict[str, Any]:
    """Every class and function ``model`` uses that must travel by value, by the name Keras looks it up under."""
    found: dict[str, Any] = {}
    for layer in [model, *model._flatten_layers(include_self=False)]:
        for cls in type(layer).__mro__:
            if _module_travels_by_value(cls.__module__):
                found[cls.__name__] = cls
    main = sys.modules.get("__main__")
    config = {"compile": model.get_compile_config() if hasattr(model, "get_compile_config") else None}
    for node in _walk(config):
        name = node.get("config") if node.get("class_name") == "function" else node.get("class_name")
        if not isinstance(name, str):
            continue
        candidate = getattr(main, name, None)
        if candidate is not None and isinstance(candidate, (type, types.FunctionType)) \
                and _module_travels_by_value(getattr(candidate, "__module__", "")):
            found[name] = candidate
    for value in (getattr(model, "loss", None),):
        if isinstance(value, types.FunctionType) and _module_travels_by_value(value.__module__):
            found[value.__name__] = value
    return found


def _cloudpickle(value: Any, argument: str, what: str) -> bytes:
    """``value`` pickled by value (cloudpickle), or ``ValidationError`` saying what cannot travel."""
    import cloudpickle

    modules = {getattr(value, "__module__", "")} | {getattr(each, "__module__", "") for each in
                                                     (value.values() if isinstance(value, dict) else ())}
    for module_name in modules:
        module = sys.modules.get(module_name)
        if module is not None and module_name != "__main__" and _module_travels_by_value(module_name):
            cloudpickle.register_pickle_by_value(module)
    try:
        return bytes(cloudpickle.dumps(value))
    except Exception as exc:  # noqa: BLE001 - pickle raises TypeError, PicklingError, AttributeError, ...
        culprit = _culprit(value)
        raise ValidationError(
            argument, f"{what} that can travel to the job (pickled by value with cloudpickle)", value,
            hint=f"It cannot: {culprit + ': ' if culprit else ''}{type(exc).__name__}: {exc}. Objects such as open "
                 "files, locks, sockets or live connections exist only in this process; create them inside the "
                 "function instead.") from exc


def _culprit(value: Any) -> str:
    """The first name a function (or a dict of them) holds on to that cannot be pickled, e.g. "`db` (a Connection)"."""
    import inspect

    import cloudpickle

    functions = list(value.values()) if isinstance(value, dict) else [value]
    for function in functions:
        if not isinstance(function, types.FunctionType):
            continue
        try:
            held = inspect.getclosurevars(function)
        except (TypeError, ValueError):
            continue
        for name, each in {**held.nonlocals, **held.globals}.items():
            try:
                cloudpickle.dumps(each)
            except Exception:  # noqa: BLE001
                kind = type(each)
                return f"`{name}` (a {kind.__module__}.{kind.__qualname__}) cannot be pickled"
    return ""


def summarize(model: Any, argument: str = "model") -> ModelSummary:
    """The shapes, dtypes, loss and metrics of a compiled ``model``; ``ValidationError`` when it is not compiled."""
    import keras

    if not isinstance(model, keras.Model):
        raise ValidationError(argument, "a keras.Model", model)
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValidationError(argument, "a compiled keras.Model (call model.compile(optimizer=..., loss=...) first)",
                              getattr(model, "name", model))
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValidationError(argument, "a model whose inputs are known (a functional or Sequential model "
                              "built with keras.Input)", model.name)

    def spec(tensors: Any) -> dict[str, tuple[tuple[int | None, ...], str]]:
        listed = tensors if isinstance(tensors, (list, tuple)) else [tensors]
        return {str(getattr(t, "name", f"input_{i}")).split(":")[0]: (tuple(t.shape[1:]), str(t.dtype))
                for i, t in enumerate(listed)}

    compile_config = model.get_compile_config() if hasattr(model, "get_compile_config") else {}
    loss = compile_config.get("loss") if isinstance(compile_config, dict) else None
    loss_name = loss if isinstance(loss, str) else (loss or {}).get("config", "") if isinstance(loss, dict) else ""
    if isinstance(loss, dict) and loss.get("class_name") not in (None, "function"):
        loss_name = str((loss.get("config") or {}).get("name", loss.get("class_name")))
    metrics = []
    for entry in (compile_config.get("metrics") or []) if isinstance(compile_config, dict) else []:
        for each in (entry if isinstance(entry, (list, tuple)) else [entry]):
            if isinstance(each, str):
                metrics.append("accuracy" if each in ("acc", "accuracy") else each)
            elif isinstance(each, dict):
                config = each.get("config")
                metrics.append(str(config.get("name") if isinstance(config, dict) else config or each["class_name"]))
    inputs = spec(model.inputs)
    input_names = getattr(model, "input_names", None)
    if isinstance(input_names, (list, tuple)) and len(input_names) == len(inputs):
        inputs = dict(zip(map(str, input_names), inputs.values()))
    return ModelSummary(name=str(model.name), inputs=inputs, outputs=spec(model.outputs), loss=str(loss_name or ""),
                        metrics=tuple(metrics))


def _write_package(files: Mapping[str, bytes], summary: ModelSummary, builder: bool, pickles: bool) -> Path:
    """The content-addressed folder holding the trainer and ``files``, written once (atomically)."""
    from .home import kerasjob_home

    trainer = sorted(p for p in _TRAINING_DIR.glob("*.py"))
    digest = hashlib.sha256()
    for path in trainer:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    digest.update(json.dumps(summary.to_dict(), sort_keys=True).encode())
    root = kerasjob_home() / "packages"
    folder = root / digest.hexdigest()[:24]
    if (folder / PACKAGE_MARKER).is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        for path in trainer:
            shutil.copy2(path, staging / path.name)
        for name, content in files.items():
            (staging / name).write_bytes(content)
        (staging / PACKAGE_MARKER).write_text(json.dumps(
            {"summary": summary.to_dict(), "builder": builder, "pickles": pickles,
             "python": f"{sys.version_info.major}.{sys.version_info.minor}"}, indent=1))
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / PACKAGE_MARKER).is_file():  # another process won the race with the same content
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def is_package(value: object) -> bool:
    """Whether ``value`` is a folder ``package_model`` wrote."""
    return isinstance(value, (str, os.PathLike)) and (Path(value) / PACKAGE_MARKER).is_file()


def _arguments(builder: bool, custom_objects: bool) -> tuple[str, ...]:
    model = ("--builder", BUILDER_FILE) if builder else ("--model", MODEL_FILE)
    return model + (("--custom-objects", CUSTOM_OBJECTS_FILE) if custom_objects else ())


def _read_package(folder: Path) -> ModelPackage:
    meta = json.loads((folder / PACKAGE_MARKER).read_text())
    return ModelPackage(folder=folder, summary=ModelSummary.from_dict(meta["summary"]), builder=bool(meta["builder"]),
                        pickles=bool(meta["pickles"]),
                        arguments=_arguments(bool(meta["builder"]), (folder / CUSTOM_OBJECTS_FILE).is_file()))


def build_from(builder: Callable[..., Any], hyperparameters: Mapping[str, Any], argument: str = "model") -> Any:
    """``builder(hyperparameters)``, checked: it must return a compiled ``keras.Model``."""
    try:
        model = builder(hyperparameters if type(hyperparameters) is not dict else dict(hyperparameters))
    except Exception as exc:  # noqa: BLE001 - the user's code: say what it raised, with which values
        raise ValidationError(argument, "a builder fn(hyperparameters: dict) -> compiled keras.Model that runs",
                              getattr(builder, "__name__", builder),
                              hint=f"Called with {dict(hyperparameters)} it raised {type(exc).__name__}: {exc}.") from exc
    import keras

    if not isinstance(model, keras.Model) or not getattr(model, "compiled", False):
        raise ValidationError(argument, "a builder that returns a compiled keras.Model",
                              getattr(builder, "__name__", builder),
                              hint=f"Called with {dict(hyperparameters)} it returned {type(model).__name__}"
                                   + (" (not compiled)" if isinstance(model, keras.Model) else "") + ".")
    return model


@dataclass(frozen=True)
class PreparedModel:
    """A model checked and serialized in memory, not yet written: ``write()`` makes it a package."""

    summary: ModelSummary
    files: Mapping[str, bytes]
    builder: bool
    pickles: bool
    existing: ModelPackage | None = None

    def write(self) -> ModelPackage:
        if self.existing is not None:
            return self.existing
        folder = _write_package(self.files, self.summary, self.builder, self.pickles)
        return ModelPackage(folder=folder, summary=self.summary, builder=self.builder, pickles=self.pickles,
                            arguments=_arguments(self.builder, CUSTOM_OBJECTS_FILE in self.files))


def package_model(model: Any, *, builder_hyperparameters: Mapping[str, Any] | None = None,
                  argument: str = "model") -> ModelPackage:
    """``model`` (a compiled ``keras.Model``, a ``.keras`` path, a builder or a package folder) as a package.

    A builder is called once with ``builder_hyperparameters`` to check it returns a compiled model (and to
    read its inputs and metrics); it travels pickled.
    """
    return prepare_model(model, builder_hyperparameters=builder_hyperparameters, argument=argument).write()


def prepare_model(model: Any, *, builder_hyperparameters: Mapping[str, Any] | None = None,
                  argument: str = "model") -> PreparedModel:
    """Everything ``package_model`` checks and serializes, with nothing written yet."""
    if is_package(model):
        existing = _read_package(Path(model))
        return PreparedModel(existing.summary, {}, existing.builder, existing.pickles, existing=existing)
    import keras

    files: dict[str, bytes] = {}
    custom: dict[str, Any] = {}
    builder = False
    if isinstance(model, (str, os.PathLike)):
        path = Path(model).expanduser()
        if path.suffix != ".keras" or not path.is_file():
            raise ValidationError(argument, "a compiled keras.Model, a path to an existing .keras file, or a builder "
                                  "fn(hyperparameters) -> compiled keras.Model", str(model))
        try:
            live = keras.saving.load_model(path)
        except Exception as exc:  # noqa: BLE001 - Keras raises many kinds for a file it cannot read
            raise ValidationError(argument, "a .keras file Keras can load (custom objects registered with "
                                  "keras.saving.register_keras_serializable)", str(model),
                                  hint=f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        summary = summarize(live, argument)
        files[MODEL_FILE] = path.read_bytes()
        custom = _custom_objects(live)
    elif isinstance(model, keras.Model):
        summary = summarize(model, argument)
        custom = _custom_objects(model)
        with tempfile.TemporaryDirectory() as scratch:
            target = Path(scratch) / MODEL_FILE
            try:
                model.save(target)
            except Exception as exc:  # noqa: BLE001
                raise ValidationError(argument, "a model Keras can save as a .keras file", model.name,
                                      hint=f"{type(exc).__name__}: {str(exc)[:300]}") from exc
            files[MODEL_FILE] = target.read_bytes()
    elif callable(model):
        built = build_from(model, builder_hyperparameters or {}, argument)
        summary = summarize(built, argument)
        summary = ModelSummary(name=_NAME.sub("-", getattr(model, "__name__", summary.name)).strip("-_.")
                               or summary.name, inputs=summary.inputs, outputs=summary.outputs, loss=summary.loss,
                               metrics=summary.metrics)
        custom = _custom_objects(built)
        files[BUILDER_FILE] = _cloudpickle(model, argument, "a builder")
        builder = True
    else:
        raise ValidationError(argument, "a compiled keras.Model, a path to a .keras file, or a builder "
                              "fn(hyperparameters) -> compiled keras.Model", model)
    if custom:
        files[CUSTOM_OBJECTS_FILE] = _cloudpickle(custom, argument, f"custom objects ({', '.join(sorted(custom))})")
    return PreparedModel(summary, files, builder, builder or bool(custom))


def pinned_conda_file(conda_file: Path) -> Path:
    """``conda_file`` with its ``python=`` pinned to this interpreter's minor version (a pickle of code loads only
    in the Python that wrote it): the file itself when it pins that already, else a copy under KERASJOB_HOME."""
    from .home import kerasjob_home

    text = conda_file.read_text()
    wanted = f"python={sys.version_info.major}.{sys.version_info.minor}"
    pinned, count = re.subn(r"(?m)^(\s*-\s*)python(?:[=<>!~].*)?$", lambda m: str(m.group(1)) + wanted, text)
    if count and pinned == text:
        return conda_file
    if not count:
        pinned = re.sub(r"(?m)^(\s*)dependencies:\s*$", lambda m: f"{m.group(0)}\n{m.group(1)}  - {wanted}", text,
                        count=1)
    folder = kerasjob_home() / "environments"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"conda-{hashlib.sha256(pinned.encode()).hexdigest()[:16]}.yml"
    if not target.is_file():
        staging = target.with_suffix(".tmp")
        staging.write_text(pinned)
        os.replace(staging, target)
    return target


def load_custom_objects(package: Path | None) -> dict[str, Any]:
    """The custom objects a package carries ({} when none): what Keras needs to load the trained model."""
    if package is None or not (package / CUSTOM_OBJECTS_FILE).is_file():
        return {}
    import cloudpickle

    with open(package / CUSTOM_OBJECTS_FILE, "rb") as handle:
        loaded = cloudpickle.load(handle)
    return dict(loaded) if isinstance(loaded, dict) else {}


def load_trained_model(folder: Path, package: Path | None = None) -> Any:
    """The ``keras.Model`` in a downloaded model folder (an MLflow model holding ``model.keras``, or the file)."""
    import keras

    found = [folder] if folder.suffix == ".keras" else sorted(folder.rglob("*.keras"))
    if not found:
        raise FileNotFoundError(f"No .keras file in {folder}")
    return keras.saving.load_model(found[0], custom_objects=load_custom_objects(package))
