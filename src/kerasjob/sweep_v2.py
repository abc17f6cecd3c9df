"""A ``Sweep`` on Azure ML SDK v2: ``command(...).sweep(...)``, submitted, read back, the best model registered.

``build_sweep_job`` is the pure translation (nothing is sent): the job's command
job with each swept input replaced by its ``azure.ai.ml.sweep`` expression.
``run_sweep_v2`` submits it, streams it, reads every trial (child job) with its
primary metric through MLflow, and registers the best one's model.
"""

from __future__ import annotations

import logging

from .backends.azureml_v2 import STATUS_MAP, AzureMLv2Backend, AzureMLv2Run, build_command_job, submit_once
from .job import TrainingJob
from .retry import azure_call
from .run import register_trained_model
from .search_space import Sweep, choice, loguniform, normal, quniform, uniform
from .training.contract import HYPERPARAMETERS
from .tuning import Trial, TuningResult, best_trial, no_completed_trial, trial_state

logger = logging.getLogger(__name__)


def sweep_search_space(sweep: Sweep) -> dict:
    """The space as ``azure.ai.ml.sweep`` expressions, keyed by input name."""
    from azure.ai.ml import sweep as azure_sweep

    space = {}
    for name, distribution in sweep.space.items():
        if isinstance(distribution, choice):
            space[name] = azure_sweep.Choice(values=list(distribution.values))
        elif isinstance(distribution, loguniform):
            space[name] = azure_sweep.LogUniform(min_value=distribution.min_value, max_value=distribution.max_value)
        elif isinstance(distribution, uniform):
            space[name] = azure_sweep.Uniform(min_value=distribution.min_value, max_value=distribution.max_value)
        elif isinstance(distribution, quniform):
            space[name] = azure_sweep.QUniform(min_value=distribution.min_value, max_value=distribution.max_value,
                                               q=distribution.q)
        else:
            assert isinstance(distribution, normal)
            space[name] = azure_sweep.Normal(mu=distribution.mu, sigma=distribution.sigma)
    return space


def sampling_algorithm(sweep: Sweep):
    """The sampling as ``azure.ai.ml.sweep``: ``RandomSamplingAlgorithm(seed=...)`` when a seed is set."""
    from azure.ai.ml.sweep import RandomSamplingAlgorithm

    if sweep.seed is None:
        return sweep.sampling
    if sweep.sampling != "random":
        logger.warning("Sweep.seed=%s is ignored: Azure ML takes a seed for random sampling only, not %s.",
                       sweep.seed, sweep.sampling)
        return sweep.sampling
    return RandomSamplingAlgorithm(seed=sweep.seed)


def build_sweep_job(job: TrainingJob, sweep: Sweep, *, environment: str, data=None):
    """The pure translation: ``TrainingJob`` + ``Sweep`` -> an ``azure.ai.ml`` sweep job.

    ``job.timeout`` bounds each trial (``trial_timeout``): ``Command.sweep`` does not carry
    the command's own timeout over.
    """
    from azure.ai.ml.sweep import BanditPolicy

    command_job = build_command_job(job, environment=environment, data=data)
    policy = None
    if sweep.policy is not None:
        slack = ({"slack_factor": sweep.policy.slack_factor} if sweep.policy.slack_factor is not None
                 else {"slack_amount": sweep.policy.slack_amount})
        policy = BanditPolicy(evaluation_interval=sweep.policy.evaluation_interval,
                              delay_evaluation=sweep.policy.delay_evaluation, **slack)
    return command_job(**sweep_search_space(sweep)).sweep(
        primary_metric=sweep.primary_metric, goal=sweep.goal.capitalize(), sampling_algorithm=sampling_algorithm(sweep),
        compute=job.compute_config.name, max_total_trials=sweep.max_total_runs,
        max_concurrent_trials=sweep.max_concurrent_runs, early_termination_policy=policy,
        trial_timeout=int(job.timeout) if job.timeout else None)


def trial_parameters(logged: dict[str, str], names) -> dict:
    """The swept values a trial's script logged as MLflow params (strings), cast to the script's types."""
    parameters = {}
    for name in names:
        if name in logged:
            kind = HYPERPARAMETERS[name].type if name in HYPERPARAMETERS else str
            parameters[name] = kind(float(logged[name])) if kind is int else kind(logged[name])
        else:
            parameters[name] = None
    return parameters


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
    trials = []
    for number, child in enumerate(sorted(children, key=lambda each: each.name)):
        child_run = AzureMLv2Run(client, child)
        metric = child_run.metrics().get(sweep.primary_metric)
        parameters = trial_parameters(child_run.params(), sweep.space)
        state = trial_state(STATUS_MAP.get(child.status), completed)
        trials.append(Trial(number, child.name, parameters, state, metric))
    named_best = (handle.job.properties or {}).get("best_child_run_id")
    best = next((trial for trial in trials if trial.run_id == named_best and trial.state == "completed"), None)
    best = best or best_trial(trials, sweep.goal)
    if best is None:
        raise no_completed_trial(handle.id, trials)
    best_job = job.with_changes(hyperparameters={**job.hyperparameters, **best.parameters})
    best_run = AzureMLv2Run(client, azure_call(client.jobs.get, best.run_id))
    _, model = register_trained_model(best_run, best_job, {"sweep_run_id": handle.id})
    return TuningResult(sweep_run_id=handle.id, trials=trials, best=best, primary_metric=sweep.primary_metric,
                        model_name=model.name, model_version=model.version, backend="azureml-v2", url=handle.url)
