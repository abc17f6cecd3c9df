"""Checks that an optional SDK is installed, raising ``BackendUnavailable`` with
the exact install line when it is not. Nothing heavy is imported at module level."""

from __future__ import annotations

import importlib.util

from .errors import BackendUnavailable


def _require(module: str, backend: str, extra: str, distribution: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BackendUnavailable(backend, extra, distribution)


def require_azureml_core() -> None:
    """Azure ML SDK v1 (``azureml-core``), the ``azureml`` backend's SDK."""
    _require("azureml.core", "azureml", "azureml", "azureml-core")


def require_azureml_hyperdrive() -> None:
    """HyperDrive (``azureml-train-core``), for tuning on Azure ML v1."""
    _require("azureml.train.hyperdrive", "azureml", "azureml", "azureml-train-core")


def require_azure_ai_ml() -> None:
    """Azure ML SDK v2 (``azure-ai-ml`` with ``azure-identity``), the ``azureml-v2`` backend's SDK, and
    MLflow with the ``azureml-mlflow`` plugin, which read a job's metrics behind the workspace's ``azureml://`` URI."""
    _require("azure.ai.ml", "azureml-v2", "azureml-v2", "azure-ai-ml")
    _require("azure.identity", "azureml-v2", "azureml-v2", "azure-identity")
    _require("mlflow", "azureml-v2", "azureml-v2", "mlflow")
    _require("azureml.mlflow", "azureml-v2", "azureml-v2", "azureml-mlflow")


def require_training_stack() -> None:
    """MLflow, which the local backend uses to track runs and register models."""
    _require("mlflow", "local", "train", "mlflow")


def require_optuna() -> None:
    """Optuna, which samples the trials of a local sweep."""
    _require("optuna", "local", "train", "optuna")
