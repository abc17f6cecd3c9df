"""``predict(model, inputs)``: what a trained model says about a few inputs, in one call, through its signature.

The model is a ``TrainingResult``, a folder (an MLflow model, or one holding
``model.keras``) or a model of the local MLflow registry: ``"NAME"`` (its
``champion``, else its latest version), ``"NAME@ALIAS"``, ``"NAME:VERSION"`` or
``"models:/NAME/VERSION"`` (``local_runs.resolve_model``). Images are a NumPy array (N x 784 or N x 28 x 28; uint8 0-255
or float 0-1), PNG files (28 x 28, grayscale or not), or an IDX images file.
Everything about the images is checked before the model is loaded, and the
model is loaded once per call.

Any other model is fed what its MLflow signature (``ModelSchema``) says: a NumPy array or a dict of arrays
(named tensors), a pandas DataFrame or a dict of columns (column-based signatures: a tabular model), or a
file: ``.npy``, ``.npz`` (one array, or one per input), ``.csv`` (named columns), ``.json`` (MLflow's
``{"inputs": ...}`` / ``{"dataframe_split": ...}``, a list of records, or a dict of columns). PNG and IDX
files are images, taken only by image models (one input of 784 values or H x W [x 1] pixels).

Example:
    >>> prediction = predict("models:/keras-mnist/1", "t10k-images-idx3-ubyte.gz")   # doctest: +SKIP
    >>> prediction.digits[:5]                                                      # doctest: +SKIP
    [7, 2, 1, 0, 4]
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

from .errors import ValidationError
from .optional import PREDICT
from .quiet import quiet_native_stderr

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .registration import TrainingResult

__all__ = ["SERVERS", "Images", "ModelSchema", "Prediction", "load_images", "load_inputs", "model_location",
           "predict", "read_schema", "request_body"]

SIDE = 28
PIXELS = SIDE * SIDE
Images = Union["NDArray[Any]", str, os.PathLike[str], Sequence[Union[str, os.PathLike[str]]]]


@dataclass(frozen=True)
class Prediction:
    """The predicted digit of each image, and the ten probabilities behind it."""

    digits: list[int]
    probabilities: list[list[float]]
    #: The model's raw outputs, as lists (a dict of them for a multi-output model); for a classifier the same
    #: rows as ``probabilities``, for a regressor its values.
    outputs: Any = None

    @classmethod
    def of(cls, values: Any) -> "Prediction":
        """The prediction for a model's outputs: the class (argmax) of each row of several scores, if rows."""
        import numpy as np

        if isinstance(values, dict):
            return cls(digits=[], probabilities=[], outputs={str(k): np.asarray(v).tolist() for k, v in values.items()})
        if hasattr(values, "to_numpy"):
            values = values.to_numpy()
        array = np.asarray(values, dtype=np.float64)
        if array.ndim == 2 and array.shape[1] > 1:
            return cls(digits=array.argmax(axis=1).astype(int).tolist(), probabilities=np.round(array, 6).tolist(),
                       outputs=array.tolist())
        return cls(digits=[], probabilities=[], outputs=array.tolist())

    def accuracy(self, labels: Sequence[int]) -> float:
        """The share of ``labels`` predicted right."""
        if len(labels) != len(self.digits):
            raise ValidationError("labels", f"{len(self.digits)} labels, one per image", f"{len(labels)} labels")
        return sum(int(digit == int(label)) for digit, label in zip(self.digits, labels)) / max(len(labels), 1)

    def to_dict(self) -> dict[str, Any]:
        if self.probabilities or self.outputs is None:
            return {"digits": self.digits, "probabilities": self.probabilities}
        return {"outputs": self.outputs}


