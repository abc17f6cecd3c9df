"""A sweep on this machine: an Optuna study whose trials are local-backend runs.

The sweep is one MLflow parent run; each trial is a local run nested beneath it
(``mlflow.parentRunId``), at most ``max_concurrent_runs`` at a time. Bandit is
applied live to the primary metric the trials log each epoch: a trial that falls
behind is canceled and recorded as early-terminated. Ctrl-C cancels every
running trial. The best completed trial's model is registered.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import tracking
from ..base import LineSink
from .run import LocalRun
from ...errors import SubmissionError
from ...job import TrainingJob
from ...optional import OPTUNA
from ...search_space import Bandit, Sweep, choice
from ...tuning_results import Trial, TuningResult, best_trial, cast_trial_value, no_completed_trial, register_best

if TYPE_CHECKING:  # the backend imports this module for its ``sweep``
    from .backend import LocalBackend

__all__ = ["POLL_SECONDS", "LocalSweep", "RunningTrial", "create_study", "run_local_sweep", "sample"]

POLL_SECONDS = 0.5


def create_study(sweep: Sweep) -> Any:
    """The Optuna study for ``sweep``: a random or TPE sampler; grid points are enqueued in a seeded order.

    (Optuna's GridSampler stops the study from inside ``tell``, which the ask/tell
    loop of a sweep with concurrent trials cannot use.)
    """
    import optuna

    sampler = (optuna.samplers.TPESampler(seed=sweep.seed) if sweep.sampling == "bayesian"
               else optuna.samplers.RandomSampler(seed=sweep.seed))
    study = optuna.create_study(direction="maximize" if sweep.goal == "maximize" else "minimize",
                                sampler=sampler)
    if sweep.sampling == "grid":
        names = list(sweep.space)
        grids = [distribution.values for distribution in sweep.space.values() if isinstance(distribution, choice)]
        points = list(itertools.product(*grids))  # a grid space holds only choice (checked when built)
        random.Random(sweep.seed).shuffle(points)
        for point in points:
            study.enqueue_trial(dict(zip(names, point)))
    return study


def sample(trial: Any, sweep: Sweep, rng: random.Random) -> dict[str, Any]:
    """Draw one set of hyperparameters from ``sweep.space`` through an Optuna ``trial`` (Azure ML's meaning
    of each distribution: ``Distribution.suggest``), before they are cast for the script."""
    return {name: distribution.suggest(trial, name, rng) for name, distribution in sweep.space.items()}


@dataclass
class RunningTrial:
    """A trial whose local run has not ended yet."""

    number: int
    optuna_trial: Any
    parameters: dict[str, Any]
    run: LocalRun
    history: list[float] = field(default_factory=list)
    early_terminated: bool = False


class LocalSweep:
    """Schedules the trials of one sweep and applies its policy."""

    def __init__(self, job: TrainingJob, sweep: Sweep, on_line: LineSink | None = None, *,
                 backend: LocalBackend) -> None:
        self.job, self.sweep = job, sweep
        #: The backend the sweep was asked of: its trials run on one like it (nested, registering nothing).
        self.backend = backend
        self.on_line: LineSink = on_line or (lambda line: None)
        self.uri = tracking.tracking_uri()
        self.client = tracking.client(self.uri)
        self.study = create_study(sweep)
        self.rng = random.Random(sweep.seed)
        self.running: list[RunningTrial] = []
        self.trials: list[Trial] = []
        self.histories: dict[int, list[float]] = {}
        self.total = min(sweep.max_total_runs, sweep.grid_size or sweep.max_total_runs)
        self.parent_id: str | None = None

    def _create_parent(self) -> str:
        with tracking.store_lock(self.uri):
            experiment_id = tracking.get_or_create_experiment(self.client, self.job.experiment, self.uri)
            parent = self.client.create_run(experiment_id, tags={"kerasjob.sweep": "true", "kerasjob.backend": "local",
                                                                 "mlflow.runName": f"sweep-{self.job.experiment}",
                                                                 "mlflow.user": getpass.getuser()})
        parent_id = parent.info.run_id
        for key, value in (("sampling", self.sweep.sampling), ("primary_metric", self.sweep.primary_metric),
                           ("goal", self.sweep.goal), ("max_total_runs", self.total),
                           ("max_concurrent_runs", self.sweep.max_concurrent_runs),
                           ("policy", repr(self.sweep.policy)), ("space", repr(self.sweep.space))):
            self.client.log_param(parent_id, key, str(value)[:6000])
        return parent_id

    def run(self) -> TuningResult:
        parent_id = self.parent_id = self._create_parent()
        # trials register nothing: the sweep registers its best one (register_best)
        backend = self._trial_backend(parent_id)
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
            for trial_run in backend.runs_tagged("mlflow.parentRunId", parent_id):  # one started as Ctrl-C came
                with contextlib.suppress(Exception):
                    trial_run.cancel()
            self.client.set_terminated(parent_id, "KILLED")
            raise
        return self._finish(parent_id)

    def _trial_backend(self, parent_id: str) -> LocalBackend:
        """A local backend whose runs nest under the sweep's parent run and register nothing."""
        return self.backend.nested(parent_id)

    def _start(self, backend: LocalBackend, number: int) -> None:
        optuna_trial = self.study.ask()
        parameters = {name: cast_trial_value(name, value, self.job, self.sweep)
                      for name, value in sample(optuna_trial, self.sweep, self.rng).items()}
        trial_job = self.job.with_changes(hyperparameters={**self.job.hyperparameters, **parameters})
        run = backend.submit(trial_job)
        if number == 0:
            self._log_dataset(run)
        self.running.append(RunningTrial(number, optuna_trial, parameters, run))
        self.on_line(f"trial {number} started: run {run.id} {parameters}")

    def _log_dataset(self, run: Any) -> None:
        """The sweep's parent run names the data its trials train on, as a single run does (the dataset the first
        trial's launch recorded: the data folder is resolved, MNIST downloaded if need be, at submit)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        described = (getattr(run, "_launch", None) or {}).get("mlflow_run", {}).get("dataset")
        if described and self.parent_id is not None:
            dataset = Dataset(source_type="local", **described)
            self.client.log_inputs(self.parent_id, [DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT,
                                                                                   "training")])])

    def _history(self, trial: RunningTrial) -> list[float]:
        """The primary metric's values the trial logged so far, by step (none before its MLflow run exists)."""
        try:
            mlflow_run_id = trial.run.mlflow_run_id  # waits the moment the supervisor takes to create it
        except SubmissionError:  # the trial ended before its MLflow run was created
            return []
        return [m.value for m in sorted(self.client.get_metric_history(mlflow_run_id, self.sweep.primary_metric),
                                        key=lambda m: m.step)]

    def _poll(self) -> None:
        for trial in list(self.running):
            status = trial.run.status()
            shown = len(trial.history)
            trial.history = self._history(trial)
            self.histories[trial.number] = trial.history
            for epoch, value in enumerate(trial.history[shown:], start=shown + 1):  # each epoch, as it ends
                self.on_line(f"trial {trial.number} epoch {epoch}: {self.sweep.primary_metric}={value:.4f}")
            if status.is_final:
                self._record(trial, status.value)
            elif not trial.early_terminated and self._falls_behind(trial):
                trial.early_terminated = True
                self.on_line(f"trial {trial.number} early-terminated by {self.sweep.policy!r} at "
                            f"{self.sweep.primary_metric}={trial.history[-1]:.4f}")
                trial.run.cancel()

    def _falls_behind(self, trial: RunningTrial) -> bool:
        policy = self.sweep.policy
        if not isinstance(policy, Bandit):  # None: no early termination
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
        self.on_line(f"trial {trial.number} {state}{shown}")

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
        result = register_best(LocalRun.from_id(best.run_id), self.job, best, trials=trials, sweep=self.sweep,
                               sweep_run_id=parent_id, backend="local", url=self.uri)
        if best.metric is not None:  # always, for a best trial
            self.client.log_metric(parent_id, f"best {self.sweep.primary_metric}", best.metric)
        self.client.set_tag(parent_id, "kerasjob.best_run_id", best.run_id)
        self.client.set_terminated(parent_id, "FINISHED")
        return result


def run_local_sweep(backend: LocalBackend, job: TrainingJob, sweep: Sweep, *, show_output: bool = True
                    ) -> TuningResult:
    """Run ``sweep`` over local trials of ``job`` (see the module docstring); one line per trial event."""
    OPTUNA.require()
    import optuna

    on_line: LineSink | None = print if show_output else None

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # kerasjob reports trials itself
    try:
        return LocalSweep(job, sweep, on_line, backend=backend).run()
    finally:
        optuna.logging.set_verbosity(verbosity)
