"""``tune_training()``: one sweep, run locally or as HyperDrive on Azure ML, the best model registered.

The sweep itself is the backend's: ``Backend.sweep(job, sweep, show_output=...)``,
in its package's ``sweep`` module: ``backends.local.sweep`` (an Optuna study over
local runs), ``backends.azureml.sweep`` (HyperDrive, Azure ML v1),
``backends.azureml_v2.sweep`` (``command(...).sweep(...)``). Each ends with
``tuning_results.register_best``, which gives the best trial's model the
``champion`` alias only if it beats the champion on the sweep's metric and goal.
``fixed={"batch_size": 64}`` holds hyperparameters out of the search;
``dry_run=True`` returns the ``SweepPlan`` (``tuning.plan``) and starts nothing.

Example:
    >>> from kerasjob import Sweep, tune_training
    >>> result = tune_training(data="../shared/data/mnist", hyperparameters={"epochs": 3},
    ...                        sweep=Sweep(max_total_runs=6, max_concurrent_runs=2))   # doctest: +SKIP
    >>> result.best.parameters                                                         # doctest: +SKIP
    {'batch_size': 50, 'first_layer_neurons': 300, 'second_layer_neurons': 200, 'learning_rate': 0.0021}
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any, Literal, Mapping, overload

from ..azure_errors import azure_access
from ..backends import Backend, resolve_backend
from ..errors import ValidationError
from ..job import TrainingJob
from ..run import make_job
from ..search_space import Sweep
from ..training.contract import HYPERPARAMETERS, METRICS
from ..tuning_results import Trial, TuningResult

if TYPE_CHECKING:
    from .plan import SweepPlan

__all__ = ["Trial", "TuningResult", "check_builder_sweep", "check_sweep", "fix_hyperparameters", "representative",
           "tune", "tune_training"]

logger = logging.getLogger(__name__)

def check_sweep(job: TrainingJob, sweep: Sweep) -> None:
    """Everything about the sweep that can be refused before a trial starts."""
    if not isinstance(sweep, Sweep):
        raise ValidationError("sweep", "a kerasjob.Sweep", sweep)
    if job.is_model_job:
        metric = job.primary_metric[0]
        if sweep.primary_metric.startswith("val_") and not metric.startswith("val_"):
            raise ValidationError("primary_metric", "a metric logged without validation data (give validation_data "
                                  "or validation_split for val_ metrics)", sweep.primary_metric)
        return
    if job.uses_packaged_script:
        sweep.check_against(HYPERPARAMETERS, METRICS)
    else:
        sweep.check_against({}, None)  # another script declares nothing to check against
    for name in sweep.space:
        if job.uses_packaged_script and name == "epochs":
            raise ValidationError("space", "hyperparameters other than epochs (Bandit compares trials per epoch)",
                                  name)


def fix_hyperparameters(job: TrainingJob, sweep: Sweep, fixed: Mapping[str, Any] | None
                        ) -> tuple[TrainingJob, Sweep]:
    """``job`` with the ``fixed`` values set and ``sweep`` without them: a fixed hyperparameter is not swept.

    Example:
        >>> job, sweep = fix_hyperparameters(TrainingJob(), Sweep(), {"batch_size": 64})
        >>> job.hyperparameters["batch_size"], "batch_size" in sweep.space
        (64, False)
    """
    if not fixed:
        return job, sweep
    if not isinstance(fixed, Mapping):
        raise ValidationError("fixed", "a mapping of hyperparameter name to value", fixed)
    job = job.with_changes(hyperparameters={**job.hyperparameters, **fixed})  # validated as any hyperparameter
    space = {name: distribution for name, distribution in sweep.space.items() if name not in fixed}
    if not space:
        raise ValidationError("fixed", "hyperparameters that leave at least one to sweep", dict(fixed),
                              hint=f"The sweep's space is {', '.join(sweep.space)}.")
    return job, dataclasses.replace(sweep, space=space)


@overload
def tune_training(job: TrainingJob | None = ..., sweep: Sweep | None = ..., *, dry_run: Literal[False] = ...,
                  **options: Any) -> TuningResult: ...
@overload
def tune_training(job: TrainingJob | None = ..., sweep: Sweep | None = ..., *, dry_run: Literal[True],
                  **options: Any) -> SweepPlan: ...
def tune_training(job: TrainingJob | None = None, sweep: Sweep | None = None, *,
                  backend: str | Backend | None = None, workspace: Any = None, ml_client: Any = None,
                  workspace_config: str | os.PathLike[str] | None = None, subscription_id: str | None = None,
                  resource_group: str | None = None, workspace_name: str | None = None, auth: str = "default",
                  credential: Any = None, show_output: bool = True, fixed: Mapping[str, Any] | None = None,
                  dry_run: bool = False, **job_fields: Any) -> TuningResult | SweepPlan:
    """Search hyperparameters for ``job``; register the best trial's model under ``job.model_name``.

    The best model becomes the ``champion`` only if it beats the current champion on
    ``sweep.primary_metric`` (``sweep.goal``): a short sweep never dethrones a better model.

    Args:
        job, job_fields: the job to tune, as for ``submit_training`` (``experiment=``,
            ``model_name=``, ...); the swept hyperparameters replace its own, the others (e.g. ``epochs``) stay.
        sweep: a ``Sweep`` (default: the seed notebook's: 20 random trials, 4 at once, Bandit 0.1 / 2).
        backend: ``local`` (an Optuna study over local runs), ``azureml`` (HyperDrive),
            ``azureml-v2`` (``command(...).sweep(...)``).
        show_output: print one line per trial event; in a Jupyter notebook, one display updated in place
            instead (``kerasjob.progress``: each trial's state, epochs and metric, the log folded).
        fixed: hyperparameter values to hold: set on the job and left out of the sweep's space.
        dry_run: return the ``SweepPlan`` without contacting anything.

    Raises:
        ValidationError: a bad job or sweep (no trial was started).
        TrainingFailed: no trial completed (nothing registered).

    Example:
        >>> plan = tune_training(fixed={"batch_size": 64}, dry_run=True, data=None)
        >>> sorted(plan.space), plan.fixed
        (['first_layer_neurons', 'learning_rate', 'second_layer_neurons'], {'batch_size': 64})
    """
    job = make_job(job, **job_fields)
    sweep = sweep if sweep is not None else Sweep()
    if not isinstance(sweep, Sweep):
        raise ValidationError("sweep", "a kerasjob.Sweep", sweep)
    job, sweep = fix_hyperparameters(job, sweep, fixed)
    check_sweep(job, sweep)
    chosen = resolve_backend(backend, workspace=workspace, ml_client=ml_client, workspace_config=workspace_config,
                             subscription_id=subscription_id, resource_group=resource_group,
                             workspace_name=workspace_name, auth=auth, credential=credential)
    chosen.check(job)
    if dry_run:
        from .plan import build_sweep_plan

        return build_sweep_plan(job, sweep, chosen, fixed)
    from ..progress import live_progress

    with azure_access(), live_progress(f"Sweep of {sweep.max_total_runs} trials", enabled=show_output):
        return chosen.sweep(job, sweep, show_output=show_output)


def representative(distribution: Any) -> Any:
    """A value ``distribution`` may draw, for calling a builder once before any trial (the first choice, the middle
    of a range, the mean).

    Example:
        >>> from kerasjob import choice, loguniform
        >>> representative(choice(64, 128)), round(representative(loguniform(-8, -4)), 4)
        (64, 0.0025)
    """
    import math

    from ..search_space import choice, loguniform, normal, quniform, uniform

    if isinstance(distribution, choice):
        return distribution.values[0]
    if isinstance(distribution, loguniform):
        return math.exp((distribution.min_value + distribution.max_value) / 2)
    if isinstance(distribution, quniform):
        value = round((distribution.min_value + distribution.max_value) / 2 / distribution.q) * distribution.q
        return int(value) if float(distribution.q).is_integer() else value
    if isinstance(distribution, uniform):
        return (distribution.min_value + distribution.max_value) / 2
    if isinstance(distribution, normal):
        return distribution.mu
    raise ValidationError("space", "choice, uniform, loguniform, quniform or normal", distribution)


class _Reads(dict):
    """The hyperparameters a builder receives, noting which names it reads."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, name: Any) -> Any:
        self.read.add(name)
        return super().__getitem__(name)

    def get(self, name: Any, default: Any = None) -> Any:
        self.read.add(name)
        return super().get(name, default)


def check_builder_sweep(builder: Any, sweep: Sweep, fixed: Mapping[str, Any], validation: bool) -> None:
    """The preflight of a builder sweep, before any trial: the builder is called once with a value of each swept
    name; a name it never reads, a builder that does not return a compiled model, or a primary metric the model
    does not compile (``loss``, its compiled metrics, ``val_`` ones with validation data) is refused."""
    from ..model_package import build_from, summarize

    values = _Reads({**fixed, **{name: representative(d) for name, d in sweep.space.items()}})
    summary = summarize(build_from(builder, values))
    unread = [name for name in sweep.space if name not in values.read]
    if unread:
        raise ValidationError("space", "names the builder reads from its hyperparameters (hyperparameters['units'] "
                              "or .get('units'))", unread[0],
                              hint=f"Called with {dict(values)} it read {', '.join(sorted(values.read)) or 'none'}.")
    logged = ["loss", *summary.metrics]
    metrics = logged + ([f"val_{name}" for name in logged] if validation else [])
    if sweep.primary_metric not in metrics:
        raise ValidationError("primary_metric", f"a metric the model logs ({', '.join(metrics)})", sweep.primary_metric,
                              hint="val_ metrics need validation_data or validation_split." if
                              sweep.primary_metric.startswith("val_") and not validation else "")


def tune(model: Any, x: Any = None, y: Any = None, *, space: Mapping[str, Any] | None = None,
         sweep: Sweep | None = None, batch_size: int = 32, epochs: int = 1, validation_data: Any = None,
         validation_split: float = 0.0, shuffle: bool = True, class_weight: Mapping[Any, float] | None = None,
         sample_weight: Any = None, seed: int | None = None, fixed: Mapping[str, Any] | None = None,
         **options: Any) -> Any:
    """Sweep a builder ``fn(hyperparameters) -> compiled keras.Model`` over ``space``; register the best trial.

    ``x``, ``y`` and the fit options are ``kerasjob.fit``'s; ``space`` (or ``sweep.space``) names what the builder
    reads; ``sweep.primary_metric`` is any metric the compiled model logs (``val_accuracy``, ``loss``, ...).
    Runs locally (Optuna) or on Azure ML (``backend=``, ``ml_client=``, ...), as ``tune_training``.

    Example:
        >>> result = kerasjob.tune(build_model, x, y, space={"units": choice(64, 128),
        ...                        "learning_rate": loguniform(-8, -3)}, epochs=2, validation_data=(xv, yv),
        ...                        sweep=Sweep(primary_metric="val_accuracy", max_total_runs=4))  # doctest: +SKIP
        >>> result.best.parameters                                                               # doctest: +SKIP
        {'units': 128, 'learning_rate': 0.0019}
    """
    from ..fit import fit_hyperparameters

    if not callable(model) or hasattr(model, "fit"):
        raise ValidationError("model", "a builder fn(hyperparameters: dict) -> compiled keras.Model (a sweep builds "
                              "one model per trial)", model)
    if sweep is None:
        sweep = Sweep(space=dict(space or {}), primary_metric="val_loss" if validation_data is not None
                      or validation_split else "loss", policy=None)
    elif not isinstance(sweep, Sweep):
        raise ValidationError("sweep", "a kerasjob.Sweep", sweep)
    elif space is not None:
        sweep = dataclasses.replace(sweep, space=dict(space))
    held = dict(fixed or {})
    check_builder_sweep(model, sweep, held, validation=validation_data is not None or bool(validation_split))
    hyperparameters = {**held, **{name: representative(d) for name, d in sweep.space.items()},
                       **fit_hyperparameters(batch_size=batch_size, epochs=epochs, validation_split=validation_split,
                                             shuffle=shuffle, class_weight=class_weight, seed=seed)}
    if "job" in options:
        raise ValidationError("job", "no TrainingJob (tune builds its own from the builder and data)", options["job"])
    job = make_job(None, model=model, x=x, y=y, validation_data=validation_data, sample_weight=sample_weight,
                   hyperparameters=hyperparameters, **{k: v for k, v in options.items() if k in _JOB_FIELDS})
    return tune_training(job, sweep, **{k: v for k, v in options.items() if k not in _JOB_FIELDS})


_JOB_FIELDS = {each.name for each in dataclasses.fields(TrainingJob)}
