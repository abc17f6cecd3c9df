"""The trained model as an MLflow model: what ``outputs/model/`` holds, so that MLflow, Azure ML and Keras all load it.

``save_model`` writes the folder with ``mlflow.keras`` (the ``keras`` flavor and
``python_function``), a signature (``mnist_signature()``: float32 ``(-1, 784)``
pixels in and ``(-1, 10)`` probabilities out; for any other model one inferred
from its data by ``infer_signature``: tensors, named for dict inputs, or one
column per name for tabular data), an input example and pip requirements pinned to
what trained it; the native ``model.keras`` sits beside ``MLmodel`` for
``keras.saving.load_model``. Without MLflow installed (``python keras_mnist.py``
on a bare machine) only ``model.keras`` is written.

MLflow takes about two seconds to import: ``preload()`` starts that import on a
thread while the model trains (TensorFlow's kernels release the GIL).

The ``python_function`` flavor loads through ``pyfunc_loader.py`` (shipped in the model's ``code/``): mlflow.keras's
own pyfunc model calls Keras's ``predict`` with its progress bar on, which filled a served endpoint's log and the
stdout of whoever predicts. On JAX, ``without_tensorflow_import`` keeps Keras's saving from importing TensorFlow
only to ask whether an object is one of its types (TensorFlow's start-up chatter on every JAX run).

Example:
    >>> preload()                                          # doctest: +SKIP
    >>> save_model(model, Path("outputs/model"), x_test[:5], signature=mnist_signature)  # doctest: +SKIP
    True
    >>> save_model(model, Path("outputs/model"), {"age": ages[:5], "image": images[:5]})  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["INPUT_PIXELS", "NUM_CLASSES", "infer_signature", "input_example_for", "mnist_signature", "preload",
           "save_model", "saved_message", "without_tensorflow_import"]

INPUT_PIXELS = 784
NUM_CLASSES = 10
_loader: threading.Thread | None = None


def _import_mlflow() -> None:
    try:
        importlib.import_module("mlflow.keras")
    except ImportError:
        pass  # save_model falls back to model.keras alone


def preload() -> None:
    """Start importing MLflow in the background (once)."""
    global _loader
    if _loader is None:
        _loader = threading.Thread(target=_import_mlflow, name="mlflow-import", daemon=True)
        _loader.start()


@contextlib.contextmanager
def without_tensorflow_import(keras: Any) -> Iterator[None]:
    """Inside, on a Keras backend other than TensorFlow with TensorFlow not yet imported, Keras answers "is
    TensorFlow available?" with no: the import stays undone. Elsewhere it does nothing.

    Keras's saving (``serialization_lib.serialize_keras_object``: ``tf.available and isinstance(obj,
    tf.TensorShape)``) and ``keras.utils.set_random_seed`` (``if tf.available: tf.random.set_seed``) ask through
    ``keras.src.utils.module_utils.tensorflow``, a lazy module that imports TensorFlow to answer, and TensorFlow
    writes its CUDA and oneDNN lines as it loads. Nothing can be a TensorFlow object while TensorFlow was never
    imported, so the answer is exact for saving; a seed is not given to a TensorFlow imported later.

    Example:
        >>> with without_tensorflow_import(keras):  # doctest: +SKIP
        ...     model.save("model.keras")
    """
    tensorflow: Any = getattr(sys.modules.get("keras.src.utils.module_utils"), "tensorflow", None)
    if (keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules
            or getattr(tensorflow, "_available", True) is not None):  # TF loaded, or Keras's lazy module changed
        yield
        return
    tensorflow._available = False
    try:
        yield
    finally:
        tensorflow._available = None  # asked again (and imported) when a later caller needs it


def _requirements(cloudpickle: bool = False) -> list[str]:
    """The packages that serve the model, pinned to those that trained it where installed.

    Serving loads ``model.keras`` on Keras's default backend, TensorFlow, whichever
    backend trained it (the file is the same for all): a model trained where only
    JAX is installed still asks for TensorFlow, unpinned.
    """
    from importlib import metadata

    pinned = []
    for distribution in ("tensorflow", "keras", "mlflow", *(["cloudpickle"] if cloudpickle else [])):
        try:
            pinned.append(f"{distribution}=={metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            if distribution == "tensorflow":
                pinned.append(distribution)
            # else e.g. mlflow-skinny stands in for mlflow on Azure ML
    return pinned


def mnist_signature() -> Any:
    """The seed model's signature: float32 ``(-1, 784)`` pixels in, ``(-1, 10)`` probabilities out."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, INPUT_PIXELS))]),
                          outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, NUM_CLASSES))]))


#: Floats as double: a DataFrame or a JSON request brings float64, which a float (32) column refuses.
_COLUMN_TYPES = {"float32": "double", "float64": "double", "int32": "integer", "int64": "long", "bool": "boolean"}


def _float32(array: Any) -> Any:
    """Float arrays as float32 (Keras's floatx, what the model computes in); others as they are."""
    import numpy as np

    array = np.asarray(array)
    return array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array


