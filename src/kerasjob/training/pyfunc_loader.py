"""MLflow's ``python_function`` loader for kerasjob's Keras models: the model as ``mlflow.keras`` loads it, whose
``predict`` runs Keras's ``predict`` with ``verbose=0``, and the custom objects (layers, losses, metrics defined in
the caller's ``__main__``) registered from ``custom_objects.pkl`` (cloudpickle) first when the model has them.

``mlflow.keras``'s own pyfunc model calls ``model.predict(data)`` with Keras's progress bar on: a line of ANSI
escapes per request in a served endpoint's log, and on the stdout of whoever predicts. ``mlflow_model.save_model``
copies this file into the MLflow model's ``code/`` folder and names it as the flavor's ``loader_module``, so
``mlflow.pyfunc.load_model``, ``mlflow models serve`` and Azure ML's no-code deployment load it; the ``keras``
flavor, the signature and the input example are as ``mlflow.keras`` wrote them.

Example:
    >>> model = _load_pyfunc("outputs/model")  # what mlflow.pyfunc.load_model calls  # doctest: +SKIP
    >>> model.predict(x)  # mlflow.keras's KerasModelWrapper, no progress bar  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

__all__ = ["CUSTOM_OBJECTS_FILE", "quiet_predict"]

CUSTOM_OBJECTS_FILE = "custom_objects.pkl"


def quiet_predict(wrapper: Any) -> Any:
    """``wrapper`` (mlflow.keras's ``KerasModelWrapper``), its ``predict`` calling Keras's with ``verbose=0``.

    ``KerasModelWrapper.predict`` calls whatever ``get_model_call_method()`` returns: ``model.predict``, or an
    exported model's ``serve`` (which prints nothing and takes no ``verbose``, so it is left alone).
    """
    call: Callable[..., Any] = wrapper.get_model_call_method()
    if getattr(call, "__name__", "") == "predict":
        quiet = functools.partial(call, verbose=0)
        wrapper.get_model_call_method = lambda: quiet
    return wrapper


def _load_pyfunc(path: str) -> Any:
    from mlflow.keras.load import _load_pyfunc as load_keras_pyfunc

    root = path if os.path.isfile(os.path.join(path, "MLmodel")) else os.path.dirname(path)
    custom_objects = os.path.join(root, CUSTOM_OBJECTS_FILE)
    if os.path.isfile(custom_objects):
        import cloudpickle
        import keras

        with open(custom_objects, "rb") as stream:
            keras.saving.get_custom_objects().update(cloudpickle.load(stream))
    return quiet_predict(load_keras_pyfunc(path))
