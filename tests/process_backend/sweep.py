"""The process backend's sweep: every combination of the space's ``choice`` values, one trial after another."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from kerasjob.job import TrainingJob
from kerasjob.search_space import Sweep, choice
from kerasjob.tuning_results import Trial, TuningResult, best_trial, no_completed_trial, register_best, trial_state

from .run import ProcessRun

if TYPE_CHECKING:
    from .backend import ProcessBackend


def run_grid(backend: ProcessBackend, job: TrainingJob, sweep: Sweep) -> TuningResult:
    names = sorted(sweep.space)
    grid = itertools.product(*(sweep.space[name].values for name in names if isinstance(sweep.space[name], choice)))
    trials, runs = [], {}
    for number, values in enumerate(itertools.islice(grid, sweep.max_total_runs)):
        parameters = dict(zip(names, values))
        run = backend.submit(job.with_changes(hyperparameters={**job.hyperparameters, **parameters}))
        status = run.wait()
        runs[run.id] = run
        trials.append(Trial(number, run.id, parameters, trial_state(status, True),
                            run.metrics().get(sweep.primary_metric)))
    best = best_trial(trials, sweep.goal)
    if best is None:
        raise no_completed_trial("grid", trials)
    best_run: ProcessRun = runs[best.run_id]
    return register_best(best_run, job, best, trials=trials, sweep=sweep, sweep_run_id=f"grid-{best.run_id}",
                         backend=backend.name, url=best_run.url)
