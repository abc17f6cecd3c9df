"""The ``kerasjob`` command: a thin layer over the functions the API uses.

Exit codes: 0 success; 1 the run failed; 2 bad input or Azure refused the login, workspace or permission,
nothing started; 130 interrupted (the run was canceled).

Example:
    $ kerasjob submit --data-folder ../shared/data/mnist --epochs 2 --json
    $ kerasjob runs list
    $ kerasjob models download keras-mnist ./model
    $ kerasjob predict models:/keras-mnist/1 ../shared/data/mnist/t10k-images-idx3-ubyte.gz --labels ...
    $ kerasjob tune --data-folder ../shared/data/mnist --epochs 3 --max-total-runs 6 --max-concurrent-runs 2
    $ kerasjob submit --backend azureml-v2 --subscription-id S --resource-group RG --workspace-name WS --auth cli --no-wait
    $ kerasjob runs logs JOB_NAME --follow --backend azureml-v2 --workspace-config config.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from .backends import BACKENDS, Backend, JobRun
from .errors import AzureAccessError, BackendUnavailable, KerasJobError, TrainingFailed, ValidationError
from .training.contract import HYPERPARAMETERS, flag_for

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _error(message: str) -> None:
    print(f"kerasjob: {message}", file=sys.stderr)


def _quiet_sdk_loggers(backend: Backend) -> None:
    """Some SDKs give their loggers an INFO handler on stderr at import (azure-ai-ml: "Found the config file
    in: ..."); the CLI keeps stderr for kerasjob's own words, so those loggers show warnings only."""
    import importlib
    import logging

    for package in backend.chatty_loggers:
        importlib.import_module(package)  # the import creates the loggers
        for name in list(logging.root.manager.loggerDict):
            if name.startswith(package):
                logging.getLogger(name).setLevel(logging.WARNING)


BACKEND_CHOICES = sorted(BACKENDS)


def _add_workspace_flags(parser: argparse.ArgumentParser) -> None:
    """The Azure ML workspace, as ``az ml`` takes it: a config.json, or the three ids, and a login method."""
    from .workspace import AUTH_CHOICES

    group = parser.add_argument_group("Azure ML workspace (default: config.json searched upward)")
    group.add_argument("--workspace-config", help="the workspace's config.json (or its folder)")
    group.add_argument("--subscription-id", help="the workspace's subscription (with the two below)")
    group.add_argument("--resource-group", help="the workspace's resource group")
    group.add_argument("--workspace-name", help="the workspace's name")
    group.add_argument("--auth", choices=AUTH_CHOICES, default="default",
                       help="how to log in: default (the SDK's chain), cli (az login), interactive, "
                            "service-principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or "
                            "managed-identity")


def _print_listing(rows: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> int:
    """``list`` commands: one JSON array with ``--json``, else one line per row."""
    if as_json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(line(row))
    return EXIT_OK


def _workspace_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in ("workspace_config", "subscription_id", "resource_group",
                                                   "workspace_name", "auth")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kerasjob", description="Run a Keras training job locally or on Azure ML.")
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="run the training job (the seed's MNIST job by default)")
    submit.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                        help="where to run (default: local, or azureml when a workspace is named)")
    submit.add_argument("--data-folder", help="folder with the four MNIST IDX files (default: download MNIST)")
    for name, spec in HYPERPARAMETERS.items():
        submit.add_argument(flag_for(name), dest=name, type=spec.type, default=None,
                            help=f"{spec.help} (default {spec.default})")
    submit.add_argument("--experiment", help="experiment name (default keras-mnist)")
    submit.add_argument("--model-name", help="registered model name (default keras-mnist)")
    submit.add_argument("--compute", help="Azure ML cluster name (default gpu-cluster)")
    submit.add_argument("--timeout", type=float, help="seconds before the run is canceled")
    submit.add_argument("--workers", type=int, help="train data-parallel on N workers (N nodes on Azure ML, "
                        "N processes on loopback locally); --batch-size is per worker")
    submit.add_argument("--no-wait", action="store_true", help="print the run id and return at once")
    submit.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    submit.add_argument("--quiet", action="store_true", help="do not stream the run's output")
    submit.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _add_workspace_flags(submit)

    runs = commands.add_parser("runs", help="local runs; show, logs and cancel also reach Azure ML runs by id "
                                            "(--backend azureml|azureml-v2)").add_subparsers(dest="action",
                                                                                            required=True)
    runs_list = runs.add_parser("list", help="list local runs, newest first")
    runs_list.add_argument("--experiment")
    runs_list.add_argument("--json", action="store_true")
    for action, text in (("show", "a run's parameters and metrics"), ("logs", "a run's driver log"),
                         ("cancel", "cancel a running run")):
        command = runs.add_parser(action, help=text)
        command.add_argument("run_id")
        if action == "logs":
            command.add_argument("--follow", action="store_true", help="keep printing until the run ends")
        command.add_argument("--backend", choices=BACKEND_CHOICES, default="local",
                             help="where the run lives (default local)")
        _add_workspace_flags(command)

    models = commands.add_parser("models", help="registered models").add_subparsers(dest="action", required=True)
    models_list = models.add_parser("list", help="list registered models")
    models_list.add_argument("--json", action="store_true")
    download = models.add_parser("download", help="download a registered model's files")
    download.add_argument("name")
    download.add_argument("destination")
    download.add_argument("--version", help="default: the latest")

    predict = commands.add_parser("predict", help="the digits a trained model sees in PNG files or an IDX file")
    predict.add_argument("model", help="models:/NAME/VERSION, NAME:VERSION (local registry) or a model folder")
    predict.add_argument("files", nargs="+", help="28 x 28 PNG files, or one IDX images file")
    predict.add_argument("--labels", help="an IDX labels file: also print the accuracy")
    predict.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    deploy = commands.add_parser("deploy", help="serve a trained model at a named endpoint (MLflow's scoring "
                                                "server on 127.0.0.1)")
    deploy.add_argument("model", help="models:/NAME/VERSION, NAME:VERSION (local registry) or a model folder")
    deploy.add_argument("--endpoint", required=True, help="the endpoint's name (3-32 letters, digits or '-')")
    deploy.add_argument("--backend", choices=["local"], default="local", help="where to serve (default local)")
    deploy.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    endpoints = commands.add_parser("endpoints", help="deployed endpoints").add_subparsers(dest="action",
                                                                                          required=True)
    endpoints_list = endpoints.add_parser("list", help="the deployed endpoints")
    endpoints_list.add_argument("--json", action="store_true")
    invoke = endpoints.add_parser("invoke", help="the digits an endpoint sees in PNG files or an IDX file")
    invoke.add_argument("name")
    invoke.add_argument("files", nargs="+")
    invoke.add_argument("--json", action="store_true")
    for action, text in (("logs", "the server's log"), ("delete", "stop the server and forget the endpoint")):
        endpoints.add_parser(action, help=text).add_argument("name")

    tune = commands.add_parser("tune", help="search hyperparameters (the seed notebook's sweep by default) "
                                            "and register the best model")
    tune.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                      help="local: an Optuna study over local runs; azureml: HyperDrive; azureml-v2: a sweep job "
                           "(default: local, or azureml when a workspace is named)")
    tune.add_argument("--data-folder", help="folder with the four MNIST IDX files (default: download MNIST)")
    tune.add_argument("--epochs", type=int, help="epochs per trial (default 20)")
    tune.add_argument("--max-total-runs", type=int, default=20)
    tune.add_argument("--max-concurrent-runs", type=int, default=4)
    tune.add_argument("--sampling", default="random", help="random, grid or bayesian (default random)")
    tune.add_argument("--primary-metric", default="Accuracy", help="the metric to maximize (default Accuracy)")
    tune.add_argument("--seed", type=int, help="seed of the sampler, for a repeatable sweep")
    tune.add_argument("--quiet", action="store_true", help="do not print trial events")
    tune.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _add_workspace_flags(tune)
    return parser


