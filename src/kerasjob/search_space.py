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
import random
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from .errors import ValidationError

__all__ = ["GOALS", "SAMPLINGS", "Bandit", "Distribution", "Sweep", "choice", "default_goal", "loguniform", "normal",
           "quniform", "seed_space", "uniform"]

SAMPLINGS = ("random", "grid", "bayesian")
GOALS = ("maximize", "minimize")
#: Metric names that are minimized unless a goal is given: losses and errors.
_MINIMIZED = re.compile(r"loss|error|mse|mae|perplexity", re.IGNORECASE)


def default_goal(metric: str) -> str:
    """``minimize`` for a metric named like a loss or an error, else ``maximize``.

    Example:
        >>> default_goal("Accuracy"), default_goal("Final test loss"), default_goal("val_mae")
        ('maximize', 'minimize', 'minimize')
    """
    return "minimize" if _MINIMIZED.search(metric) else "maximize"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(name, "a finite number", value)
    return value


def _parsed(raw: object) -> Any:
    """A value read back from a service: a string that spells a number becomes that number, the rest as given."""
    if not isinstance(raw, str):
        return raw
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _float(raw: object) -> Any:
    """A continuous value read back: a number string as a float, the rest as given."""
    value = _parsed(raw)
    return float(value) if isinstance(value, int) and not isinstance(value, bool) and isinstance(raw, str) else value


# Each distribution owns how it is written out (HyperDrive, azure.ai.ml.sweep, an Optuna draw) and how a
# sampled value is read back for a script that declares no types (``read_back``).