def _from_array(array: NDArray[Any], received: object) -> NDArray[np.float32]:
    import numpy as np

    if array.ndim in (1, 2) and array.shape[-1] == PIXELS:
        flat = array.reshape(-1, PIXELS)
    elif array.ndim in (2, 3) and array.shape[-2:] == (SIDE, SIDE):
        flat = array.reshape(-1, PIXELS)
    else:
        raise ValidationError("images", f"an array of N x {PIXELS} or N x {SIDE} x {SIDE} pixels", received,
                              hint=f"Its shape is {tuple(array.shape)}.")
    if len(flat) == 0:
        raise ValidationError("images", "at least one image", received)
    if flat.dtype == np.uint8:
        return (flat / np.float32(255)).astype(np.float32)
    if not np.issubdtype(flat.dtype, np.floating) and not np.issubdtype(flat.dtype, np.integer):
        raise ValidationError("images", "uint8 pixels 0-255 or float pixels 0-1", received,
                              hint=f"Its dtype is {flat.dtype}.")
    low, high = float(flat.min()), float(flat.max())
    if np.issubdtype(flat.dtype, np.integer) or low < 0.0 or high > 1.0:
        if np.issubdtype(flat.dtype, np.integer) and 0 <= low and high <= 255:
            return (flat / np.float32(255)).astype(np.float32)
        raise ValidationError("images", "uint8 pixels 0-255 or float pixels 0-1", received,
                              hint=f"Its values run from {low:g} to {high:g}.")
    return flat.astype(np.float32)


def _read_png(path: Path) -> NDArray[Any]:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
    except (OSError, UnidentifiedImageError) as error:
        raise ValidationError("images", "PNG files, an IDX images file or an array", str(path),
                              hint=f"It could not be read as an image ({error}).") from None
    if gray.shape != (SIDE, SIDE):
        raise ValidationError("images", f"{SIDE} x {SIDE} pixel images, as MNIST's", str(path),
                              hint=f"It is {gray.shape[1]} x {gray.shape[0]}.")
    return gray


def load_images(images: Images) -> NDArray[np.float32]:
    """``images`` in any accepted form as float32 N x 784 in [0, 1] (``ValidationError`` otherwise)."""
    import numpy as np

    from .training.mnist_data import MnistFormatError, read_idx

    if isinstance(images, np.ndarray):
        return _from_array(images, f"array of shape {images.shape}")
    paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    if not paths or not all(isinstance(path, (str, os.PathLike)) for path in paths):
        raise ValidationError("images", "a NumPy array, PNG paths or an IDX images file", images)
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if missing:
        raise ValidationError("images", "existing PNG or IDX files", missing)
    first = Path(paths[0])
    if len(paths) == 1 and not first.suffix.lower() == ".png":
        try:
            array = read_idx(first)
        except MnistFormatError as error:
            raise ValidationError("images", "PNG files or an IDX images file (N x 28 x 28)", str(first),
                                  hint=str(error)) from None
        return _from_array(array, str(first))
    return _from_array(np.stack([_read_png(Path(path)) for path in paths]), [str(path) for path in paths])


def _looks_like_a_path(model: str) -> bool:
    """A folder the user meant (``./model``, ``/tmp/m``, ``runs/x/model``), not a registry reference: ``NAME/VERSION``
    (a version number after one slash) and ``models:/...`` are references."""
    if model.startswith("models:/") or re.fullmatch(r"[^/]+/\d+", model):
        return False
    return os.sep in model or model.startswith(".")


