"""A ``Sweep`` on Azure ML SDK v2: ``command(...).sweep(...)``, submitted, read back, the best model registered.

``build_sweep_job`` is the pure translation (nothing is sent): the job's command
job with each swept input replaced by its ``azure.ai.ml.sweep`` expression.
``run_sweep_v2`` submits it, streams it, reads every trial (child job) with its
primary metric through MLflow, and registers the best one's model.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .run import STATUS_MAP, AzureMLv2Run, build_command_job, submit_once
from ...job import TrainingJob
from ...retry import azure_call
from ...search_space import Bandit, Sweep
from ...tuning_results import (Trial, TuningResult, best_trial, cast_trial_value, no_completed_trial, register_best,
                               trial_state)

if TYPE_CHECKING:  # the backend imports this module for its ``sweep``
    from .backend import AzureMLv2Backend

__all__ = ["build_sweep_job", "run_sweep_v2", "sampling_algorithm", "sweep_search_space", "trial_parameters"]

logger = logging.getLogger(__name__)


def sweep_search_space(sweep: Sweep) -> dict[str, Any]:
    """The space as ``azure.ai.ml.sweep`` expressions, keyed by input name."""
    return {name: distribution.sweep_expression() for name, distribution in sweep.space.items()}


def sampling_algorithm(sweep: Sweep) -> Any:
    """The sampling as ``azure.ai.ml.sweep``: ``RandomSamplingAlgorithm(seed=...)`` when a seed is set."""
    from azure.ai.ml.sweep import RandomSamplingAlgorithm

    if sweep.seed is None:
        return sweep.sampling
    if sweep.sampling != "random":
        logger.warning("Sweep.seed=%s is ignored: Azure ML takes a seed for random sampling only, not %s.",
                       sweep.seed, sweep.sampling)
        return sweep.sampling
    return RandomSamplingAlgorithm(seed=sweep.seed)


def build_sweep_job(job: TrainingJob, sweep: Sweep, *, environment: str, data: Any = None) -> Any:
    """The pure translation: ``TrainingJob`` + ``Sweep`` -> an ``azure.ai.ml`` sweep job.

    ``job.timeout`` bounds each trial (``trial_timeout``): ``Command.sweep`` does not carry
    the command's own timeout over.
    """
    command_job = build_command_job(job, environment=environment, data=data)
    policy = sweep.policy.sweep_policy() if isinstance(sweep.policy, Bandit) else None
    return command_job(**sweep_search_space(sweep)).sweep(
        primary_metric=sweep.primary_metric, goal=sweep.goal.capitalize(), sampling_algorithm=sampling_algorithm(sweep),
        compute=job.compute_config.name, max_total_trials=sweep.max_total_runs,
        max_concurrent_trials=sweep.max_concurrent_runs, early_termination_policy=policy,
        trial_timeout=int(job.timeout) if job.timeout else None)


def trial_parameters(logged: dict[str, str], job: TrainingJob, sweep: Sweep) -> dict[str, Any]:
    """The swept values a trial's script logged as MLflow params (strings), cast by ``cast_trial_value``;
    None for one it did not log."""
    return {name: cast_trial_value(name, logged.get(name), job, sweep) for name in sweep.space}


def run_sweep_v2(backend: AzureMLv2Backend, job: TrainingJob, sweep: Sweep, *, show_output: bool = True
                 ) -> TuningResult:
    """Submit ``sweep`` as an Azure ML v2 sweep job, wait for it, register the best trial's model.

    Trials come back from ``jobs.list(parent_job_name=...)`` as bare run records
    (no ``.inputs``; an unparseable one is None): their values are read from the
    MLflow params the training script logs. The service's ``best_child_run_id``
    names the best trial when it is set.
    """
    environment, data = backend.prepare(job)
    client = backend.ml_client
    sweep_job = build_sweep_job(job, sweep, environment=environment, data=data)
    submitted = submit_once(client, sweep_job, experiment=job.experiment)
    handle = AzureMLv2Run(client, submitted)
    handle.wait(on_line=print if show_output else None)
    completed = handle.status().value == "completed"
    children = [child for child in azure_call(lambda: list(client.jobs.list(parent_job_name=handle.id)))
                if child is not None]
    trials: list[Trial] = []
    for number, child in enumerate(sorted(children, key=lambda each: each.name)):
        child_run = AzureMLv2Run(client, child)
        metric = child_run.metrics().get(sweep.primary_metric)
        parameters = trial_parameters(child_run.params(), job, sweep)
        state = trial_state(STATUS_MAP.get(child.status), completed)
        trials.append(Trial(number, child.name, parameters, state, metric))
    named_best = (handle.job.properties or {}).get("best_child_run_id")
    best = next((trial for trial in trials if trial.run_id == named_best and trial.state == "completed"), None)
    best = best or best_trial(trials, sweep.goal)
    if best is None:
        raise no_completed_trial(handle.id, trials)
    best_run = AzureMLv2Run(client, azure_call(client.jobs.get, best.run_id))
    return register_best(best_run, job, best, trials=trials, sweep=sweep, sweep_run_id=handle.id,
                         backend="azureml-v2", url=handle.url)
