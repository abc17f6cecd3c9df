"""Azure ML through SDK v2 (``azure-ai-ml``), in one folder: ``backend`` (assets, submit, attach), ``run`` (the
translation to ``command()``, submit once, the run handle, the registry), ``log`` (what ``jobs.stream`` prints, as
the job's lines) and ``sweep`` (``command(...).sweep(...)``).

Example:
    >>> AzureMLv2Backend.name
    'azureml-v2'
"""

from .backend import AzureMLv2Backend
from .run import (DATA_INPUT, JOB_TAG, LOG_TAIL_LINES, POLL_SECONDS, STATUS_MAP, AzureMLv2ModelRegistry, AzureMLv2Run,
                  build_command_job, command_line, compile_cache_uri, data_input, distribution_config, find_job,
                  submit_once, verify_workspace)

__all__ = ["DATA_INPUT", "JOB_TAG", "LOG_TAIL_LINES", "POLL_SECONDS", "STATUS_MAP", "AzureMLv2Backend",
           "AzureMLv2ModelRegistry", "AzureMLv2Run", "build_command_job", "command_line", "compile_cache_uri", "data_input",
           "distribution_config", "find_job", "submit_once", "verify_workspace"]
