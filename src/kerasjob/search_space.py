"""A backend-neutral hyperparameter search: the space, the sampling, Bandit early termination.

The distributions mean what Azure ML's mean (``loguniform(a, b)`` is
``exp(uniform(a, b))``), so one ``Sweep`` runs as a HyperDrive run on Azure ML
and as a local Optuna study unchanged. Defaults are the seed notebook's sweep.

Example:
    >>> sweep = Sweep(max_total_runs=6, max_concurrent_runs=2)
    >>> sorted(sweep.space)
    ['batch_size', 'first_layer_neurons', 'learning_rate', 'second_layer_neurons']
    >>> sweep.space["learning_rate"]
    loguniform(-6, -1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Union

from .errors import ValidationError

SAMPLINGS = ("random", "grid", "bayesian")
GOALS = ("maximize", "minimize")


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(name, "a finite number", value)
    return value


@dataclass(frozen=True)
class choice:  # noqa: N801 - named as Azure ML's
    """One of ``values``."""

    values: tuple

    def __init__(self, *values):
        if len(values) == 1 and isinstance(values[0], (list, tuple, range)):
            values = tuple(values[0])
        if not values:
            raise ValidationError("choice", "at least one value", values)
        object.__setattr__(self, "values", tuple(values))

    def __repr__(self) -> str:
        return f"choice{self.values!r}"


@dataclass(frozen=True)
class uniform:  # noqa: N801
    """Uniform between ``min_value`` and ``max_value``."""

    min_value: float
    max_value: float

    def __post_init__(self):
        _check_bounds(type(self).__name__, self.min_value, self.max_value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.min_value!r}, {self.max_value!r})"


@dataclass(frozen=True, repr=False)
class loguniform(uniform):  # noqa: N801
    """``exp(uniform(min_value, max_value))``: e.g. ``loguniform(-6, -1)`` spans e^-6 .. e^-1."""


@dataclass(frozen=True)
class quniform:  # noqa: N801
    """``round(uniform(min_value, max_value) / q) * q``."""

    min_value: float
    max_value: float
    q: float

    def __post_init__(self):
        _check_bounds("quniform", self.min_value, self.max_value)
        if _number("quniform.q", self.q) <= 0:
            raise ValidationError("quniform.q", "a number > 0", self.q)


@dataclass(frozen=True)
class normal:  # noqa: N801
    """Normal with mean ``mu`` and standard deviation ``sigma``."""

    mu: float
    sigma: float

    def __post_init__(self):
        _number("normal.mu", self.mu)
        if _number("normal.sigma", self.sigma) <= 0:
            raise ValidationError("normal.sigma", "a number > 0", self.sigma)


Distribution = Union[choice, uniform, loguniform, quniform, normal]


def _check_bounds(kind: str, low, high) -> None:
    _number(f"{kind}.min_value", low)
    _number(f"{kind}.max_value", high)
    if low >= high:
        raise ValidationError(kind, "min_value < max_value", f"{kind}({low}, {high})",
                              hint="The bounds are in the wrong order (or equal).")


@dataclass(frozen=True)
class Bandit:
    """Azure ML's Bandit policy: stop a trial that falls too far behind the best at an evaluation point.

    For ``maximize``, at every ``evaluation_interval``-th report of the primary
    metric from the ``delay_evaluation``-th on, a trial is stopped when its value
    is below ``best / (1 + slack_factor)`` (or ``best - slack_amount``), ``best``
    being the best value any trial reported at that same interval.
    """

    slack_factor: float | None = 0.1
    slack_amount: float | None = None
    evaluation_interval: int = 1
    delay_evaluation: int = 0

    def __post_init__(self):
        if (self.slack_factor is None) == (self.slack_amount is None):
            raise ValidationError("policy", "exactly one of slack_factor and slack_amount",
                                  f"Bandit(slack_factor={self.slack_factor}, slack_amount={self.slack_amount})")
        slack = self.slack_factor if self.slack_factor is not None else self.slack_amount
        if _number("slack", slack) < 0:
            raise ValidationError("policy", "a slack >= 0", slack)
        for name in ("evaluation_interval", "delay_evaluation"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "evaluation_interval"
                                                                                  else 0):
                raise ValidationError(name, "an integer >= 1" if name == "evaluation_interval" else
                                      "an integer >= 0", value)

    def evaluates_at(self, interval: int) -> bool:
        """Whether the policy is applied at the ``interval``-th report (1-based)."""
        return interval >= max(self.delay_evaluation, 1) and interval % self.evaluation_interval == 0

    def should_stop(self, value: float, best: float, goal: str) -> bool:
        """Whether a trial reporting ``value`` is behind ``best`` by more than the slack."""
        if goal == "maximize":
            limit = best / (1 + self.slack_factor) if self.slack_factor is not None else best - self.slack_amount
            return value < limit
        limit = best * (1 + self.slack_factor) if self.slack_factor is not None else best + self.slack_amount
        return value > limit


def seed_space() -> dict[str, Distribution]:
    """The seed notebook's search space."""
    return {
        "batch_size": choice(25, 50, 100),
        "first_layer_neurons": choice(10, 50, 200, 300, 500),
        "second_layer_neurons": choice(10, 50, 200, 500),
        "learning_rate": loguniform(-6, -1),
    }