def _tune(args: argparse.Namespace) -> int:
    from .backends import resolve_backend
    from .run import make_job
    from .search_space import Sweep
    from .tuning import tune_training

    changes = {"hyperparameters": {"epochs": args.epochs} if args.epochs is not None else {}}
    if args.data_folder is not None:
        changes["data"] = args.data_folder
    job = make_job(None, **changes)
    sweep = Sweep(sampling=args.sampling, primary_metric=args.primary_metric, max_total_runs=args.max_total_runs,
                  max_concurrent_runs=args.max_concurrent_runs, seed=args.seed)
    show = not args.quiet and not args.json
    backend = resolve_backend(args.backend, **_workspace_arguments(args))
    _quiet_sdk_loggers(backend)
    result = tune_training(job, sweep, backend=backend, show_output=show)
    if args.json:
        print(json.dumps(result.to_dict()))
        return EXIT_OK
    print(f"\nSweep {result.sweep_run_id}: {len(result.trials)} trials")
    for trial in result.trials:
        metric = "" if trial.metric is None else f"{trial.metric:.4f}"
        print(f"  #{trial.number:<3} {trial.state:<17} {result.primary_metric} {metric:<7} {trial.parameters}")
    print(f"Best: trial #{result.best.number} (run {result.best.run_id}), {result.primary_metric} "
          f"{result.best.metric:.4f}")
    print(f"Model {result.model_name!r} version {result.model_version} registered.")
    return EXIT_OK


