"""``kerasjob runs`` and ``kerasjob models``: read what runs and the registry hold, follow, cancel, alias.

Example:
    $ kerasjob runs list --limit 5
    $ kerasjob runs show RUN_ID -o json
    $ kerasjob runs wait RUN_ID --backend azureml-v2 --workspace-config config.json
    $ kerasjob models show keras-mnist
    $ kerasjob models alias keras-mnist 3
"""

from __future__ import annotations

import argparse
from typing import Any

from ..backends import Backend, JobRun
from .output import how_long, print_json, print_table, when
from .training import quiet_sdk_loggers, workspace_arguments

__all__ = ["alias_model", "cancel_run", "download_model", "list_models", "list_runs", "recover_run", "run_logs",
           "show_model", "show_run", "wait_run"]

RUN_COLUMNS = [("run_id", "RUN ID"), ("name", "NAME"), ("status", "STATUS"), ("started", "STARTED"),
               ("duration", "DURATION"), ("metric", "METRIC"), ("backend", "BACKEND")]


def _backend(args: argparse.Namespace) -> Backend:
    from ..backends import resolve_backend

    backend = resolve_backend(args.backend, **workspace_arguments(args))
    quiet_sdk_loggers(backend)
    return backend


def _attach(args: argparse.Namespace) -> JobRun:
    from ..azure_errors import azure_access

    backend = _backend(args)
    with azure_access():
        return backend.attach(args.run_id)


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    """A row of ``local_runs.list_runs`` as ``runs list`` shows it; a sweep's trials (listed right after it)
    indented under it."""
    value = run.get("primary_metric_value")
    return {**run, "run_id": ("  └ " if run.get("parent_run_id") else "") + run["run_id"],
            "started": when(run.get("start_time")), "duration": how_long(run.get("duration_s")),
            "metric": None if value is None else f"{run['primary_metric']} {value:.4f}"}


