"""The registry keeps the best model on top: the ``champion`` alias and the one rule that moves it.

A newly registered version takes ``champion`` only when its primary metric beats
the current champion's (the metric and its goal: ``Final test accuracy``,
maximized, for ``submit_training``; the sweep's metric and goal for
``tune_training``). A tie keeps the old champion; a champion with no recorded
value of that metric is kept too (nothing says the newcomer is better); with no
champion yet, the new version takes the alias. Each version records the metric
values it was judged by as tags (see ``registration_tags``).

Every registry offers the same small interface, ``ModelRegistry``: MLflow's
(local runs) moves a real alias; Azure ML's v1 and v2 registries, which have no
aliases, carry a tag ``champion=true`` on one version at a time.

Example:
    >>> SUBMIT_CRITERION.prefers(0.97, 0.96)
    True
    >>> Criterion("Loss", "minimize").prefers(0.31, 0.31)   # a tie keeps the old champion
    False
"""

from __future__ import annotations

import abc
import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, ContextManager, Mapping

from .backends.base import ModelVersion
from .errors import ValidationError
from .search_space import GOALS

__all__ = ["ALIAS_TAG_VALUE", "CHAMPION", "RUN_ID_TAG", "SUBMIT_CRITERION", "Criterion", "ModelRegistry", "RegisteredVersion",
           "TaggedAliasRegistry", "check_alias", "metric_tags", "successor", "tag_aliases"]

#: The alias the best version holds; ``predict``, ``deploy_model`` and ``models download`` default to it.
CHAMPION = "champion"
#: On a registry without aliases (Azure ML), the version holding alias ``A`` carries the tag ``A=true``.
ALIAS_TAG_VALUE = "true"
#: Every version kerasjob registers carries the id of the run it came from (``JobRun.id``) in this tag.
RUN_ID_TAG = "run_id"

# MLflow's own rules for alias names (mlflow/utils/validation.py: _validate_model_alias_name and
# _validate_model_alias_name_reserved): word characters and '-', at most 255, not "latest", not "v<digits>".
_ALIAS = re.compile(r"^[\w\-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^[vV]\d+$")


def check_alias(alias: object) -> str:
    """``alias`` if MLflow would take it as a model alias, else ``ValidationError``.

    Example:
        >>> check_alias("v2")
        Traceback (most recent call last):
        ...
        kerasjob.errors.ValidationError: Invalid `alias`: expected 1-255 letters, digits, '_' or '-', not 'latest' and not 'v' followed by digits (MLflow reserves those). Received: alias='v2'
    """
    expected = "1-255 letters, digits, '_' or '-', not 'latest' and not 'v' followed by digits (MLflow reserves those)"
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "latest" \
            or _RESERVED_ALIAS.match(alias):
        raise ValidationError("alias", expected, alias)
    return alias


def _rounded(value: object) -> float | None:
    """A metric value as a tag keeps it (6 significant digits), so that a value compares equal to its tag."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return float(f"{number:.6g}") if math.isfinite(number) else None


@dataclass(frozen=True)
class Criterion:
    """What "better" means for a registered model: a metric and whether to maximize or minimize it."""

    metric: str
    goal: str = "maximize"

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValidationError("primary_metric", "a metric name", self.metric)
        if self.goal not in GOALS:
            raise ValidationError("goal", f"one of {', '.join(GOALS)}", self.goal)

    def prefers(self, candidate: object, current: object) -> bool:
        """Whether ``candidate`` strictly beats ``current`` (an unknown value never beats, nor is beaten)."""
        new, old = _rounded(candidate), _rounded(current)
        if new is None or old is None:
            return False
        return new > old if self.goal == "maximize" else new < old

    def crowns(self, candidate: object, champion: RegisteredVersion | None) -> bool:
        """Whether a new version whose metric is ``candidate`` takes the alias from ``champion`` (None: no champion)."""
        if champion is None:
            return True
        return self.prefers(candidate, champion.tags.get(self.metric))


#: ``submit_training``'s rule: the final test accuracy, the higher the better.
SUBMIT_CRITERION = Criterion("Final test accuracy", "maximize")


def successor(versions: list[RegisteredVersion], removed: RegisteredVersion) -> RegisteredVersion | None:
    """Who takes the champion alias when ``removed`` (its holder) is deleted: the best of the other versions by
    the criterion ``removed`` was judged by (its ``primary_metric`` and ``goal`` tags), the newest among equals;
    None when no other version has a value of that metric (the alias then goes with it).

    Example:
        >>> tagged = lambda v, acc: RegisteredVersion("m", v, tags={"Final test accuracy": acc})
        >>> successor([tagged("1", "0.9"), tagged("2", "0.95"), tagged("3", "0.97")], tagged("3", "0.97")).version
        '2'
    """
    goal = removed.tags.get("goal", SUBMIT_CRITERION.goal)
    criterion = Criterion(removed.tags.get("primary_metric", SUBMIT_CRITERION.metric),
                          goal if goal in GOALS else SUBMIT_CRITERION.goal)
    best: RegisteredVersion | None = None
    for each in versions:  # oldest first: a later version at least as good wins
        if each.version == removed.version or _rounded(each.tags.get(criterion.metric)) is None:
            continue
        if best is None or not criterion.prefers(best.tags.get(criterion.metric), each.tags.get(criterion.metric)):
            best = each
    return best


def metric_tags(metrics: Mapping[str, Any], criterion: Criterion) -> dict[str, str]:
    """The tags that let a later version be compared with this one: every numeric metric's last value
    (6 significant digits) and the criterion it was judged by (``primary_metric``, ``goal``)."""
    tags = {name: f"{value:.6g}" for name, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}
    return {**tags, "primary_metric": criterion.metric, "goal": criterion.goal}


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model, as any registry describes it."""

    name: str
    version: str
    run_id: str | None = None
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created: int | None = None  # milliseconds since the epoch

    @property
    def model_version(self) -> ModelVersion:
        return ModelVersion(name=self.name, version=self.version, source=self.source)


