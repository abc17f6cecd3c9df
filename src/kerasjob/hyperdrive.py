"""A ``Sweep`` on Azure ML SDK v1: a real ``HyperDriveConfig`` over the job's ``ScriptRunConfig``.

``build_hyperdrive_config`` is the pure translation (nothing is sent);
``run_hyperdrive`` submits it, streams it, reads every child run and registers
the best one's model.
"""

from __future__ import annotations

import logging
import math

from ._sdk import require_azureml_hyperdrive
from .backends.azureml import STATUS_MAP, AzureMLBackend, AzureMLRun
from .job import TrainingJob
from .retry import azure_call
from .run import register_trained_model
from .search_space import Sweep, choice, loguniform, normal, quniform, uniform
from .training.contract import flag_for
from .tuning import Trial, TuningResult, best_trial, no_completed_trial, trial_state

logger = logging.getLogger(__name__)


def hyperdrive_parameter_space(sweep: Sweep) -> dict:
    """``{"--batch-size": choice(25, 50, 100), ...}``: the space in HyperDrive's terms (script flags)."""
    from azureml.train import hyperdrive

    space = {}
    for name, distribution in sweep.space.items():
        if isinstance(distribution, choice):
            expression = hyperdrive.choice(*distribution.values)
        elif isinstance(distribution, loguniform):
            expression = hyperdrive.loguniform(distribution.min_value, distribution.max_value)
        elif isinstance(distribution, uniform):
            expression = hyperdrive.uniform(distribution.min_value, distribution.max_value)
        elif isinstance(distribution, quniform):
            expression = hyperdrive.quniform(distribution.min_value, distribution.max_value, distribution.q)
        else:
            assert isinstance(distribution, normal)
            expression = hyperdrive.normal(distribution.mu, distribution.sigma)
        space[flag_for(name)] = expression
    return space


def build_hyperdrive_config(sweep: Sweep, script_run_config):
    """The pure translation: ``Sweep`` + ``ScriptRunConfig`` -> ``HyperDriveConfig``."""
    from azureml.train import hyperdrive

    sampling_class = {"random": hyperdrive.RandomParameterSampling, "grid": hyperdrive.GridParameterSampling,
                      "bayesian": hyperdrive.BayesianParameterSampling}[sweep.sampling]
    policy = None
    if sweep.policy is not None:
        policy = hyperdrive.BanditPolicy(evaluation_interval=sweep.policy.evaluation_interval,
                                         delay_evaluation=sweep.policy.delay_evaluation,
                                         **({"slack_factor": sweep.policy.slack_factor}
                                            if sweep.policy.slack_factor is not None
                                            else {"slack_amount": sweep.policy.slack_amount}))
    goal = hyperdrive.PrimaryMetricGoal.MAXIMIZE if sweep.goal == "maximize" else hyperdrive.PrimaryMetricGoal.MINIMIZE
    return hyperdrive.HyperDriveConfig(
        run_config=script_run_config, hyperparameter_sampling=sampling_class(hyperdrive_parameter_space(sweep)),
        policy=policy, primary_metric_name=sweep.primary_metric, primary_metric_goal=goal,
        max_total_runs=sweep.max_total_runs, max_concurrent_runs=sweep.max_concurrent_runs)


def _parameters(child, sweep: Sweep) -> dict:
    """The swept values a child run received, read back from its arguments."""
    arguments = [str(a) for a in (azure_call(child.get_details).get("runDefinition", {}).get("arguments") or [])]
    names = {flag_for(name): name for name in sweep.space}
    values = {}
    for flag, raw in zip(arguments, arguments[1:]):  # a later occurrence overwrites an earlier one
        if flag in names:
            number = float(raw)
            values[names[flag]] = int(number) if number.is_integer() and "." not in raw else number
    return values


def _metric(child, name: str) -> float | None:
    value = azure_call(child.get_metrics).get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def run_hyperdrive(backend: AzureMLBackend, job: TrainingJob, sweep: Sweep, *, show_output: bool = True
                   ) -> TuningResult:
    """Submit ``sweep`` as a HyperDrive run, wait for it, register the best child's model."""
    from azureml.core import Experiment

    require_azureml_hyperdrive()
    config = build_hyperdrive_config(sweep, backend.build_run_config(job))
    experiment = Experiment(workspace=backend.workspace, name=job.experiment)
    sweep_run = azure_call(experiment.submit, config)
    logger.info("Submitted HyperDrive run %s", sweep_run.id)
    try:
        azure_call(sweep_run.wait_for_completion, show_output=show_output)
    except KeyboardInterrupt:
        azure_call(sweep_run.cancel)
        raise
    completed = azure_call(sweep_run.get_status) == "Completed"
    children = sorted(azure_call(sweep_run.get_children), key=lambda child: child.id)
    trials = [Trial(number, child.id, _parameters(child, sweep),
                    trial_state(STATUS_MAP.get(azure_call(child.get_status)), completed),
                    _metric(child, sweep.primary_metric))
              for number, child in enumerate(children)]
    best = best_trial(trials, sweep.goal)
    if best is None:
        raise no_completed_trial(sweep_run.id, trials)
    best_run = next(child for child in children if child.id == best.run_id)
    best_job = job.replace(hyperparameters={**job.hyperparameters, **best.parameters})
    _, model = register_trained_model(AzureMLRun(best_run), best_job, {"sweep_run_id": sweep_run.id})
    return TuningResult(sweep_run_id=sweep_run.id, trials=trials, best=best, primary_metric=sweep.primary_metric,
                        model_name=model.name, model_version=model.version, backend="azureml",
                        url=sweep_run.get_portal_url())
