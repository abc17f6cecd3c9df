"""The sweep's dry-run plan: what ``tune_training`` would do, computed without side effects.

One trial's ``SubmissionPlan`` (``kerasjob.plan``) with the swept flags marked,
plus the sweep itself: its space, what is held fixed, sampling, goal, budget,
policy, and how the best model would be registered.

Example:
    >>> from kerasjob import Sweep, choice, tune_training
    >>> plan = tune_training(sweep=Sweep(space={"batch_size": choice(25, 50)}, max_total_runs=2,
    ...                                  max_concurrent_runs=1), dry_run=True, data=None)
    >>> plan.trials, plan.goal, plan.trial.script_arguments[2:4]
    (2, 'maximize', ['--batch-size', '<swept>'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..backends.base import Backend
from ..job import TrainingJob
from ..plan import SubmissionPlan, build_plan
from ..search_space import Sweep
from ..training.contract import flag_for

__all__ = ["SWEPT", "SweepPlan", "build_sweep_plan"]

#: What stands for a swept value in a trial's script arguments.
SWEPT = "<swept>"


@dataclass(frozen=True)
class SweepPlan:
    """Everything ``tune_training`` would do, for a person to read before paying for it."""

    trial: SubmissionPlan
    space: dict[str, str]
    fixed: dict[str, Any]
    sampling: str
    primary_metric: str
    goal: str
    trials: int
    max_concurrent_runs: int
    policy: str
    seed: int | None
    model_registration: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        lines = [
            *(line for line in self.trial.describe().splitlines() if not line.startswith("then:")),
            f"sweep:        {self.trials} trials, {self.max_concurrent_runs} at once, {self.sampling} sampling"
            + (f" (seed {self.seed})" if self.seed is not None else ""),
            *(f"                {name} ~ {distribution}" for name, distribution in self.space.items()),
            f"fixed:        {', '.join(f'{k}={v!r}' for k, v in self.fixed.items()) or 'none'}",
            f"goal:         {self.goal} {self.primary_metric}",
            f"policy:       {self.policy}",
            f"then:         {self.model_registration}",
        ]
        return "\n".join(lines)


def build_sweep_plan(job: TrainingJob, sweep: Sweep, backend: Backend, fixed: Mapping[str, Any] | None = None
                     ) -> SweepPlan:
    """The plan for sweeping ``job`` with ``sweep`` on ``backend``; nothing is contacted."""
    trial = build_plan(job, backend)
    swept = {flag_for(name) for name in sweep.space}
    arguments = [SWEPT if index and trial.script_arguments[index - 1] in swept else argument
                 for index, argument in enumerate(trial.script_arguments)]
    trial = dataclasses.replace(trial, script_arguments=arguments, model_registration="")
    return SweepPlan(
        trial=trial, space={name: repr(distribution) for name, distribution in sweep.space.items()},
        fixed=dict(fixed or {}), sampling=sweep.sampling, primary_metric=sweep.primary_metric, goal=sweep.goal,
        trials=min(sweep.max_total_runs, sweep.grid_size or sweep.max_total_runs),
        max_concurrent_runs=sweep.max_concurrent_runs, policy=repr(sweep.policy), seed=sweep.seed,
        model_registration=f"register the best trial's {job.model_path} as a new version of model "
                           f"{job.model_name!r} in {backend.registry_description}; it becomes the champion only "
                           f"if its {sweep.primary_metric} beats the champion's ({sweep.goal})",
    )
