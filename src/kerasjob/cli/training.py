"""``kerasjob submit`` and ``kerasjob tune``: flags -> a ``TrainingJob`` -> the same calls as the API.

Example:
    $ kerasjob submit --data-folder ../shared/data/mnist --epochs 2
    $ kerasjob submit --source-dir ./my_job --entry-script train.py --data-folder ./data -- --my-flag 3
    $ kerasjob tune --epochs 3 --set batch_size=100 --goal maximize --dry-run
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..backends import Backend, JobRun
from ..errors import ValidationError
from ..training.contract import HYPERPARAMETERS, OPTIONS
from .output import print_json

__all__ = ["fit", "quiet_loggers", "quiet_sdk_loggers", "run_document", "submit", "tune", "workspace_arguments"]


def workspace_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in ("workspace_config", "subscription_id", "resource_group",
                                                   "workspace_name", "auth")}


def quiet_sdk_loggers(backend: Backend) -> None:
    """Some SDKs give their loggers an INFO handler on stderr at import (azure-ai-ml: "Found the config file
    in: ..."); the command keeps stderr for kerasjob's own words, so those loggers show warnings only."""
    quiet_loggers(backend.chatty_loggers)


def quiet_loggers(packages: tuple[str, ...]) -> None:
    """The loggers of ``packages`` (imported here: the import creates them) show warnings only; a package that
    is not installed is skipped."""
    import importlib
    import logging

    for package in packages:
        try:
            importlib.import_module(package)  # the import creates the loggers
        except ImportError:
            continue
        for name in list(logging.root.manager.loggerDict):
            if name.startswith(package):
                logging.getLogger(name).setLevel(logging.WARNING)


def _job_changes(args: argparse.Namespace, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The ``TrainingJob`` fields that the flags set; an unset flag keeps the job's default."""
    from ..job import ComputeConfig, TensorflowDistribution

    changes: dict[str, Any] = {}
    for field, value in (("source_dir", args.source_dir), ("entry_script", args.entry_script),
                         ("data", args.data_folder), ("experiment", args.experiment),
                         ("model_name", args.model_name), ("timeout", args.timeout),
                         ("keras_backend", args.keras_backend), ("allow_secrets", args.allow_secrets),
                         ("allow_symlinks", args.allow_symlinks), ("max_restarts", args.max_restarts)):
        if value is not None:
            changes[field] = value
    if args.source_dir is not None and args.entry_script is None:
        changes["entry_script"] = "train.py"
    if args.script_seed is not None:
        hyperparameters["seed"] = args.script_seed
    if args.mixed_precision:
        hyperparameters["mixed_precision"] = True
    changes["hyperparameters"] = hyperparameters
    compute = {name: value for name, value in (("name", args.compute), ("vm_size", args.vm_size),
                                               ("max_nodes", args.max_nodes)) if value is not None}
    if compute:
        changes["compute"] = ComputeConfig(**compute)
    if getattr(args, "workers", None) is not None:
        changes["distribution"] = TensorflowDistribution(worker_count=args.workers)
    if getattr(args, "script_arguments", None):
        changes["arguments"] = tuple(args.script_arguments)
    return changes


def run_document(run: JobRun, workers: int, result: Any = None) -> dict[str, Any]:
    """One shape for ``--json`` whether the command waited (``result``, a ``TrainingResult``) or not: the keys
    of ``TrainingResult.to_dict``, with no metrics and no model yet for a run still going."""
    if result is not None:
        return dict(result.to_dict())
    return {"run_id": run.id, "status": run.status().value, "metrics": {}, "model": None, "backend": run.backend,
            "workers": workers, "url": run.url}


def _print_plan(plan: Any, as_json: bool) -> int:
    if as_json:
        print_json(plan.to_dict())  # one line, as every --json document
    else:
        print(plan.describe())
    return 0


def submit(args: argparse.Namespace) -> int:
    from ..azure_errors import azure_access
    from ..backends import resolve_backend
    from ..plan import build_plan
    from ..run import finish_training, make_job

    hyperparameters = {name: getattr(args, name) for name in HYPERPARAMETERS if getattr(args, name) is not None}
    return _run(args, make_job(None, **_job_changes(args, hyperparameters)))


def fit(args: argparse.Namespace) -> int:
    """``kerasjob fit MODEL.keras DATA.npz --epochs N --batch-size N [--validation-data FILE]``: ``kerasjob.fit``."""
    from ..fit import fit_hyperparameters
    from ..run import make_job

    options = fit_hyperparameters(batch_size=args.batch_size, epochs=args.epochs,
                                  validation_split=args.validation_split, shuffle=not args.no_shuffle)
    changes = _job_changes(args, options)
    changes.update(model=args.model, x=args.data, validation_data=args.validation_data)
    return _run(args, make_job(None, **changes))


def _run(args: argparse.Namespace, job: Any) -> int:
    """What ``submit`` and ``fit`` do with their job: the plan, or the run (waited for unless --no-wait)."""
    from ..azure_errors import azure_access
    from ..backends import resolve_backend
    from ..plan import build_plan
    from ..run import finish_training

    backend = resolve_backend(args.backend, **workspace_arguments(args))
    backend.check(job)
    if args.dry_run:
        return _print_plan(build_plan(job, backend), args.json)
    quiet_sdk_loggers(backend)  # after the dry run: it imports the SDK
    with azure_access():
        run = backend.submit(job)
    if args.no_wait:
        if args.json:
            print_json(run_document(run, job.worker_count))
        else:
            print(f"Submitted run {run.id} ({run.url}). It registers its model when it completes.")
            print(f"Follow it: kerasjob runs wait {run.id}" + ("" if run.backend == "local"
                                                                 else f" --backend {run.backend}"))
        return 0
    log_stream = sys.stderr if args.json else sys.stdout
    on_line = None if args.quiet else (lambda line: print(line, file=log_stream, flush=True))
    result = finish_training(run, job, on_line=on_line)
    if args.json:
        print_json(run_document(run, job.worker_count, result))
        return 0
    metric = job.primary_metric[0]
    value = result.metrics.get(metric)
    print(f"\nRun {result.run_id} {result.status}." + ("" if value is None else f" {metric[0].upper() + metric[1:]}"
                                                                               f": {value:.4f}"))
    print(f"Model {result.model_name!r} version {result.model_version} registered."
          + (f" Trained by {result.workers} workers." if result.workers > 1 else ""))
    for line in run.next_steps(result.model_name, result.model_version):
        print(line)
    return 0


def _fixed_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """``["batch_size=100", "seed=3"]`` -> ``{"batch_size": 100, "seed": 3}``, typed as the packaged script
    declares its flags (other names: a number where the text is one)."""
    fixed: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name:
            raise ValidationError("hyperparameters", "NAME=VALUE", pair)
        spec, option = HYPERPARAMETERS.get(name), OPTIONS.get(name)
        try:
            fixed[name] = (spec.type(text) if spec is not None else option.parse(text) if option is not None
                           else _number_or_text(text))
        except ValueError:
            expected = "a number" if spec is not None and spec.type is float else (
                "true or false" if option is not None and option.type is bool else "an integer")
            raise ValidationError(f"hyperparameters[{name!r}]", expected, text) from None
    return fixed


def _number_or_text(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def tune(args: argparse.Namespace) -> int:
    from ..backends import resolve_backend
    from ..run import make_job
    from ..search_space import Sweep
    from ..tuning import tune_training

    fixed = _fixed_hyperparameters(args.fixed)
    job = make_job(None, **_job_changes(args, {} if args.epochs is None else {"epochs": args.epochs}))
    sweep_options: dict[str, Any] = {"sampling": args.sampling, "primary_metric": args.primary_metric,
                                     "max_total_runs": args.max_total_runs,
                                     "max_concurrent_runs": args.max_concurrent_runs, "seed": args.seed}
    if args.max_concurrent_runs is None:  # the default never refuses a total the user typed
        sweep_options["max_concurrent_runs"] = min(Sweep.max_concurrent_runs, args.max_total_runs)
    if args.goal is not None:
        sweep_options["goal"] = args.goal
    sweep = Sweep(**sweep_options)
    backend = resolve_backend(args.backend, **workspace_arguments(args))
    if args.dry_run:
        return _print_plan(tune_training(job, sweep, backend=backend, fixed=fixed, dry_run=True), args.json)
    quiet_sdk_loggers(backend)
    result = tune_training(job, sweep, backend=backend, fixed=fixed, show_output=not args.quiet and not args.json)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"\nSweep {result.sweep_run_id}: {len(result.trials)} trials")
    for trial in result.trials:
        metric = "" if trial.metric is None else f"{trial.metric:.4f}"
        print(f"  #{trial.number:<3} {trial.state:<17} {result.primary_metric} {metric:<7} {trial.parameters}")
    print(f"Best: trial #{result.best.number} (run {result.best.run_id}), {result.primary_metric} "
          f"{result.best.metric:.4f}")
    print(f"Model {result.model_name!r} version {result.model_version} registered.")
    return 0
