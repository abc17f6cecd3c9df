"""Backends, chosen by name. Each lives in a module of its own, which alone
imports its SDK, so adding one never touches another.

Example:
    >>> sorted(BACKENDS)
    ['azureml', 'azureml-v2', 'local']
"""

from __future__ import annotations

import importlib

from ..errors import KerasJobError, ValidationError
from .base import Backend, JobRun, ModelVersion, RunStatus

#: name -> "module:Class"; None marks a backend that is planned but not built yet.
BACKENDS = {
    "local": "kerasjob.backends.local:LocalBackend",
    "azureml": "kerasjob.backends.azureml:AzureMLBackend",
    "azureml-v2": "kerasjob.backends.azureml_v2:AzureMLv2Backend",
}


def get_backend(name: str, **options) -> Backend:
    """Build the backend called ``name`` with its typed ``options``."""
    if name not in BACKENDS:
        raise ValidationError("backend", f"one of {', '.join(sorted(BACKENDS))}", name)
    target = BACKENDS[name]
    if target is None:
        raise KerasJobError(
            f"The {name!r} backend is not built yet in this version of kerasjob; use backend='azureml' (SDK v1) "
            "or backend='local'."
        )
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)(**options)


__all__ = ["Backend", "JobRun", "ModelVersion", "RunStatus", "get_backend", "BACKENDS"]