def _submit(args: argparse.Namespace) -> int:
    from .azure_errors import azure_access
    from .job import ComputeConfig, TensorflowDistribution
    from .backends import resolve_backend
    from .run import finish_training, make_job
    from .plan import build_plan

    hyperparameters = {name: getattr(args, name) for name in HYPERPARAMETERS if getattr(args, name) is not None}
    changes: dict[str, Any] = {"hyperparameters": hyperparameters}
    for field, value in (("data", args.data_folder), ("experiment", args.experiment),
                         ("model_name", args.model_name), ("timeout", args.timeout)):
        if value is not None:
            changes[field] = value
    if args.compute is not None:
        changes["compute"] = ComputeConfig(name=args.compute)
    if args.workers is not None:
        changes["distribution"] = TensorflowDistribution(worker_count=args.workers)
    job = make_job(None, **changes)
    backend = resolve_backend(args.backend, **_workspace_arguments(args))
    backend.check(job)
    if args.dry_run:
        plan = build_plan(job, backend)
        print(json.dumps(plan.to_dict(), indent=1) if args.json else plan.describe())
        return EXIT_OK
    _quiet_sdk_loggers(backend)  # after the dry run: it imports the SDK
    with azure_access():
        run = backend.submit(job)
    if args.no_wait:
        print(json.dumps({"run_id": run.id, "status": run.status().value, "url": run.url})
              if args.json else f"Submitted run {run.id} ({run.url})")
        return EXIT_OK
    log_stream = sys.stderr if args.json else sys.stdout
    on_line = None if args.quiet else (lambda line: print(line, file=log_stream, flush=True))
    result = finish_training(run, job, on_line=on_line)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"\nRun {result.run_id} completed. Final test accuracy: "
              f"{result.metrics.get('Final test accuracy', float('nan')):.4f}")
        print(f"Model {result.model_name!r} version {result.model_version} registered."
              + (f" Trained by {result.workers} workers." if result.workers > 1 else ""))
        for line in run.next_steps(result.model_name, result.model_version):
            print(line)
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    from . import local_runs

    if args.action == "list":
        return _print_listing(local_runs.list_runs(args.experiment), args.json, lambda entry: (
            f"{entry['run_id']}  {entry['experiment']:<20} {entry['status']:<9} "
            + ("" if entry["final_test_accuracy"] is None else f"accuracy {entry['final_test_accuracy']:.4f}")))
    from .azure_errors import azure_access
    from .backends import resolve_backend

    backend = resolve_backend(args.backend, **_workspace_arguments(args))
    _quiet_sdk_loggers(backend)
    with azure_access():
        run = backend.attach(args.run_id)
    if args.action == "show":
        print(json.dumps(run.describe(), indent=1))
        return EXIT_OK
    return _run_action(args, run)