def _tensor_schema(structure: Any) -> Any:
    """One TensorSpec per array (named by its key for a dict, by position for a list), batch dimension -1."""
    import numpy as np
    from mlflow.types import Schema, TensorSpec

    def spec(array: Any, name: str | None) -> Any:
        array = np.asarray(array)
        return TensorSpec(array.dtype, (-1, *array.shape[1:]), name=name)

    if isinstance(structure, dict):
        return Schema([spec(array, str(name)) for name, array in structure.items()])
    if isinstance(structure, (list, tuple)):
        return Schema([spec(array, f"output_{index}") for index, array in enumerate(structure)])
    return Schema([spec(structure, None)])


def input_example_for(x: Any, columns: list[str] | None = None, rows: int = 5) -> Any:
    """The first ``rows`` samples of ``x`` as MLflow takes them: a DataFrame for named columns, a dict of
    arrays for a dict input, else an array (floats as float32)."""
    if columns is not None:
        import pandas as pd

        return pd.DataFrame(_float32(x[:rows]), columns=list(columns))
    if isinstance(x, dict):
        return {name: _float32(array[:rows]) for name, array in x.items()}
    if isinstance(x, (list, tuple)):
        return [_float32(array[:rows]) for array in x]
    return _float32(x[:rows])


def infer_signature(model: Any, example: Any, columns: list[str] | None = None) -> Any:
    """The signature of ``model`` on ``example`` (from ``input_example_for``): tensor-based, or column-based
    (one ColSpec per column) when the data had named columns; outputs from the model's prediction."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    if columns is not None:
        values = np.asarray(example)
        inputs = Schema([ColSpec(_COLUMN_TYPES.get(str(values.dtype), "double"), str(name)) for name in columns])
        prediction = model.predict(values, verbose=0)
    else:
        inputs = _tensor_schema(example)
        prediction = model.predict(example, verbose=0)
    return ModelSignature(inputs=inputs, outputs=_tensor_schema(prediction))


def _save_tabular(model: Any, staging: Path, signature: Any, example: Any, cloudpickle: bool) -> None:
    """mlflow.keras takes tensor signatures only: save without one, then write the column-based signature and
    the DataFrame example into ``MLmodel`` (the keras flavor's pyfunc feeds a DataFrame's values to the model)."""
    import mlflow.keras
    from mlflow.models import Model
    from mlflow.models.utils import _save_example

    mlflow.keras.save_model(model, str(staging.resolve()), pip_requirements=_requirements(cloudpickle))
    description = Model.load(str(staging / "MLmodel"))
    description.signature = signature
    _save_example(description, example, str(staging))
    description.save(str(staging / "MLmodel"))


def _with_loader(staging: Path, custom_objects: Path | None) -> None:
    """Ship ``pyfunc_loader.py`` in the model's ``code/`` and make it the python_function flavor's loader (a quiet
    predict; custom objects registered first), with ``custom_objects`` beside ``MLmodel`` when given."""
    from mlflow.models import Model

    if custom_objects is not None:
        shutil.copy2(custom_objects, staging / "custom_objects.pkl")
    (staging / "code").mkdir(exist_ok=True)
    shutil.copy2(Path(__file__).with_name("pyfunc_loader.py"), staging / "code" / "pyfunc_loader.py")
    description = Model.load(str(staging / "MLmodel"))
    description.flavors["python_function"].update(loader_module="pyfunc_loader", code="code")
    description.save(str(staging / "MLmodel"))


def save_model(model: Any, folder: Path, input_example: Any, signature: Any = None,
               columns: list[str] | None = None, custom_objects: Path | None = None) -> bool:
    """Write ``folder`` as an MLflow model holding ``model.keras``; True when MLflow wrote it.

    ``signature``: a ModelSignature, a function returning one, or None: inferred from ``input_example``
    (``infer_signature``; ``columns`` names tabular inputs). ``custom_objects``: a cloudpickle of ``{name: object}``
    the model needs to load; the python_function flavor (``pyfunc_loader.py``) then registers it first.
    The folder is built under a temporary name and renamed into place, so a crash
    never leaves half a model where a registry would pick it up.
    """
    import keras

    folder.parent.mkdir(parents=True, exist_ok=True)
    if _loader is not None:
        _loader.join()
    with without_tensorflow_import(keras):
        return _save(model, folder, input_example, signature, columns, custom_objects)


def _save(model: Any, folder: Path, input_example: Any, signature: Any, columns: list[str] | None,
          custom_objects: Path | None) -> bool:
    try:
        import mlflow.keras
    except ImportError:
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model.keras")
        if custom_objects is not None:
            shutil.copy2(custom_objects, folder / "custom_objects.pkl")
        return False
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()  # mlflow.keras (Keras 3) writes the input example before it creates the folder
    example = input_example_for(input_example, columns)
    if signature is None:
        signature = infer_signature(model, example, columns)
    elif callable(signature):  # e.g. mnist_signature: built only once MLflow is known to be installed
        signature = signature()
    if columns is None:
        mlflow.keras.save_model(model, str(staging.resolve()), signature=signature, input_example=example,
                                pip_requirements=_requirements(custom_objects is not None))
    else:
        _save_tabular(model, staging, signature, example, custom_objects is not None)
    model.save(staging / "model.keras")
    _with_loader(staging, custom_objects)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return True


def saved_message(folder: Path, as_mlflow: bool) -> str:
    """What the log says once ``save_model`` returned ``as_mlflow``."""
    return f"Model saved to {folder}" + (" (an MLflow model holding model.keras)" if as_mlflow
                                         else "/model.keras (MLflow is not installed)")