def model_location(model: object) -> tuple[str, str | None]:
    """``(uri or folder, tracking URI)`` for ``mlflow.pyfunc.load_model``; checked, nothing loaded.

    A registry reference resolves to one version (``models:/NAME/VERSION``), so that what
    is served or predicted with is named exactly.
    """
    from .backends.base import JobRun
    from .registration import TrainingResult, model_registry_of

    if isinstance(model, TrainingResult):
        location = model_registry_of(model.run).model_uri(model.model_name, model.model_version)
        return location if location is not None else (_downloaded(model.run), None)
    if isinstance(model, JobRun):
        return _downloaded(model), None
    if isinstance(model, os.PathLike) or isinstance(model, str) and Path(model).is_dir():
        if not Path(model).is_dir():
            raise ValidationError("model", "an existing model folder", str(model))
        return str(model), None
    if isinstance(model, str) and _looks_like_a_path(model):
        from .backends.local.runs import REFERENCE_FORMS

        raise ValidationError("model", f"an existing model folder (there is none at {str(Path(model).absolute())!r})"
                                       f" or a registered model: {REFERENCE_FORMS}", model)
    if isinstance(model, str):
        from .backends.local import tracking
        from .backends.local.runs import resolve_model

        chosen = resolve_model(model)
        return f"models:/{chosen.name}/{chosen.version}", tracking.tracking_uri()
    from .backends.local.runs import REFERENCE_FORMS

    raise ValidationError("model", f"a TrainingResult, a model folder or a registered model: {REFERENCE_FORMS}",
                          model)


def _downloaded(run: Any) -> str:
    from .registration import download_model

    folder = Path(tempfile.mkdtemp(prefix="kerasjob-model-")) / "model"
    return str(download_model(run, folder))


def _load(uri: str, tracking_uri: str | None) -> Any:
    """A callable from float32 N x 784 to N x 10 probabilities: MLflow's pyfunc, or Keras for a bare model.keras."""
    folder = Path(uri)
    if folder.is_dir() and not (folder / "MLmodel").is_file():
        if not (folder / "model.keras").is_file():
            raise ValidationError("model", "a folder holding an MLflow model (MLmodel) or model.keras", uri)
        import keras

        keras_model = keras.saving.load_model(folder / "model.keras")
        return lambda x: keras_model.predict(x, verbose=0, batch_size=2000)
    import mlflow
    from mlflow.exceptions import MlflowException

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    try:
        uri = _with_custom_objects(uri)
        pyfunc = mlflow.pyfunc.load_model(uri)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ValidationError("model", "a registered model version or an MLflow model folder", uri,
                              hint=str(error).splitlines()[0]) from None
    try:
        raw = pyfunc.get_raw_model()
    except NotImplementedError:
        raw = None
    keras = sys.modules.get("keras")  # loaded by MLflow's Keras flavour, if that is the model's
    if keras is not None and isinstance(raw, keras.Model):
        # MLflow's Keras flavour calls model.predict(x) with Keras's progress bar on stdout: call it quietly
        return lambda x: raw.predict(x, verbose=0, batch_size=2000)
    return pyfunc.predict


@dataclass(frozen=True)
class ModelSchema:
    """What a model's MLflow signature says it takes: one tensor, named tensors, or named columns."""

    kind: str                                                  # "tensor", "tensors", "columns" or "unknown"
    tensors: dict[str, tuple[tuple[int, ...], str]]            # name ("" for one) -> (shape with -1, dtype)
    columns: tuple[str, ...] = ()
    column_types: tuple[str, ...] = ()                         # MLflow's type names: "float", "double", "long", ...

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """The pixel shape (without the batch) of an image model: 784, H x W or H x W x 1; else None."""
        if self.kind == "unknown":
            return (PIXELS,)
        if self.kind != "tensor":
            return None
        shape = next(iter(self.tensors.values()))[0][1:]
        if shape == (PIXELS,) or len(shape) in (2, 3) and -1 not in shape and (len(shape) == 2 or shape[2] == 1):
            return shape
        return None


