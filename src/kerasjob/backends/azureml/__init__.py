"""Azure ML through SDK v1 (``azureml-core``), in one folder: ``backend`` (the translation to a
``ScriptRunConfig``, submit, attach), ``run`` (the run handle, the registry) and ``sweep`` (HyperDrive).

Example:
    >>> AzureMLBackend.name
    'azureml'
"""

from .backend import AzureMLBackend, build_script_run_config, distributed_job_config
from .run import (DEFAULT_POLL_SECONDS, DRIVER_LOG_MARKERS, STATUS_MAP, AzureMLModelRegistry, AzureMLRun, last_metric,
                  new_run_id)

__all__ = ["DEFAULT_POLL_SECONDS", "DRIVER_LOG_MARKERS", "STATUS_MAP", "AzureMLBackend", "AzureMLModelRegistry",
           "AzureMLRun", "build_script_run_config", "distributed_job_config", "last_metric", "new_run_id"]
