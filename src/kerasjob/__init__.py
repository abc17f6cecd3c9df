"""kerasjob: describe a Keras training job once, run it anywhere with one call.

Example:
    >>> import kerasjob
    >>> job = kerasjob.TrainingJob(hyperparameters={"epochs": 2})
    >>> job.hyperparameters["batch_size"]
    50

Importing kerasjob is light: TensorFlow, Keras, MLflow and the Azure SDKs load
only inside the functions and backends that use them.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib

#: public name -> the module that defines it; loaded on first use (PEP 562) so
#: that ``import kerasjob`` costs a few milliseconds.
_EXPORTS = {
    "Backend": "backends", "JobRun": "backends", "ModelVersion": "backends", "RunStatus": "backends",
    "get_backend": "backends",
    "BackendUnavailable": "errors", "DataError": "errors", "KerasJobError": "errors", "SubmissionError": "errors",
    "TrainingFailed": "errors", "ValidationError": "errors",
    "ComputeConfig": "job", "MpiDistribution": "job", "TensorflowDistribution": "job", "TrainingJob": "job",
    "SubmissionPlan": "plan",
    "Prediction": "prediction", "predict": "prediction", "fit": "fit",
    "Endpoint": "endpoints", "deploy_model": "endpoints", "get_endpoint": "endpoints", "list_endpoints": "endpoints",
    "TrainingResult": "run", "download_model": "run", "finish_training": "run", "submit_training": "run",
    "Bandit": "search_space", "Sweep": "search_space", "choice": "search_space", "loguniform": "search_space",
    "normal": "search_space", "quniform": "search_space", "uniform": "search_space",
    "Trial": "tuning_results", "TuningResult": "tuning_results", "tune_training": "tuning", "tune": "tuning",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kerasjob' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