def read_schema(uri: str, tracking_uri: str | None) -> ModelSchema:
    """The input schema of the MLflow model at ``uri`` (its MLmodel file only: the model is not loaded)."""
    folder = Path(uri)
    if folder.is_dir() and not (folder / "MLmodel").is_file():
        return ModelSchema("unknown", {})
    import mlflow
    from mlflow.exceptions import MlflowException

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    try:
        signature = mlflow.models.get_model_info(uri).signature
    except MlflowException as error:
        raise ValidationError("model", "a registered model version or an MLflow model folder", uri,
                              hint=str(error).splitlines()[0]) from None
    schema = signature.inputs if signature is not None else None
    if schema is None:
        return ModelSchema("unknown", {})
    if schema.is_tensor_spec():
        tensors = {spec.name or "": (tuple(int(d) for d in spec.shape), str(spec.type)) for spec in schema.inputs}
        return ModelSchema("tensor" if len(tensors) == 1 and "" in tensors else "tensors", tensors)
    return ModelSchema("columns", {}, tuple(str(name) for name in schema.input_names()),
                       tuple(str(getattr(kind, "name", kind)) for kind in schema.input_types()))


def _read_file(path: Path, schema: ModelSchema) -> Any:
    import numpy as np

    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files if key not in ("y", "sample_weight", "x_columns")
                      and not key.startswith("y.")}
            columns = archive["x_columns"].tolist() if "x_columns" in archive.files else None
        arrays = {key[2:] if key.startswith("x.") else key: value for key, value in arrays.items()}
        if columns and "x" in arrays:
            import pandas as pd

            return pd.DataFrame(arrays["x"], columns=columns)
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays
    if suffix == ".csv":
        import pandas as pd

        return pd.read_csv(path)
    if suffix == ".json":
        import json

        try:
            return _from_json(json.loads(path.read_text()))
        except ValueError as error:
            raise ValidationError("inputs", "a JSON file", str(path), hint=str(error)) from None
    raise ValidationError("inputs", "an .npy, .npz, .csv or .json file (PNG and IDX files for image models)", str(path))


def _from_json(document: Any) -> Any:
    """MLflow's request forms (``inputs``, ``instances``, ``dataframe_split``, ``dataframe_records``), a list of
    records, a dict of columns, or nested lists."""
    import numpy as np
    import pandas as pd

    if isinstance(document, dict):
        if "dataframe_split" in document:
            split = document["dataframe_split"]
            return pd.DataFrame(split.get("data"), columns=split.get("columns"))
        if "dataframe_records" in document:
            return pd.DataFrame(document["dataframe_records"])
        if isinstance(document.get("columns"), list) and isinstance(document.get("data"), list):
            # pandas split, as MLflow saves a DataFrame input example and Azure ML's ``input_data`` carries one
            return pd.DataFrame(document["data"], columns=document["columns"])
        for key in ("inputs", "instances"):
            if key in document:
                return _from_json(document[key])
        if all(isinstance(value, list) for value in document.values()):
            return {str(key): value for key, value in document.items()}
    if isinstance(document, list) and document and all(isinstance(row, dict) for row in document):
        return pd.DataFrame(document)
    return np.asarray(document)


def _check_tensor(array: Any, spec: tuple[tuple[int, ...], str], argument: str) -> Any:
    import numpy as np

    shape, dtype = spec
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind in "USV":
        raise ValidationError(argument, "numbers", f"array of dtype {array.dtype}")
    if array.ndim == len(shape) - 1:
        array = array[None]  # one example
    if array.ndim != len(shape) or any(want not in (-1, got) for want, got in zip(shape[1:], array.shape[1:])):
        wanted = "(n, " + ", ".join("any" if d == -1 else str(d) for d in shape[1:]) + ")"
        raise ValidationError(argument, f"an array of shape {wanted}, as the model's signature says",
                              f"array of shape {tuple(array.shape)}")
    if not np.isfinite(array.astype(np.float64)).all():
        raise ValidationError(argument, "finite numbers (no NaN or inf)", f"array of shape {tuple(array.shape)}")
    return array.astype(dtype if dtype not in ("", "object") else np.float32)


