"""``kerasjob predict``, ``kerasjob deploy`` and ``kerasjob endpoints``: use a trained model.

Example:
    $ kerasjob predict keras-mnist digit.png
    $ kerasjob deploy keras-mnist --endpoint mnist-local
    $ kerasjob endpoints invoke mnist-local digit.png
    $ kerasjob endpoints delete mnist-local
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..errors import ValidationError
from .output import print_json, print_table
from .training import quiet_loggers, workspace_arguments

__all__ = ["delete_endpoint", "deploy", "endpoint_logs", "invoke_endpoint", "list_endpoints", "predict"]


def _images(files: list[str]) -> Any:
    """One IDX file as itself; PNG files as a list."""
    return files[0] if len(files) == 1 else files


def _print_predictions(names: list[str], prediction: Any, limit: int = 20) -> None:
    if not prediction.digits and prediction.outputs is not None:  # a regressor, or several outputs: the values
        print(json.dumps(prediction.outputs if isinstance(prediction.outputs, dict) else prediction.outputs[:limit]))
        return
    for name, digit, probabilities in list(zip(names, prediction.digits, prediction.probabilities))[:limit]:
        print(f"{name}: {digit} (p={probabilities[digit]:.3f})")
    if len(prediction.digits) > limit:
        print(f"... {len(prediction.digits) - limit} more")


def _names(files: list[str], count: int) -> list[str]:
    return files if len(files) > 1 else [f"{files[0]}[{index}]" for index in range(count)]


def predict(args: argparse.Namespace) -> int:
    from ..prediction import predict as predict_digits
    from ..training.mnist_data import MnistFormatError, read_idx

    labels = None
    if args.labels is not None:
        try:
            labels = read_idx(args.labels).tolist()
        except (MnistFormatError, OSError) as error:
            raise ValidationError("labels", "an IDX labels file", args.labels, hint=str(error)) from None
    prediction = predict_digits(args.model, _images(args.files))
    accuracy = prediction.accuracy(labels) if labels is not None else None
    if args.json:
        print_json({**prediction.to_dict(), **({"accuracy": accuracy} if accuracy is not None else {})})
        return 0
    _print_predictions(_names(args.files, len(prediction.digits)), prediction)
    if accuracy is not None:
        print(f"Accuracy on {len(labels or [])} labels: {accuracy:.4f}")
    return 0


def _endpoint_options(args: argparse.Namespace) -> dict[str, Any]:
    """Where the endpoint lives: the backend and, on Azure, the workspace. Azure ML serves through azure-ai-ml
    (both SDKs' workspaces), whose INFO lines on stderr ("Found the config file in: ...") are kept quiet."""
    from ..backends import resolve_backend
    from ..backends._azure import AzureBackend

    options = {"backend": args.backend, **workspace_arguments(args)}
    if isinstance(resolve_backend(**options), AzureBackend):
        quiet_loggers(("azure.ai.ml",))
    return options


def deploy(args: argparse.Namespace) -> int:
    from ..endpoints import deploy_model, describe

    from ..serving_app import TOKEN_ENV

    sizing = {name: value for name, value in (("instance_type", args.instance_type),
                                              ("instance_count", args.instance_count)) if value is not None}
    if args.max_body_mb is not None and not args.max_body_mb > 0:
        raise ValidationError("max_body_mb", "a number of megabytes > 0", args.max_body_mb)
    token = args.auth_token or (os.environ.get(TOKEN_ENV) if args.backend == "local" else None) or None
    local: dict[str, Any] = {name: value for name, value in (
        ("port", args.port), ("auth_token", token),
        ("max_body_bytes", None if args.max_body_mb is None else int(args.max_body_mb * 1024 * 1024)))
        if value is not None}
    endpoint = deploy_model(args.model, endpoint=args.endpoint, **sizing, **local, **_endpoint_options(args))
    if args.json:
        print_json(describe(endpoint))
    else:
        print(f"Endpoint {endpoint.name!r} serves {endpoint.model} at {endpoint.url}")
        auth = getattr(endpoint, "auth", None)
        if auth:
            print(f"Requests need the {auth}: Authorization: Bearer <token> (kerasjob endpoints invoke sends "
                  f"${TOKEN_ENV})")
        where = "" if args.backend == "local" else f" --backend {args.backend}"
        print(f"Try it: kerasjob endpoints invoke {endpoint.name} IMAGE.png{where}")
    return 0


def list_endpoints(args: argparse.Namespace) -> int:
    from ..endpoints import describe, list_endpoints as endpoints

    described = [describe(endpoint) for endpoint in endpoints(**_endpoint_options(args))]
    if args.output == "json":
        print_json(described)
    else:
        print_table([{**entry, "state": "running" if entry.get("running") else "stopped"} for entry in described],
                    [("name", "NAME"), ("backend", "BACKEND"), ("state", "STATE"), ("url", "URL"), ("model", "MODEL")],
                    empty="No endpoints: kerasjob deploy MODEL --endpoint NAME starts one.")
    return 0


def _endpoint(args: argparse.Namespace) -> Any:
    from ..endpoints import get_endpoint

    return get_endpoint(args.name, **_endpoint_options(args))


def invoke_endpoint(args: argparse.Namespace) -> int:
    prediction = _endpoint(args).invoke(_images(args.files))
    if args.json:
        print_json(prediction.to_dict())
    else:
        _print_predictions(_names(args.files, len(prediction.digits)), prediction)
    return 0


def endpoint_logs(args: argparse.Namespace) -> int:
    print(_endpoint(args).logs(lines=10**9))
    return 0


def delete_endpoint(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args)
    endpoint.delete()
    print(f"Endpoint {endpoint.name!r} deleted.")
    return 0
