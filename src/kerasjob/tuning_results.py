"""What every sweep returns and how every sweep ends, whatever ran it.

``Trial`` and ``TuningResult`` are the same on every backend. Each sweeper reads
its trials back with ``cast_trial_value`` (one rule for what a swept value means)
and ends with ``register_best`` (best trial -> its job -> the registered model ->
``TuningResult``): the best trial's model takes the ``champion`` alias only if it
beats the champion on the sweep's own metric and goal (``kerasjob.champion``).
This module imports no sweeper and no SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .backends.base import JobRun, RunStatus
from .champion import Criterion
from .errors import TrainingFailed
from .job import TrainingJob
from .registration import register_trained_model
from .search_space import Sweep
from .training.contract import HYPERPARAMETERS

__all__ = ["TRIAL_STATES", "Trial", "TuningResult", "best_trial", "cast_trial_value", "no_completed_trial",
           "register_best", "trial_state"]

#: Trial states, the same words on every backend.
TRIAL_STATES = ("completed", "failed", "early-terminated", "canceled")


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep."""

    number: int
    run_id: str
    parameters: dict[str, Any]
    state: str
    metric: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "run_id": self.run_id, "parameters": self.parameters, "state": self.state,
                "metric": self.metric}


@dataclass(frozen=True)
class TuningResult:
    """Every trial, the best one, and the model registered from it (``champion``: whether it took the alias)."""

    sweep_run_id: str
    trials: list[Trial]
    best: Trial
    primary_metric: str
    model_name: str
    model_version: str
    backend: str
    url: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    goal: str = "maximize"
    champion: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``kerasjob tune --json`` prints."""
        return {"sweep_run_id": self.sweep_run_id, "backend": self.backend, "primary_metric": self.primary_metric,
                "goal": self.goal, "trials": [trial.to_dict() for trial in self.trials], "best": self.best.to_dict(),
                "model": {"name": self.model_name, "version": self.model_version, "champion": self.champion},
                "url": self.url}

    def _repr_html_(self) -> str:
        """In a notebook: the sweep, its best trial and the model registered from it, with a link to the sweep."""
        from .html import browser_link, html_table

        best = "-" if self.best.metric is None else f"{self.best.metric:.4f}"
        model = f"{self.model_name} version {self.model_version}" + (" (@champion)" if self.champion else "")
        return html_table(f"Sweep {self.sweep_run_id}", [
            ("backend", self.backend), ("trials", len(self.trials)),
            (f"best {self.primary_metric} ({self.goal})", f"{best}: trial #{self.best.number}, run {self.best.run_id}"),
            ("best parameters", self.best.parameters), ("model", model)], link=browser_link(self.url, self.sweep_run_id))


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
    return (max if goal == "maximize" else min)(scored, key=lambda trial: trial.metric or 0.0)


def no_completed_trial(sweep_run_id: str, trials: list[Trial]) -> TrainingFailed:
    """The error of a sweep that has nothing to register."""
    states = ", ".join(f"#{trial.number} {trial.state}" for trial in trials) or "none"
    return TrainingFailed(f"No trial of sweep {sweep_run_id} completed ({states}); nothing was registered",
                          run_id=sweep_run_id, status="failed")


def cast_trial_value(name: str, raw: Any, job: TrainingJob, sweep: Sweep) -> Any:
    """A swept value as the trial's script receives it, whichever way the backend gave it back.

    HyperDrive's JSON may give ``50.0`` for an int flag and MLflow params are strings.
    The packaged script's values take its declared types (``HYPERPARAMETERS``; ints
    rounded); another script's values are read back by their distribution
    (``Distribution.read_back``: as given, a number string parsed). None stays None.
    """
    if raw is None:
        return None
    declared = HYPERPARAMETERS.get(name) if job.uses_packaged_script else None
    if declared is not None:
        return int(round(float(raw))) if declared.type is int else declared.type(raw)
    return sweep.space[name].read_back(raw) if name in sweep.space else raw


def register_best(run: JobRun, job: TrainingJob, best: Trial, *, trials: list[Trial], sweep: Sweep,
                  sweep_run_id: str, backend: str, url: str) -> TuningResult:
    """How every sweep ends: ``best``'s values over ``job``, its model registered from ``run`` (tagged with
    the sweep; champion only if it beats the champion on the sweep's metric and goal), and the ``TuningResult``."""
    best_job = job.with_changes(hyperparameters={**job.hyperparameters, **best.parameters})
    registration = register_trained_model(run, best_job, {"sweep_run_id": sweep_run_id},
                                          criterion=Criterion(sweep.primary_metric, sweep.goal))
    model = registration.model
    return TuningResult(sweep_run_id=sweep_run_id, trials=trials, best=best, primary_metric=sweep.primary_metric,
                        model_name=model.name, model_version=model.version, backend=backend, url=url,
                        goal=sweep.goal, champion=registration.champion)