def _is_model_tensor(array: Any, image_shape: tuple[int, ...]) -> bool:
    """Float pixels already in the image model's own shape (N x H x W x 1, say): they go to the model as they are,
    on the scale it was trained on; only the MNIST forms (uint8, or another shape) are read as 0-1 images."""
    import numpy as np

    return bool(np.issubdtype(array.dtype, np.floating) and tuple(array.shape[1:]) == tuple(image_shape))


def load_inputs(inputs: Any, schema: ModelSchema) -> Any:
    """``inputs`` in any accepted form, checked against ``schema`` and shaped as the model takes them."""
    import numpy as np

    image_shape = schema.image_shape
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else (
        list(inputs) if isinstance(inputs, (list, tuple)) and inputs and all(
            isinstance(each, (str, os.PathLike)) for each in inputs) else None)
    if paths is not None:
        missing = [str(path) for path in paths if not Path(path).is_file()]
        if missing:
            if image_shape is not None:
                raise ValidationError("images", "existing PNG or IDX files", missing)
            raise ValidationError("inputs", "existing files", missing)
        suffixes = {Path(path).suffix.lower() for path in paths}
        if len(paths) == 1 and suffixes <= {".npy", ".npz", ".csv", ".json"}:
            inputs = _read_file(Path(paths[0]), schema)
        elif image_shape is None:
            raise ValidationError("inputs", f"{_forms(schema)} (images only go to image models)",
                                  [str(path) for path in paths])
        else:
            return load_images(inputs).reshape((-1, *image_shape))  # PNG files or an IDX file
    if image_shape is not None and isinstance(inputs, np.ndarray) and not _is_model_tensor(inputs, image_shape):
        return load_images(inputs).reshape((-1, *image_shape))
    if schema.kind == "columns":
        import pandas as pd

        if isinstance(inputs, dict):
            inputs = pd.DataFrame(inputs)
        elif isinstance(inputs, np.ndarray) and inputs.ndim == 2 and inputs.shape[1] == len(schema.columns):
            inputs = pd.DataFrame(inputs, columns=list(schema.columns))
        if not isinstance(inputs, pd.DataFrame):
            raise ValidationError("inputs", _forms(schema), type(inputs).__name__)
        missing = [name for name in schema.columns if name not in inputs.columns]
        if missing:
            raise ValidationError("inputs", f"the columns {', '.join(schema.columns)}", list(map(str, inputs.columns)),
                                  hint=f"Missing: {', '.join(missing)}.")
        numpy_types = {"float": "float32", "double": "float64", "long": "int64", "integer": "int32",
                       "boolean": "bool"}
        chosen = inputs[list(schema.columns)]
        try:
            return chosen.astype({name: numpy_types[kind] for name, kind in zip(schema.columns, schema.column_types)
                                  if kind in numpy_types})
        except (TypeError, ValueError) as error:
            raise ValidationError("inputs", "numbers in every column the model takes", "a DataFrame",
                                  hint=str(error)) from None
    if schema.kind == "tensors":
        if not isinstance(inputs, dict):
            raise ValidationError("inputs", _forms(schema), type(inputs).__name__)
        missing = [name for name in schema.tensors if name not in inputs]
        if missing:
            raise ValidationError("inputs", f"a dict with the inputs {', '.join(schema.tensors)}", sorted(inputs),
                                  hint=f"Missing: {', '.join(missing)}.")
        return {name: _check_tensor(inputs[name], spec, f"inputs[{name!r}]") for name, spec in schema.tensors.items()}
    if schema.kind == "tensor":
        if hasattr(inputs, "to_numpy"):
            inputs = inputs.to_numpy()
        return _check_tensor(inputs, next(iter(schema.tensors.values())), "inputs")
    return inputs


def _forms(schema: ModelSchema) -> str:
    if schema.kind == "columns":
        return f"a DataFrame, a dict of columns, a CSV or JSON file with the columns {', '.join(schema.columns)}"
    if schema.kind == "tensors":
        return f"a dict of arrays (or an .npz file) with the inputs {', '.join(schema.tensors)}"
    shape = next(iter(schema.tensors.values()))[0] if schema.tensors else ()
    return f"an array of shape {shape} (or an .npy, .npz or JSON file)"