@dataclass(frozen=True)
class choice:  # noqa: N801 - named as Azure ML's
    """One of ``values``."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        if len(values) == 1 and isinstance(values[0], (list, tuple, range)):
            values = tuple(values[0])
        if not values:
            raise ValidationError("choice", "at least one value", values)
        object.__setattr__(self, "values", tuple(values))

    def __repr__(self) -> str:
        return f"choice{self.values!r}"

    def hyperdrive_expression(self) -> Any:
        """``azureml.train.hyperdrive.choice(...)``."""
        from azureml.train import hyperdrive

        return hyperdrive.choice(*self.values)

    def sweep_expression(self) -> Any:
        """``azure.ai.ml.sweep.Choice(...)``."""
        from azure.ai.ml import sweep

        return sweep.Choice(values=list(self.values))

    def suggest(self, trial: Any, name: str, rng: random.Random) -> Any:
        """One draw through an Optuna ``trial``."""
        return trial.suggest_categorical(name, list(self.values))

    def read_back(self, raw: object) -> Any:
        """The choice value ``raw`` stands for (a service may give it back as a string), else ``raw`` parsed."""
        for matches in (lambda value: type(value) is type(raw) and value == raw,
                        lambda value: not isinstance(value, (bool, str)) and not isinstance(raw, (bool, str))
                        and value == raw,  # 50.0 back for 50
                        lambda value: isinstance(raw, str) and str(value) == raw):  # "50" back for 50
            found = next((value for value in self.values if matches(value)), None)
            if found is not None:
                return found
        return _parsed(raw)


@dataclass(frozen=True)
class uniform:  # noqa: N801
    """Uniform between ``min_value`` and ``max_value``."""

    min_value: float
    max_value: float

    def __post_init__(self) -> None:
        _check_bounds(type(self).__name__, self.min_value, self.max_value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.min_value!r}, {self.max_value!r})"

    def hyperdrive_expression(self) -> Any:
        """``azureml.train.hyperdrive.uniform(...)``."""
        from azureml.train import hyperdrive

        return hyperdrive.uniform(self.min_value, self.max_value)

    def sweep_expression(self) -> Any:
        """``azure.ai.ml.sweep.Uniform(...)``."""
        from azure.ai.ml import sweep

        return sweep.Uniform(min_value=self.min_value, max_value=self.max_value)

    def suggest(self, trial: Any, name: str, rng: random.Random) -> Any:
        """One draw through an Optuna ``trial``."""
        return trial.suggest_float(name, self.min_value, self.max_value)

    def read_back(self, raw: object) -> Any:
        """A float (a service may give it back as a string)."""
        return _float(raw)


@dataclass(frozen=True, repr=False)
class loguniform(uniform):  # noqa: N801
    """``exp(uniform(min_value, max_value))``: e.g. ``loguniform(-6, -1)`` spans e^-6 .. e^-1."""

    def hyperdrive_expression(self) -> Any:
        """``azureml.train.hyperdrive.loguniform(...)``."""
        from azureml.train import hyperdrive

        return hyperdrive.loguniform(self.min_value, self.max_value)

    def sweep_expression(self) -> Any:
        """``azure.ai.ml.sweep.LogUniform(...)``."""
        from azure.ai.ml import sweep

        return sweep.LogUniform(min_value=self.min_value, max_value=self.max_value)

    def suggest(self, trial: Any, name: str, rng: random.Random) -> Any:
        """One draw through an Optuna ``trial``: exp(uniform(a, b)) is log-uniform on [e^a, e^b]."""
        return trial.suggest_float(name, math.exp(self.min_value), math.exp(self.max_value), log=True)


@dataclass(frozen=True)
class quniform:  # noqa: N801
    """``round(uniform(min_value, max_value) / q) * q``."""

    min_value: float
    max_value: float
    q: float

    def __post_init__(self) -> None:
        _check_bounds("quniform", self.min_value, self.max_value)
        if _number("quniform.q", self.q) <= 0:
            raise ValidationError("quniform.q", "a number > 0", self.q)

    def hyperdrive_expression(self) -> Any:
        """``azureml.train.hyperdrive.quniform(...)``."""
        from azureml.train import hyperdrive

        return hyperdrive.quniform(self.min_value, self.max_value, self.q)

    def sweep_expression(self) -> Any:
        """``azure.ai.ml.sweep.QUniform(...)``."""
        from azure.ai.ml import sweep

        q: Any = self.q  # the SDK annotates an int; a float q is sent as given, as before
        return sweep.QUniform(min_value=self.min_value, max_value=self.max_value, q=q)

    def suggest(self, trial: Any, name: str, rng: random.Random) -> Any:
        """One draw through an Optuna ``trial``, rounded to a multiple of ``q``."""
        raw = trial.suggest_float(name, self.min_value, self.max_value)
        return round(raw / self.q) * self.q

    def read_back(self, raw: object) -> Any:
        """A multiple of ``q``: an int when ``q`` is one (a service may give back 50.0 or "50")."""
        value = _float(raw)
        if isinstance(self.q, int) and isinstance(value, float) and value.is_integer():
            return int(value)
        return value


@dataclass(frozen=True)
class normal:  # noqa: N801
    """Normal with mean ``mu`` and standard deviation ``sigma``."""

    mu: float
    sigma: float

    def __post_init__(self) -> None:
        _number("normal.mu", self.mu)
        if _number("normal.sigma", self.sigma) <= 0:
            raise ValidationError("normal.sigma", "a number > 0", self.sigma)

    def hyperdrive_expression(self) -> Any:
        """``azureml.train.hyperdrive.normal(...)``."""
        from azureml.train import hyperdrive

        return hyperdrive.normal(self.mu, self.sigma)

    def sweep_expression(self) -> Any:
        """``azure.ai.ml.sweep.Normal(...)``."""
        from azure.ai.ml import sweep

        return sweep.Normal(mu=self.mu, sigma=self.sigma)

    def suggest(self, trial: Any, name: str, rng: random.Random) -> Any:
        """One draw from ``rng``: Optuna has no normal distribution (random sampling only, as on Azure ML)."""
        value = rng.gauss(self.mu, self.sigma)
        trial.set_user_attr(name, value)
        return value

    def read_back(self, raw: object) -> Any:
        """A float (a service may give it back as a string)."""
        return _float(raw)


Distribution = Union[choice, uniform, loguniform, quniform, normal]


def _check_bounds(kind: str, low: Any, high: Any) -> None:
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

    def __post_init__(self) -> None:
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

    def _arguments(self) -> dict[str, Any]:
        slack: dict[str, float | None] = ({"slack_factor": self.slack_factor} if self.slack_factor is not None
                                          else {"slack_amount": self.slack_amount})
        return {"evaluation_interval": self.evaluation_interval, "delay_evaluation": self.delay_evaluation, **slack}

    def hyperdrive_policy(self) -> Any:
        """``azureml.train.hyperdrive.BanditPolicy(...)``."""
        from azureml.train import hyperdrive

        return hyperdrive.BanditPolicy(**self._arguments())

    def sweep_policy(self) -> Any:
        """``azure.ai.ml.sweep.BanditPolicy(...)``."""
        from azure.ai.ml.sweep import BanditPolicy

        return BanditPolicy(**self._arguments())

    def evaluates_at(self, interval: int) -> bool:
        """Whether the policy is applied at the ``interval``-th report (1-based)."""
        return interval >= max(self.delay_evaluation, 1) and interval % self.evaluation_interval == 0

    def should_stop(self, value: float, best: float, goal: str) -> bool:
        """Whether a trial reporting ``value`` is behind ``best`` by more than the slack."""
        factor, amount = self.slack_factor, self.slack_amount or 0.0  # exactly one is set (checked when built)
        if goal == "maximize":
            limit = best / (1 + factor) if factor is not None else best - amount
            return value < limit
        limit = best * (1 + factor) if factor is not None else best + amount
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

    ``goal`` is ``maximize`` or ``minimize``; left out (``"auto"``), it follows
    the metric's name (``default_goal``): a loss or an error is minimized, anything
    else (``Accuracy``) maximized, so that a ``Loss`` is never silently maximized.
    ``policy`` defaults to the seed notebook's ``Bandit(slack_factor=0.1,
    evaluation_interval=2)`` (none with ``bayesian`` sampling); pass None for none.

    Example:
        >>> Sweep(primary_metric="Loss").goal
        'minimize'
    """

    space: Mapping[str, Distribution] = field(default_factory=seed_space)
    sampling: str = "random"
    primary_metric: str = "Accuracy"
    goal: str = "auto"
    max_total_runs: int = 20
    max_concurrent_runs: int = 4
    policy: Bandit | None | str = "default"
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.space, Mapping) or not self.space:
            raise ValidationError("space", "a non-empty mapping of hyperparameter name to distribution", self.space)
        object.__setattr__(self, "space", dict(self.space))
        for name, distribution in self.space.items():
            if not isinstance(distribution, (choice, uniform, quniform, normal)):
                raise ValidationError(f"space[{name!r}]", "choice, uniform, loguniform, quniform or normal",
                                      distribution)
        if self.sampling not in SAMPLINGS:
            raise ValidationError("sampling", f"one of {', '.join(SAMPLINGS)}", self.sampling)
        if not isinstance(self.primary_metric, str) or not self.primary_metric.strip():
            raise ValidationError("primary_metric", "the name of a metric the training script logs",
                                  self.primary_metric)
        if self.goal == "auto":
            object.__setattr__(self, "goal", default_goal(self.primary_metric))
        if self.goal not in GOALS:
            raise ValidationError("goal", f"one of {', '.join(GOALS)} (left out: minimize for a metric named like "
                                  "a loss or an error, else maximize)", self.goal)
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

    def check_against(self, hyperparameters: Mapping[str, Any], metrics: tuple[str, ...] | None) -> None:
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
        """How many points a grid sweep has (0 for other samplings); a grid space holds only ``choice``."""
        if self.sampling != "grid":
            return 0
        return math.prod(len(d.values) for d in self.space.values() if isinstance(d, choice))


def _integer_valued(distribution: Distribution) -> bool:
    if isinstance(distribution, choice):
        return all(isinstance(v, int) and not isinstance(v, bool) for v in distribution.values)
    return type(distribution) is quniform and float(distribution.q).is_integer()
