"""The optional dependencies, one handle per extra: each knows its modules and its install line.

``import kerasjob`` stays light, so an SDK is found only when a path needs it;
every path that does asks the same handle and so raises the same
``BackendUnavailable`` carrying the exact ``pip install "kerasjob[...]"`` line.

Example:
    >>> TRAIN.extra
    'train'
    >>> OPTUNA.missing() in ([], ["optuna"])
    True
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from .errors import BackendUnavailable

__all__ = ["Extra", "AZUREML", "AZUREML_HYPERDRIVE", "AZUREML_V2", "KERAS_BACKEND_EXTRAS", "OPTUNA", "PREDICT",
           "TRAIN"]


@dataclass(frozen=True)
class Extra:
    """A kerasjob extra (``pip install "kerasjob[<extra>]"``) as a path needs it.

    Args:
        extra: the extra's name in pyproject.toml.
        purpose: what needs it, for the message (``the 'azureml' backend``).
        modules: import name -> distribution name, checked in order.
    """

    extra: str
    purpose: str
    modules: tuple[tuple[str, str], ...]

    def missing(self) -> list[str]:
        """The distributions whose modules cannot be found (nothing is imported)."""
        absent = []
        for module, distribution in self.modules:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                absent.append(distribution)
        return absent

    def require(self) -> None:
        """Raise ``BackendUnavailable`` with the install line when a module is missing."""
        absent = self.missing()
        if absent:
            raise BackendUnavailable(self.purpose, self.extra, ", ".join(absent))


AZUREML = Extra("azureml", "azureml", (("azureml.core", "azureml-core"),))
AZUREML_HYPERDRIVE = Extra("azureml", "azureml", (("azureml.core", "azureml-core"),
                                                  ("azureml.train.hyperdrive", "azureml-train-core")))
#: MLflow and its azureml-mlflow plugin read a v2 job's metrics behind the workspace's azureml:// URI.
AZUREML_V2 = Extra("azureml-v2", "azureml-v2", (("azure.ai.ml", "azure-ai-ml"), ("azure.identity", "azure-identity"),
                                                ("mlflow", "mlflow"), ("azureml.mlflow", "azureml-mlflow")))
#: MLflow tracks local runs and holds their model registry.
TRAIN = Extra("train", "local", (("mlflow", "mlflow"),))
#: kerasjob.predict loads a trained model with MLflow (or Keras) and reads PNG files with Pillow.
PREDICT = Extra("train", "predict", (("mlflow", "mlflow"), ("keras", "keras"), ("PIL", "pillow")))
#: Optuna samples the trials of a local sweep.
OPTUNA = Extra("train", "local", (("optuna", "optuna"),))
#: What each ``TrainingJob.keras_backend`` needs to train on this machine.
KERAS_BACKEND_EXTRAS = {"tensorflow": Extra("train", "local", (("tensorflow", "tensorflow"),)),
                        "jax": Extra("train", "local", (("jax", "jax"),))}
