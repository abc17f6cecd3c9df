"""Backends, chosen by name. Each lives in a module of its own, which alone
imports its SDK, so adding one never touches another.

Example:
    >>> sorted(BACKENDS)
    ['azureml', 'azureml-v2', 'local']
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ValidationError
from .base import Backend, BackendOptions, JobRun, ModelVersion, RunStatus

#: name -> "module:Class". Adding a backend is one module and one line here.
BACKENDS: dict[str, str] = {
    "local": "kerasjob.backends.local:LocalBackend",
    "azureml": "kerasjob.backends.azureml:AzureMLBackend",
    "azureml-v2": "kerasjob.backends.azureml_v2:AzureMLv2Backend",
}


def get_backend(name: str, options: BackendOptions | None = None) -> Backend:
    """Build the backend called ``name`` from ``options`` (default: none)."""
    if name not in BACKENDS:
        raise ValidationError("backend", f"one of {', '.join(sorted(BACKENDS))}", name)
    module_name, class_name = BACKENDS[name].split(":")
    backend_class: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend_class.from_options(options or BackendOptions())


def resolve_backend(backend: str | Backend | None = None, **options: Any) -> Backend:
    """The one place a ``backend=`` string is resolved: ``local`` unless the options name a workspace
    (``azureml``; ``azureml-v2`` for an ``MLClient``).

    ``options`` are ``BackendOptions`` fields.

    Example:
        >>> resolve_backend().name
        'local'
    """
    if isinstance(backend, Backend):
        return backend
    chosen = BackendOptions(**options)
    if backend is None:
        backend = "azureml-v2" if chosen.ml_client is not None else "azureml" if chosen.names_a_workspace else "local"
    return get_backend(backend, chosen)


__all__ = ["BACKENDS", "Backend", "BackendOptions", "JobRun", "ModelVersion", "RunStatus", "get_backend",
           "resolve_backend"]