def _run_action(args: argparse.Namespace, run: JobRun) -> int:
    """``cancel`` or ``logs`` on any backend's run handle."""
    if args.action == "cancel":
        run.cancel()
        print(f"Run {run.id}: {run.status().value}")
        return EXIT_OK
    if args.follow:
        for line in run.stream_logs():
            print(line, flush=True)
    else:
        print(run.log_tail(lines=10**9))
    return EXIT_OK


def _models(args: argparse.Namespace) -> int:
    from . import local_runs

    if args.action == "list":
        return _print_listing(local_runs.list_models(), args.json, lambda model: (
            f"{model['name']:<24} latest version {model['latest_version']} (run {model['run_id']}), "
            f"{model['versions']} version(s)"))
    folder = local_runs.download_registered_model(args.name, args.version, args.destination)
    print(f"Downloaded to {folder}")
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    from .prediction import predict
    from .training.mnist_data import MnistFormatError, read_idx

    labels = None
    if args.labels is not None:
        try:
            labels = read_idx(args.labels).tolist()
        except (MnistFormatError, OSError) as error:
            raise ValidationError("--labels", "an IDX labels file", args.labels, hint=str(error)) from None
    prediction = predict(args.model, args.files[0] if len(args.files) == 1 else args.files)
    accuracy = prediction.accuracy(labels) if labels is not None else None
    if args.json:
        print(json.dumps({**prediction.to_dict(), **({"accuracy": accuracy} if accuracy is not None else {})}))
        return EXIT_OK
    names = args.files if len(args.files) > 1 else [f"{args.files[0]}[{i}]" for i in range(len(prediction.digits))]
    for name, digit, probabilities in list(zip(names, prediction.digits, prediction.probabilities))[:20]:
        print(f"{name}: {digit} (p={probabilities[digit]:.3f})")
    if len(prediction.digits) > 20:
        print(f"... {len(prediction.digits) - 20} more")
    if accuracy is not None:
        print(f"Accuracy on {len(labels or [])} labels: {accuracy:.4f}")
    return EXIT_OK


def _deploy(args: argparse.Namespace) -> int:
    from .endpoints import deploy_model, describe

    endpoint = deploy_model(args.model, endpoint=args.endpoint, backend=args.backend)
    if args.json:
        print(json.dumps(describe(endpoint)))
    else:
        print(f"Endpoint {endpoint.name!r} serves {endpoint.model} at {endpoint.url}")
        print(f"Try it: kerasjob endpoints invoke {endpoint.name} IMAGE.png")
    return EXIT_OK


def _endpoints(args: argparse.Namespace) -> int:
    from .endpoints import describe, get_endpoint, list_endpoints

    if args.action == "list":
        return _print_listing([describe(endpoint) for endpoint in list_endpoints()], args.json, lambda entry: (
            f"{entry['name']:<20} {'running' if entry['running'] else 'stopped':<8} {entry['url']:<24} "
            f"{entry['model']}"))
    endpoint = get_endpoint(args.name)
    if args.action == "invoke":
        prediction = endpoint.invoke(args.files[0] if len(args.files) == 1 else args.files)
        if args.json:
            print(json.dumps(prediction.to_dict()))
        else:
            for index, digit in enumerate(prediction.digits):
                print(f"{index}: {digit} (p={prediction.probabilities[index][digit]:.3f})")
    elif args.action == "logs":
        print(endpoint.logs(lines=10**9))
    else:
        endpoint.delete()
        print(f"Endpoint {endpoint.name!r} deleted.")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kerasjob`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)  # argparse exits 2 on bad flags, as we do
    handlers = {"submit": _submit, "runs": _runs, "models": _models, "tune": _tune, "predict": _predict,
                "deploy": _deploy, "endpoints": _endpoints}
    try:
        return handlers[args.command](args)
    except (ValidationError, BackendUnavailable, AzureAccessError) as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except TrainingFailed as exc:
        _error(str(exc))
        if getattr(args, "json", False):
            print(json.dumps({"run_id": exc.run_id, "status": exc.status, "error": str(exc).splitlines()[0]}))
        return EXIT_FAILED
    except KerasJobError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted; the run was canceled")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
