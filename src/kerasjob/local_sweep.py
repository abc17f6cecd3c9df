"""A sweep on this machine: an Optuna study whose trials are local-backend runs.

The sweep is one MLflow parent run; each trial is a local run nested beneath it
(``mlflow.parentRunId``), at most ``max_concurrent_runs`` at a time. Bandit is
applied live to the primary metric the trials log each epoch: a trial that falls
behind is canceled and recorded as early-terminated. Ctrl-C cancels every
running trial. The best completed trial's model is registered.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from dataclasses import dataclass, field

from . import tracking
from .backends import Backend
from .backends.local import LocalBackend, LocalRun
from .job import TrainingJob
from .optional import OPTUNA
from .run import register_trained_model
from .search_space import Sweep, choice, loguniform, normal, quniform, uniform
from .training.contract import HYPERPARAMETERS
from .tuning import Trial, TuningResult, best_trial, no_completed_trial

POLL_SECONDS = 0.5


def create_study(sweep: Sweep):
    """The Optuna study for ``sweep``: a random or TPE sampler; grid points are enqueued in a seeded order.

    (Optuna's GridSampler stops the study from inside ``tell``, which the ask/tell
    loop of a sweep with concurrent trials cannot use.)
    """
    import optuna

    sampler = (optuna.samplers.TPESampler(seed=sweep.seed) if sweep.sampling == "bayesian"
               else optuna.samplers.RandomSampler(seed=sweep.seed))
    study = optuna.create_study(direction=sweep.goal, sampler=sampler)
    if sweep.sampling == "grid":
        names = list(sweep.space)
        points = list(itertools.product(*(sweep.space[name].values for name in names)))
        random.Random(sweep.seed).shuffle(points)
        for point in points:
            study.enqueue_trial(dict(zip(names, point)))
    return study


def sample(trial, sweep: Sweep, rng: random.Random) -> dict:
    """Draw one set of hyperparameters from ``sweep.space`` (Azure ML's meaning of each distribution)."""
    values = {}
    for name, distribution in sweep.space.items():
        if isinstance(distribution, choice):
            value = trial.suggest_categorical(name, list(distribution.values))
        elif isinstance(distribution, loguniform):  # exp(uniform(a, b)) is log-uniform on [e^a, e^b]
            value = trial.suggest_float(name, math.exp(distribution.min_value), math.exp(distribution.max_value),
                                        log=True)
        elif isinstance(distribution, uniform):
            value = trial.suggest_float(name, distribution.min_value, distribution.max_value)
        elif isinstance(distribution, quniform):
            raw = trial.suggest_float(name, distribution.min_value, distribution.max_value)
            value = round(raw / distribution.q) * distribution.q
        else:  # normal: Optuna has no normal distribution; random sampling only (as on Azure ML)
            assert isinstance(distribution, normal)
            value = rng.gauss(distribution.mu, distribution.sigma)
            trial.set_user_attr(name, value)
        declared = HYPERPARAMETERS.get(name)
        values[name] = int(round(value)) if declared is not None and declared.type is int else value
    return values


@dataclass
class RunningTrial:
    number: int
    optuna_trial: object
    parameters: dict
    run: LocalRun
    history: list[float] = field(default_factory=list)
    early_terminated: bool = False


class LocalSweep:
    """Schedules the trials of one sweep and applies its policy."""

    def __init__(self, job: TrainingJob, sweep: Sweep, report=lambda *_: None):
        self.job, self.sweep, self.report = job, sweep, report
        self.uri = tracking.tracking_uri()
        self.client = tracking.client(self.uri)
        self.study = create_study(sweep)
        self.rng = random.Random(sweep.seed)
        self.running: list[RunningTrial] = []
        self.trials: list[Trial] = []
        self.histories: dict[int, list[float]] = {}
        self.total = min(sweep.max_total_runs, sweep.grid_size or sweep.max_total_runs)

    def _create_parent(self) -> str:
        with tracking.store_lock(self.uri):
            experiment_id = tracking.get_or_create_experiment(self.client, self.job.experiment, self.uri)
            parent = self.client.create_run(experiment_id, tags={"kerasjob.sweep": "true", "kerasjob.backend": "local",
                                                                 "mlflow.runName": f"sweep-{self.job.experiment}"})
        parent_id = parent.info.run_id
        for key, value in (("sampling", self.sweep.sampling), ("primary_metric", self.sweep.primary_metric),
                           ("goal", self.sweep.goal), ("max_total_runs", self.total),
                           ("max_concurrent_runs", self.sweep.max_concurrent_runs),
                           ("policy", repr(self.sweep.policy)), ("space", repr(self.sweep.space))):
            self.client.log_param(parent_id, key, str(value)[:6000])
        return parent_id

    def run(self) -> TuningResult:
        parent_id = self._create_parent()
        backend = LocalBackend(run_tags={"mlflow.parentRunId": parent_id})
        started = 0
        try:
            while started < self.total or self.running:
                while started < self.total and len(self.running) < self.sweep.max_concurrent_runs:
                    self._start(backend, started)
                    started += 1
                time.sleep(POLL_SECONDS)
                self._poll()
        except BaseException:
            self._cancel_all()
            self.client.set_terminated(parent_id, "KILLED")
            raise
        return self._finish(parent_id)

    def _start(self, backend: LocalBackend, number: int) -> None:
        optuna_trial = self.study.ask()
        parameters = sample(optuna_trial, self.sweep, self.rng)
        trial_job = self.job.with_changes(hyperparameters={**self.job.hyperparameters, **parameters})
        run = backend.submit(trial_job)
        self.running.append(RunningTrial(number, optuna_trial, parameters, run))
        self.report(f"trial {number} started: run {run.id} {parameters}")

    def _poll(self) -> None:
        for trial in list(self.running):
            status = trial.run.status()
            trial.history = [m.value for m in sorted(
                self.client.get_metric_history(trial.run.id, self.sweep.primary_metric), key=lambda m: m.step)]
            self.histories[trial.number] = trial.history
            if status.is_final:
                self._record(trial, status.value)
            elif not trial.early_terminated and self._falls_behind(trial):
                trial.early_terminated = True
                self.report(f"trial {trial.number} early-terminated by {self.sweep.policy!r} at "
                            f"{self.sweep.primary_metric}={trial.history[-1]:.4f}")
                trial.run.cancel()

    def _falls_behind(self, trial: RunningTrial) -> bool:
        policy = self.sweep.policy
        if policy is None:
            return False
        for interval in range(1, len(trial.history) + 1):
            if not policy.evaluates_at(interval):
                continue
            reported = [history[interval - 1] for history in self.histories.values() if len(history) >= interval]
            best = (max if self.sweep.goal == "maximize" else min)(reported)
            if policy.should_stop(trial.history[interval - 1], best, self.sweep.goal):
                return True
        return False

    def _record(self, trial: RunningTrial, status: str) -> None:
        import optuna

        self.running.remove(trial)
        state = "early-terminated" if trial.early_terminated else status
        metric = trial.history[-1] if trial.history else None
        if state == "completed" and metric is not None:
            self.study.tell(trial.optuna_trial, metric)
        else:
            self.study.tell(trial.optuna_trial, state=optuna.trial.TrialState.PRUNED if state == "early-terminated"
                            else optuna.trial.TrialState.FAIL)
        self.trials.append(Trial(trial.number, trial.run.id, trial.parameters, state, metric))
        shown = "" if metric is None else f" {self.sweep.primary_metric}={metric:.4f}"
        self.report(f"trial {trial.number} {state}{shown}")

    def _cancel_all(self) -> None:
        for trial in self.running:
            with contextlib.suppress(Exception):
                trial.run.cancel()

    def _finish(self, parent_id: str) -> TuningResult:
        trials = sorted(self.trials, key=lambda trial: trial.number)
        best = best_trial(trials, self.sweep.goal)
        if best is None:
            self.client.set_terminated(parent_id, "FAILED")
            raise no_completed_trial(parent_id, trials)
        best_job = self.job.with_changes(hyperparameters={**self.job.hyperparameters, **best.parameters})
        _, model = register_trained_model(LocalRun.from_id(best.run_id), best_job, {"sweep_run_id": parent_id})
        self.client.log_metric(parent_id, f"best {self.sweep.primary_metric}", best.metric)
        self.client.set_tag(parent_id, "kerasjob.best_run_id", best.run_id)
        self.client.set_terminated(parent_id, "FINISHED")
        return TuningResult(sweep_run_id=parent_id, trials=trials, best=best, primary_metric=self.sweep.primary_metric,
                            model_name=model.name, model_version=model.version, backend="local", url=self.uri)


def run_local_sweep(backend: Backend, job: TrainingJob, sweep: Sweep, *,
                    show_output: bool = True) -> TuningResult:
    """Run ``sweep`` over local trials of ``job`` (see the module docstring); one line per trial event."""
    OPTUNA.require()
    import optuna

    report = print if show_output else (lambda *_: None)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # kerasjob reports trials itself
    try:
        return LocalSweep(job, sweep, report).run()
    finally:
        optuna.logging.set_verbosity(verbosity)
