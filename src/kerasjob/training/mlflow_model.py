"""The trained model as an MLflow model: what ``outputs/model/`` holds, so that MLflow, Azure ML and Keras all load it.

``save_model`` writes the folder with ``mlflow.keras`` (the ``keras`` flavor and
``python_function``), a signature of float32 ``(-1, 784)`` pixels in and
``(-1, 10)`` probabilities out, an input example and pip requirements pinned to
what trained it; the native ``model.keras`` sits beside ``MLmodel`` for
``keras.saving.load_model``. Without MLflow installed (``python keras_mnist.py``
on a bare machine) only ``model.keras`` is written.

MLflow takes about two seconds to import: ``preload()`` starts that import on a
thread while the model trains (TensorFlow's kernels release the GIL).

Example:
    >>> preload()                                          # doctest: +SKIP
    >>> save_model(model, Path("outputs/model"), x_test[:5])  # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

__all__ = ["INPUT_PIXELS", "NUM_CLASSES", "preload", "save_model"]

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


def _requirements() -> list[str]:
    """The packages that serve the model, pinned to those that trained it where installed.

    Serving loads ``model.keras`` on Keras's default backend, TensorFlow, whichever
    backend trained it (the file is the same for all): a model trained where only
    JAX is installed still asks for TensorFlow, unpinned.
    """
    from importlib import metadata

    pinned = []
    for distribution in ("tensorflow", "keras", "mlflow"):
        try:
            pinned.append(f"{distribution}=={metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            if distribution == "tensorflow":
                pinned.append(distribution)
            # else e.g. mlflow-skinny stands in for mlflow on Azure ML
    return pinned


def save_model(model: Any, folder: Path, input_example: Any) -> bool:
    """Write ``folder`` as an MLflow model holding ``model.keras``; True when MLflow wrote it.

    The folder is built under a temporary name and renamed into place, so a crash
    never leaves half a model where a registry would pick it up.
    """
    import numpy as np

    folder.parent.mkdir(parents=True, exist_ok=True)
    if _loader is not None:
        _loader.join()
    try:
        import mlflow.keras
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec
    except ImportError:
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model.keras")
        return False
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()  # mlflow.keras (Keras 3) writes the input example before it creates the folder
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, INPUT_PIXELS))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, NUM_CLASSES))]))
    mlflow.keras.save_model(model, str(staging.resolve()), signature=signature,
                            input_example=np.asarray(input_example, dtype=np.float32),
                            pip_requirements=_requirements())
    model.save(staging / "model.keras")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return True
