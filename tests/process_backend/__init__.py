"""A backend defined outside kerasjob, in one folder: each job runs as a plain child process on this machine.

It shows what adding a backend takes (``docs/ARCHITECTURE.md``, "Adding a backend"): this package and one
``register_backend("process", "process_backend:ProcessBackend")`` call. ``backend`` submits and attaches, ``run``
is the run handle and the model registry, ``sweep`` runs a grid of trials one after another, ``serving`` serves a
registered model in this process. Nothing in kerasjob names it.
"""

from .backend import ProcessBackend
from .run import ProcessRun, ProcessRegistry

__all__ = ["ProcessBackend", "ProcessRegistry", "ProcessRun"]
