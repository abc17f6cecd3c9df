"""``tune_training()``: one sweep, run locally or as HyperDrive on Azure ML, the best model registered.

Example:
    >>> from kerasjob import Sweep, tune_training
    >>> result = tune_training(data="../shared/data/mnist", hyperparameters={"epochs": 3},
    ...                        sweep=Sweep(max_total_runs=6, max_concurrent_runs=2))   # doctest: +SKIP
    >>> result.best.parameters                                                         # doctest: +SKIP
    {'batch_size': 50, 'first_layer_neurons': 300, 'second_layer_neurons': 200, 'learning_rate': 0.0021}
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field

from .backends import Backend, RunStatus
from .azure_errors import azure_access
from .errors import TrainingFailed, ValidationError
from .job import TrainingJob
from .backends import resolve_backend
from .run import make_job
from .search_space import Sweep
from .training.contract import HYPERPARAMETERS, METRICS

logger = logging.getLogger(__name__)

#: Trial states, the same words on every backend.
TRIAL_STATES = ("completed", "failed", "early-terminated", "canceled")


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep."""

    number: int
    run_id: str
    parameters: dict
    state: str
    metric: float | None

    def to_dict(self) -> dict:
        return {"number": self.number, "run_id": self.run_id, "parameters": self.parameters, "state": self.state,
                "metric": self.metric}


@dataclass(frozen=True)
class TuningResult:
    """Every trial, the best one, and the model registered from it."""

    sweep_run_id: str
    trials: list[Trial]
    best: Trial
    primary_metric: str
    model_name: str
    model_version: str
    backend: str
    url: str
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        """The JSON shape ``kerasjob tune --json`` prints."""
        return {"sweep_run_id": self.sweep_run_id, "backend": self.backend, "primary_metric": self.primary_metric,
                "trials": [trial.to_dict() for trial in self.trials], "best": self.best.to_dict(),
                "model": {"name": self.model_name, "version": self.model_version}, "url": self.url}


def trial_state(status: RunStatus | None, sweep_completed: bool) -> str:
    """A finished trial's state from its run's status.

    A trial of a sweep that itself completed is canceled only by the early-termination
    policy (Azure ML reports such trials as Canceled), so it counts as early-terminated.
    """
    if status is None or status.value not in ("completed", "failed", "canceled"):
        return "canceled"
    return "early-terminated" if status is RunStatus.CANCELED and sweep_completed else status.value


def best_trial(trials: list[Trial], goal: str) -> Trial | None:
    """The completed trial with the best primary metric."""
    scored = [trial for trial in trials if trial.state == "completed" and trial.metric is not None]
    if not scored:
        return None
    return (max if goal == "maximize" else min)(scored, key=lambda trial: trial.metric)


def check_sweep(job: TrainingJob, sweep: Sweep) -> None:
    """Everything about the sweep that can be refused before a trial starts."""
    if not isinstance(sweep, Sweep):
        raise ValidationError("sweep", "a kerasjob.Sweep", sweep)
    if job.uses_packaged_script:
        sweep.check_against(HYPERPARAMETERS, METRICS)
    else:
        sweep.check_against({}, None)  # another script declares nothing to check against
    for name in sweep.space:
        if job.uses_packaged_script and name == "epochs":
            raise ValidationError("space", "hyperparameters other than epochs (Bandit compares trials per epoch)",
                                  name)


def tune_training(job: TrainingJob | None = None, sweep: Sweep | None = None, *,
                  backend: str | Backend | None = None, workspace=None, ml_client=None,
                  workspace_config: str | os.PathLike | None = None, subscription_id: str | None = None,
                  resource_group: str | None = None, workspace_name: str | None = None, auth: str = "default",
                  credential=None, show_output: bool = True, **job_fields) -> TuningResult:
    """Search hyperparameters for ``job``; register the best trial's model under ``job.model_name``.

    Args:
        job, job_fields: the job to tune, as for ``submit_training``; the swept
            hyperparameters replace its own, the others (e.g. ``epochs``) stay.
        sweep: a ``Sweep`` (default: the seed notebook's: 20 random trials, 4 at once, Bandit 0.1 / 2).
        backend: ``local`` (an Optuna study over local runs), ``azureml`` (HyperDrive),
            ``azureml-v2`` (``command(...).sweep(...)``).
        show_output: print one line per trial event.

    Raises:
        ValidationError: a bad job or sweep (no trial was started).
        TrainingFailed: no trial completed (nothing registered).
    """
    job = make_job(job, **job_fields)
    sweep = sweep if sweep is not None else Sweep()
    check_sweep(job, sweep)
    chosen = resolve_backend(backend, workspace=workspace, ml_client=ml_client, workspace_config=workspace_config,
                             subscription_id=subscription_id, resource_group=resource_group,
                             workspace_name=workspace_name, auth=auth, credential=credential)
    chosen.check(job)
    if chosen.sweeper is None:
        raise ValidationError("backend", "a backend that runs sweeps", chosen.name)
    module_name, function_name = chosen.sweeper.split(":")
    run_sweep = getattr(importlib.import_module(module_name), function_name)
    with azure_access():
        return run_sweep(chosen, job, sweep, show_output=show_output)


def no_completed_trial(sweep_run_id: str, trials: list[Trial]) -> TrainingFailed:
    states = ", ".join(f"#{trial.number} {trial.state}" for trial in trials) or "none"
    return TrainingFailed(f"No trial of sweep {sweep_run_id} completed ({states}); nothing was registered",
                          run_id=sweep_run_id, status="failed")
