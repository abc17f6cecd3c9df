"""A ``Sweep`` on Azure ML SDK v1: a real ``HyperDriveConfig`` over the job's ``ScriptRunConfig``.

``build_hyperdrive_config`` is the pure translation (nothing is sent);
``run_hyperdrive`` submits it under a fixed run id, waits for it, reads every
child back through ``HyperDriveRun.get_hyperparameters`` and registers the best
one's model. HyperDrive takes no sampling seed: ``Sweep.seed`` is ignored here
(with a warning).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from .run import STATUS_MAP, AzureMLRun, last_metric, new_run_id
from ...errors import was_interrupted
from ...job import TrainingJob
from ...optional import AZUREML_HYPERDRIVE
from ...retry import azure_call
from ...search_space import Bandit, Sweep
from ...training.contract import flag_for
from ...tuning_results import (Trial, TuningResult, best_trial, cast_trial_value, no_completed_trial, register_best,
                               trial_state)

if TYPE_CHECKING:  # the backend imports this module for its ``sweep``
    from .backend import AzureMLBackend

__all__ = ["build_hyperdrive_config", "hyperdrive_parameter_space", "run_hyperdrive"]

logger = logging.getLogger(__name__)


def hyperdrive_parameter_space(sweep: Sweep) -> dict[str, Any]:
    """``{"--batch-size": choice(25, 50, 100), ...}``: the space in HyperDrive's terms (script flags)."""
    return {flag_for(name): distribution.hyperdrive_expression() for name, distribution in sweep.space.items()}


def build_hyperdrive_config(sweep: Sweep, script_run_config: Any, run_id: str | None = None) -> Any:
    """The pure translation: ``Sweep`` + ``ScriptRunConfig`` -> ``HyperDriveConfig`` (parent run id ``run_id``)."""
    from azureml.train import hyperdrive

    sampling_class = {"random": hyperdrive.RandomParameterSampling, "grid": hyperdrive.GridParameterSampling,
                      "bayesian": hyperdrive.BayesianParameterSampling}[sweep.sampling]
    policy = sweep.policy.hyperdrive_policy() if isinstance(sweep.policy, Bandit) else None
    goal = hyperdrive.PrimaryMetricGoal.MAXIMIZE if sweep.goal == "maximize" else hyperdrive.PrimaryMetricGoal.MINIMIZE
    return hyperdrive.HyperDriveConfig(
        run_config=script_run_config, hyperparameter_sampling=sampling_class(hyperdrive_parameter_space(sweep)),
        policy=policy, primary_metric_name=sweep.primary_metric, primary_metric_goal=goal,
        max_total_runs=sweep.max_total_runs, max_concurrent_runs=sweep.max_concurrent_runs, custom_run_id=run_id)


def _parameters(sampled: str | None, sweep: Sweep, job: TrainingJob) -> dict[str, Any]:
    """The swept values one child received, from the parent's ``get_hyperparameters()`` entry (JSON by flag;
    HyperDrive's JSON may give 50.0 for an int flag: ``cast_trial_value``)."""
    values = json.loads(sampled) if sampled else {}
    names = {flag_for(name): name for name in sweep.space}
    return {names[flag]: cast_trial_value(names[flag], value, job, sweep)
            for flag, value in values.items() if flag in names}


def _trial_index(child_id: str, parent_id: str) -> int:
    """HyperDrive names child ``i`` ``<parent>_<i>``: number the trials by ``i`` (not by string order)."""
    suffix = child_id[len(parent_id) + 1:]
    return int(suffix) if suffix.isdigit() else 1 << 30


def _sweep_config(backend: AzureMLBackend, job: TrainingJob, sweep: Sweep, run_id: str) -> Any:
    """The HyperDrive config; the base script arguments leave out the swept flags (HyperDrive appends
    its sampled ones, and ScriptRunConfig arguments are not de-duplicated: azureml/core/runconfig.py)."""
    config = backend.build_run_config(job)
    swept = {flag_for(name) for name in sweep.space}
    pairs = list(zip(config.arguments[::2], config.arguments[1::2]))
    config.arguments = [item for flag, value in pairs if flag not in swept for item in (flag, value)]
    return build_hyperdrive_config(sweep, config, run_id)


def _wait(sweep_run: Any, show_output: bool) -> None:
    """Wait for the sweep; on Ctrl-C cancel it on the service and re-raise ``KeyboardInterrupt``.

    ``Run.wait_for_completion(show_output=True)`` turns Ctrl-C into ``ExperimentExecutionException``
    (azureml/core/run.py); ``raise_on_error=False`` keeps a failed sweep from raising
    ``ActivityFailedException``: its status is read afterwards.
    """
    from azureml.exceptions import ExperimentExecutionException

    try:
        try:
            sweep_run.wait_for_completion(show_output=show_output, raise_on_error=False)
        except ExperimentExecutionException as error:
            if was_interrupted(error):
                raise KeyboardInterrupt from error
            raise
    except KeyboardInterrupt:
        logger.warning("Interrupted: canceling HyperDrive run %s", sweep_run.id)
        azure_call(sweep_run.cancel)
        raise


def run_hyperdrive(backend: AzureMLBackend, job: TrainingJob, sweep: Sweep, *, show_output: bool = True
                   ) -> TuningResult:
    """Submit ``sweep`` as a HyperDrive run, wait for it, register the best child's model."""
    AZUREML_HYPERDRIVE.require()
    if sweep.seed is not None:
        logger.warning("seed is ignored by HyperDrive (Sweep.seed=%s): it takes no sampling seed", sweep.seed)
    run_id = new_run_id(job.experiment)
    sweep_run = backend.submit_once(job.experiment, _sweep_config(backend, job, sweep, run_id), run_id)
    logger.info("Submitted HyperDrive run %s", sweep_run.id)
    _wait(sweep_run, show_output)
    completed = azure_call(sweep_run.get_status) == "Completed"
    sampled = azure_call(sweep_run.get_hyperparameters)
    children = sorted(azure_call(lambda: list(sweep_run.get_children())),
                      key=lambda child: _trial_index(child.id, sweep_run.id))
    trials = [Trial(number, child.id, _parameters(sampled.get(child.id), sweep, job),
                    trial_state(STATUS_MAP.get(azure_call(child.get_status)), completed),
                    last_metric(child, sweep.primary_metric))
              for number, child in enumerate(children)]
    best = best_trial(trials, sweep.goal)
    if best is None:
        raise no_completed_trial(sweep_run.id, trials)
    best_run = next(child for child in children if child.id == best.run_id)
    return register_best(AzureMLRun(best_run), job, best, trials=trials, sweep=sweep, sweep_run_id=sweep_run.id,
                         backend="azureml", url=sweep_run.get_portal_url())
