"""The local backend, in one folder: ``backend`` (submit, attach), ``run`` (the run handle), ``supervisor`` (the
process that looks after one run), ``files`` (the run folder's layout), ``tracking`` (the MLflow store),
``registry`` (the model registry), ``runs`` (browsing runs and models), ``deletion``, ``sweep`` (Optuna) and
``serving`` (MLflow's scoring server).

Example:
    >>> LocalBackend().name
    'local'
"""

from .backend import LocalBackend, compile_cache_folder, runs_root, source_hash
from .run import LocalRun

__all__ = ["LocalBackend", "LocalRun", "compile_cache_folder", "runs_root", "source_hash"]