#: The scoring servers ``request_body`` writes for: MLflow's own (``mlflow models serve``, the local endpoint) and
#: Azure ML's no-code MLflow deployment.
SERVERS = ("mlflow", "azureml")


def request_body(inputs: Any, *, server: str = "mlflow") -> dict[str, Any]:
    """The scoring JSON for inputs ``load_inputs`` made, as ``server`` reads it.

    ``"mlflow"`` (MLflow's scoring server): ``dataframe_split`` for a DataFrame, else ``inputs`` (an array's rows,
    or named tensors). ``"azureml"`` (Azure ML's no-code MLflow deployment, whose scoring script reads only
    ``input_data``: a list is an array, a dict with ``columns``, ``index`` and ``data`` a pandas split DataFrame,
    any other dict named tensors; ``parse_model_input_from_input_data_traditional`` in Azure/azureml-assets'
    mlflow_score_script.py).

    Example:
        >>> import numpy as np
        >>> request_body(np.zeros((1, 2))), request_body(np.zeros((1, 2)), server="azureml")
        ({'inputs': [[0.0, 0.0]]}, {'input_data': [[0.0, 0.0]]})
    """
    import numpy as np

    if server not in SERVERS:
        raise ValidationError("server", f"one of {', '.join(SERVERS)}", server)
    if hasattr(inputs, "to_dict") and hasattr(inputs, "columns"):
        if server == "azureml":
            return {"input_data": inputs.reset_index(drop=True).to_dict(orient="split")}
        return {"dataframe_split": inputs.to_dict(orient="split", index=False)}
    key = "input_data" if server == "azureml" else "inputs"
    if isinstance(inputs, dict):
        return {key: {name: np.asarray(value).tolist() for name, value in inputs.items()}}
    return {key: np.asarray(inputs).tolist()}


def _with_custom_objects(uri: str) -> str:
    """The model's local folder, with the custom objects it carries (``custom_objects.pkl``, written by
    ``kerasjob.fit``'s trainer) registered with Keras first, so that its layers load in this process too."""
    import mlflow

    local = Path(uri) if Path(uri).is_dir() else Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    pickled = local / "custom_objects.pkl"
    if pickled.is_file():
        import cloudpickle
        import keras

        with open(pickled, "rb") as handle:
            keras.saving.get_custom_objects().update(dict(cloudpickle.load(handle)))
    return str(local)


def predict(model: TrainingResult | str | os.PathLike[str], inputs: Any) -> Prediction:
    """What ``model`` predicts for ``inputs``, fed as its signature says (see the module docstring).

    Example:
        >>> predict("models:/tabular/1", {"age": [41.0], "income": [52.5]}).outputs   # doctest: +SKIP
        [[0.12, 0.88]]
    """
    PREDICT.require()
    try:
        uri, tracking_uri = model_location(model)
    except ValidationError:
        if _looks_like_images(inputs):
            load_images(inputs)  # bad images are named first, as for the MNIST model: nothing was loaded
        raise
    schema = read_schema(uri, tracking_uri)
    loaded = load_inputs(inputs, schema)
    with quiet_native_stderr():  # TensorFlow's start-up lines, written from C++ as the model loads
        return Prediction.of(_load(uri, tracking_uri)(loaded))


def _looks_like_images(inputs: Any) -> bool:
    """Whether ``inputs`` has one of the MNIST forms (an array, PNG paths, a file that is no data file)."""
    import numpy as np

    if isinstance(inputs, np.ndarray):
        return True
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs if isinstance(inputs, list) else []
    return bool(paths) and all(isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower()
                               not in (".npy", ".npz", ".csv", ".json") for path in paths)