class ModelRegistry(abc.ABC):
    """A model registry as the champion rule sees it: its versions, and an alias to move.

    Subclasses implement ``versions`` and ``set_alias``; the rest has plain defaults.
    """

    @abc.abstractmethod
    def versions(self, name: str) -> list[RegisteredVersion]:
        """Every version of model ``name``, oldest first (none when there is no such model)."""

    @abc.abstractmethod
    def set_alias(self, name: str, version: str, alias: str = CHAMPION) -> None:
        """Give ``alias`` to version ``version`` of ``name``, taking it from the version that held it."""

    def registered_from(self, name: str, run_id: str) -> RegisteredVersion | None:
        """The version of ``name`` that run ``run_id`` registered, if any (registration is once per run): by the
        ``RUN_ID_TAG`` kerasjob sets, or by the run the registry itself links the version to."""
        return next((each for each in reversed(self.versions(name))
                     if run_id in (each.tags.get(RUN_ID_TAG), each.run_id)), None)

    def holder(self, name: str, alias: str = CHAMPION) -> RegisteredVersion | None:
        """The version of ``name`` holding ``alias``, if any."""
        return next((each for each in self.versions(name) if alias in each.aliases), None)

    def birth_tags(self, alias: str = CHAMPION) -> dict[str, str]:
        """Tags a version is registered with when it will hold ``alias`` (a tag-based registry's alias)."""
        return {}

    def lock(self) -> ContextManager[Any]:
        """Held while one run's model is looked up, registered and judged (a no-op by default)."""
        return contextlib.nullcontext()

    def model_uri(self, name: str, version: str) -> tuple[str, str] | None:
        """``(model URI, tracking URI)`` that MLflow loads the version from, or None: download it from its run."""
        return None


def tag_aliases(tags: Mapping[str, str]) -> tuple[str, ...]:
    """The aliases a version holds on a registry without aliases: its tags ``ALIAS=true`` (not hyperparameters).

    Example:
        >>> tag_aliases({"champion": "true", "hp.shuffle": "true", "run_id": "r1"})
        ('champion',)
    """
    return tuple(sorted(key for key, value in tags.items() if value == ALIAS_TAG_VALUE and not key.startswith("hp.")))


class TaggedAliasRegistry(ModelRegistry):
    """A registry without aliases (Azure ML v1, v2): the version holding alias ``A`` carries the tag ``A=true``.

    A version that will hold it is registered with the tag (``birth_tags``); ``set_alias``
    then takes the tag off whichever other version carried it. Subclasses list the SDK's
    model entities and change one entity's tags.
    """

    @abc.abstractmethod
    def entities(self, name: str) -> list[tuple[RegisteredVersion, Any]]:
        """Every version of ``name``, oldest first, each with the SDK's entity for it."""

    @abc.abstractmethod
    def retag(self, entity: Any, tag: str, *, add: bool) -> None:
        """Add the tag ``tag=true`` to the SDK model ``entity``, or remove ``tag`` from it."""

    def versions(self, name: str) -> list[RegisteredVersion]:
        return [version for version, _ in self.entities(name)]

    def birth_tags(self, alias: str = CHAMPION) -> dict[str, str]:
        return {alias: ALIAS_TAG_VALUE}

    def set_alias(self, name: str, version: str, alias: str = CHAMPION) -> None:
        check_alias(alias)
        for each, entity in self.entities(name):
            holds = each.tags.get(alias) == ALIAS_TAG_VALUE
            if (each.version == str(version)) != holds:
                self.retag(entity, alias, add=not holds)