@dataclass(frozen=True)
class Sweep:
    """What to search and how: the space, the sampling, the goal, the budget and the policy.

    ``policy`` defaults to the seed notebook's ``Bandit(slack_factor=0.1,
    evaluation_interval=2)`` (none with ``bayesian`` sampling); pass None for none.
    """

    space: Mapping[str, Distribution] = field(default_factory=seed_space)
    sampling: str = "random"
    primary_metric: str = "Accuracy"
    goal: str = "maximize"
    max_total_runs: int = 20
    max_concurrent_runs: int = 4
    policy: Bandit | None | str = "default"
    seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.space, Mapping) or not self.space:
            raise ValidationError("space", "a non-empty mapping of hyperparameter name to distribution", self.space)
        object.__setattr__(self, "space", dict(self.space))
        for name, distribution in self.space.items():
            if not isinstance(distribution, (choice, uniform, quniform, normal)):
                raise ValidationError(f"space[{name!r}]", "choice, uniform, loguniform, quniform or normal",
                                      distribution)
        if self.sampling not in SAMPLINGS:
            raise ValidationError("sampling", f"one of {', '.join(SAMPLINGS)}", self.sampling)
        if self.goal not in GOALS:
            raise ValidationError("goal", f"one of {', '.join(GOALS)}", self.goal)
        if isinstance(self.policy, str) and self.policy == "default":
            # The seed notebook's Bandit; none with bayesian sampling, which Azure ML runs without a policy.
            object.__setattr__(self, "policy", None if self.sampling == "bayesian"
                               else Bandit(slack_factor=0.1, evaluation_interval=2))
        if self.policy is not None and not isinstance(self.policy, Bandit):
            raise ValidationError("policy", "None or Bandit(...)", self.policy)
        for name in ("max_total_runs", "max_concurrent_runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(name, "an integer >= 1", value)
        if self.sampling == "bayesian" and self.policy is not None:
            raise ValidationError("policy", "None with bayesian sampling (Azure ML allows no early termination "
                                  "policy with it)", self.policy)
        if self.max_concurrent_runs > self.max_total_runs:
            raise ValidationError("max_concurrent_runs", f"at most max_total_runs={self.max_total_runs}",
                                  self.max_concurrent_runs)
        allowed = {"grid": (choice,), "bayesian": (choice, uniform, quniform)}.get(self.sampling)
        for name, distribution in self.space.items():
            if allowed and (not isinstance(distribution, allowed) or type(distribution) is loguniform
                            and self.sampling == "bayesian"):
                kinds = " and ".join(kind.__name__ for kind in allowed)
                raise ValidationError(f"space[{name!r}]", f"{kinds} with {self.sampling} sampling (as on Azure ML)",
                                      distribution)

    def check_against(self, hyperparameters: Mapping, metrics: tuple[str, ...] | None) -> None:
        """Refuse a space naming unknown hyperparameters, or a metric the script never logs.

        ``hyperparameters`` maps names to the script's declared types (or None
        when the script declares none); ``metrics`` is None when unknown.
        """
        for name, distribution in self.space.items():
            if hyperparameters and name not in hyperparameters:
                raise ValidationError("space", f"hyperparameters the script accepts ({', '.join(hyperparameters)})",
                                      name)
            kind = getattr(hyperparameters.get(name), "type", None) if hyperparameters else None
            if kind is int and not _integer_valued(distribution):
                raise ValidationError(f"space[{name!r}]", "choice of integers or quniform with an integer q for an "
                                      "integer hyperparameter", distribution)
        if metrics is not None and self.primary_metric not in metrics:
            raise ValidationError("primary_metric", f"a metric the training script logs ({', '.join(metrics)})",
                                  self.primary_metric, hint="HyperDrive only finds out after the sweep has started.")

    @property
    def grid_size(self) -> int:
        return math.prod(len(d.values) for d in self.space.values()) if self.sampling == "grid" else 0


def _integer_valued(distribution: Distribution) -> bool:
    if isinstance(distribution, choice):
        return all(isinstance(v, int) and not isinstance(v, bool) for v in distribution.values)
    return type(distribution) is quniform and float(distribution.q).is_integer()