def _not_yet_tracked(experiment: str | None, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Local runs whose MLflow run the supervisor has not created yet (the second or so after
    ``submit --no-wait``), as ``local_runs.list_runs`` rows: the MLflow store does not know them yet."""
    import os

    from ..backends.local.files import LAUNCH_FILE, read_run_id, runs_root
    from ..backends.local.run import LocalRun

    root, known = runs_root(), {row["run_id"] for row in listed}
    if not root.is_dir():
        return []
    rows = []
    for folder in root.iterdir():
        if folder.is_symlink() or folder.name in known or not (folder / LAUNCH_FILE).is_file() \
                or read_run_id(folder) is not None:
            continue
        run = LocalRun(folder)
        mlflow_run = run._launch.get("mlflow_run") or {}
        if experiment is not None and mlflow_run.get("experiment") != experiment:
            continue
        started = os.stat(folder / LAUNCH_FILE).st_mtime
        rows.append({"run_id": folder.name, "mlflow_run_id": None, "name": None,
                     "experiment": mlflow_run.get("experiment"), "status": run.status().value,
                     "start_time": int(started * 1000), "duration_s": None, "primary_metric": None,
                     "primary_metric_value": None, "backend": run.backend, "parent_run_id": None,
                     "is_sweep": False})
    return sorted(rows, key=lambda row: -row["start_time"])


def list_runs(args: argparse.Namespace) -> int:
    from ..backends.local import runs as local_runs
    from ..azure_errors import azure_access

    if args.backend == "local":
        runs = local_runs.list_runs(args.experiment, limit=args.limit)
        runs = _not_yet_tracked(args.experiment, runs)[:args.limit] + runs
    else:  # a workspace's kerasjob runs, read through its SDK
        backend = _backend(args)
        with azure_access():
            runs = backend.list_runs(args.experiment, args.limit)
    if args.output == "json":
        print_json(runs)
    else:
        print_table([_run_row(run) for run in runs], RUN_COLUMNS, empty="No runs yet: kerasjob submit starts one.")
    return 0


def show_run(args: argparse.Namespace) -> int:
    from ..azure_errors import azure_access

    backend = _backend(args)
    with azure_access():
        described = backend.describe_run(args.run_id)
    if args.output == "json":
        print_json(described)
        return 0
    for key, value in described.items():
        if isinstance(value, dict):
            print(f"{key}:" + ("" if value else " -"))
            for name, each in sorted(value.items()):
                print(f"  {name:<28} {each:.4f}" if isinstance(each, float) else f"  {name:<28} {each}")
        else:
            if key.endswith("_time") and isinstance(value, int):  # MLflow's epoch milliseconds; -o json keeps them
                value = when(value)
            print(f"{key + ':':<14} {'-' if value is None else value}")
    return 0


def run_logs(args: argparse.Namespace) -> int:
    run = _attach(args)
    if args.follow:
        try:
            for line in run.stream_logs():
                print(line, flush=True)
        except KeyboardInterrupt:  # following never cancels
            raise KeyboardInterrupt(f"stopped following the log; run {run.id} goes on "
                                    f"(kerasjob runs cancel {run.id} stops it)") from None
    else:
        print(run.log_tail(lines=10**9))
    return 0


def wait_run(args: argparse.Namespace) -> int:
    from ..run import finish_attached_run, finish_attached_sweep

    run = _attach(args)
    on_line = None if args.quiet else (lambda line: print(line, flush=True))
    if getattr(run, "is_sweep", False):  # as tune ends: the best trial's model, under the sweep's own rule
        result, best = finish_attached_sweep(run, on_line=on_line)
        value = "" if best.value is None else f" ({best.metric} {best.value:.4f})"
        print(f"Sweep {run.id} {run.status().value}: best trial {best.run.id}{value}. Model {result.model_name!r} "
              f"version {result.model_version} registered{' (champion)' if result.champion else ''}.")
        return 0
    result = finish_attached_run(run, on_line=on_line)
    print(f"Run {run.id} {result.status}. Model {result.model_name!r} version {result.model_version} registered.")
    return 0


def cancel_run(args: argparse.Namespace) -> int:
    run = _attach(args)
    run.cancel()
    print(f"Run {run.id}: {run.status().value}")
    return 0


def recover_run(args: argparse.Namespace) -> int:
    from ..backends.local.run import LocalRun

    run = LocalRun.from_id(args.run_id)
    status = run.recover()
    model = run.registered_model()
    registered = f" Model {model.name!r} version {model.version} registered." if model else ""
    reason = run.reason()
    print(f"Run {run.id}: {status.value}" + (f" ({reason})" if reason and status.value != "completed" else "")
          + "." + registered)
    return 0


def list_models(args: argparse.Namespace) -> int:
    from ..backends.local import runs as local_runs

    models = local_runs.list_models()
    if args.output == "json":
        print_json(models)
    else:
        print_table(models, [("name", "NAME"), ("champion_version", "CHAMPION"), ("latest_version", "LATEST"),
                             ("versions", "VERSIONS")], empty="No registered models yet.")
    return 0


def show_model(args: argparse.Namespace) -> int:
    from ..backends.local import runs as local_runs

    model = local_runs.show_model(args.name, args.version)
    if args.output == "json":
        print_json(model)
        return 0
    print(f"{model['name']}: {len(model['versions'])} version(s), aliases "
          + (", ".join(f"@{alias} -> {version}" for alias, version in sorted(model["aliases"].items())) or "none"))
    print_table([{**version, "aliases": " ".join("@" + a for a in version.get("aliases", [])) or None,
                  "created": when(version.get("created")),
                  "metric": None if version.get("primary_metric_value") is None
                  else f"{version['primary_metric']} {version['primary_metric_value']:.4f}"}
                 for version in model["versions"]],
                [("version", "VERSION"), ("aliases", "ALIASES"), ("metric", "METRIC"), ("run_id", "RUN ID"),
                 ("created", "CREATED")])
    return 0


def download_model(args: argparse.Namespace) -> int:
    from ..backends.local import runs as local_runs

    folder = local_runs.download_registered_model(args.name, args.version, args.destination)
    print(f"Downloaded to {folder}")
    return 0


def alias_model(args: argparse.Namespace) -> int:
    from ..backends.local import runs as local_runs

    local_runs.set_model_alias(args.name, args.version, alias=args.alias)
    print(f"{args.name}@{args.alias} -> version {args.version}")
    return 0

