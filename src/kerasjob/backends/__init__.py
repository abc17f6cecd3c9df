"""Backends, chosen by name: the one loader table ``BACKENDS``, the plugin point. Each backend is a package of its
own (``local/``, ``azureml/``, ``azureml_v2/``; ``_azure/`` holds what the two Azure ones share), which alone
imports its SDK, so adding one never touches another: one folder, and one line here or one
``register_backend`` call (a backend kept outside kerasjob, or defined in a test).

Example:
    >>> sorted(BACKENDS)
    ['azureml', 'azureml-v2', 'local']
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from ..errors import ValidationError
from .base import Backend, BackendOptions, JobRun, ModelVersion, RunStatus

#: name -> "module:Class", imported on first use. Adding a backend is one package and one line here (or
#: ``register_backend``).
BACKENDS: dict[str, str] = {
    "local": "kerasjob.backends.local:LocalBackend",
    "azureml": "kerasjob.backends.azureml:AzureMLBackend",
    "azureml-v2": "kerasjob.backends.azureml_v2:AzureMLv2Backend",
}


_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def register_backend(name: str, target: str) -> None:
    """Make ``backend=name`` load ``target`` (``"package.module:BackendClass"``, imported on first use): the plugin
    point for a backend kept outside kerasjob. Nothing is imported now; ``name`` may replace a registered one.

    Example:
        >>> register_backend("my-cluster", "my_cluster_backend:MyClusterBackend")
        >>> BACKENDS.pop("my-cluster")
        'my_cluster_backend:MyClusterBackend'
    """
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ValidationError("name", "a backend name: lowercase letters, digits or '-', starting with a letter", name)
    if not isinstance(target, str) or not _TARGET.match(target):
        raise ValidationError("target", "'package.module:BackendClass'", target)
    BACKENDS[name] = target


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
           "register_backend", "resolve_backend"]
