"""MLflow's ``python_function`` loader for a Keras model that needs custom objects (layers, losses, metrics
defined in the caller's ``__main__``): registers them from ``custom_objects.pkl`` (cloudpickle), then loads the
model as ``mlflow.keras`` does. ``mlflow_model.save_model`` copies this file into the MLflow model's ``code/``
folder and names it as the flavor's ``loader_module``, so ``mlflow.pyfunc.load_model``, ``mlflow models serve``
and Azure ML's no-code deployment load such a model in a process that never defined the objects.

Example:
    >>> model = _load_pyfunc("outputs/model/data")  # what mlflow.pyfunc.load_model calls  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["CUSTOM_OBJECTS_FILE"]

CUSTOM_OBJECTS_FILE = "custom_objects.pkl"


def _load_pyfunc(path: str) -> Any:
    import cloudpickle
    import keras
    from mlflow.keras.load import _load_pyfunc as load_keras_pyfunc

    root = path if os.path.isfile(os.path.join(path, CUSTOM_OBJECTS_FILE)) else os.path.dirname(path)
    with open(os.path.join(root, CUSTOM_OBJECTS_FILE), "rb") as stream:
        keras.saving.get_custom_objects().update(cloudpickle.load(stream))
    return load_keras_pyfunc(path)
