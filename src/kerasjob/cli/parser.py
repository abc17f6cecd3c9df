"""Every flag of the ``kerasjob`` command, declared once.

Flags are spelled whole (no abbreviations: ``--epoch`` is not ``--epochs``), and an unknown flag is answered
with the closest known one.

Example:
    >>> args = build_parser().parse_args(["submit", "--epochs", "2"])
    >>> args.epochs, args.command
    (2, 'submit')
"""

from __future__ import annotations

import argparse
import difflib
import re
from typing import Any, Callable, NoReturn

from .. import __version__
from ..backends import BACKENDS
from ..training.contract import HYPERPARAMETERS, flag_for

__all__ = ["BACKEND_CHOICES", "CommandParser", "build_parser", "command_parser"]

BACKEND_CHOICES = sorted(BACKENDS)
OUTPUT_CHOICES = ("table", "json")
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<word>[^']*)' \(choose from (?P<choices>.*)\)")
_CHOICE = re.compile(r"'([^']*)'")


class CommandParser(argparse.ArgumentParser):
    """``argparse`` without abbreviations, whose "unrecognized arguments" error suggests the closest flag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            known = command_parser(parsed) or self
            flags = [flag for action in known._actions for flag in action.option_strings]
            suggestions = [f"{word} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(
                word.split("=")[0], flags, n=1)) else word for word in unknown]
            known.error("unrecognized arguments: " + " ".join(suggestions))
        return parsed

    def error(self, message: str) -> NoReturn:
        invalid = _INVALID_CHOICE.search(message)
        if invalid is not None:  # `kerasjob sumbit`: argparse lists the choices; name the one meant
            close = difflib.get_close_matches(invalid["word"], _CHOICE.findall(invalid["choices"]), n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        self.exit(2, f"kerasjob: {message}\nSee: {self.prog} --help\n")


def command_parser(args: argparse.Namespace) -> CommandParser | None:
    """The parser of the command that ``args`` came from (``kerasjob runs list``'s, say)."""
    return getattr(args, "parser", None)


def _command(group: Any, name: str, handler: Callable[..., int], text: str) -> CommandParser:
    command: CommandParser = group.add_parser(name, help=text, description=text)
    command.set_defaults(handler=handler, parser=command)
    return command


def _workspace_flags(parser: argparse.ArgumentParser) -> None:
    """The Azure ML workspace, as ``az ml`` takes it: a config.json, or the three ids, and a login method."""
    from ..backends._azure.workspace import AUTH_CHOICES

    group = parser.add_argument_group("Azure ML workspace (default: config.json searched upward)")
    group.add_argument("--workspace-config", help="the workspace's config.json (or its folder)")
    group.add_argument("--subscription-id", help="the workspace's subscription (with the two below)")
    group.add_argument("--resource-group", help="the workspace's resource group")
    group.add_argument("--workspace-name", help="the workspace's name")
    group.add_argument("--auth", choices=AUTH_CHOICES, default="default",
                       help="how to log in: default (the SDK's chain), cli (az login), interactive, "
                            "service-principal (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET) or "
                            "managed-identity")


def _backend_flag(parser: argparse.ArgumentParser, default: str | None, text: str) -> None:
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=default, help=text)
    _workspace_flags(parser)


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=OUTPUT_CHOICES, default="table",
                        help="table for people (default), json for programs")
    parser.add_argument("--json", dest="output", action="store_const", const="json", help="the same as -o json")


def _job_flags(parser: argparse.ArgumentParser) -> None:
    """What ``submit`` and ``tune`` share: where the code, the data and the results go."""
    parser.add_argument("--data-folder", help="the data folder: for the packaged script, the four MNIST IDX "
                                              "files (default: download MNIST); for your script, any folder")
    parser.add_argument("--source-dir", help="your training code's folder (default: the packaged MNIST script)")
    parser.add_argument("--entry-script", help="the script in --source-dir that runs (default train.py)")
    parser.add_argument("--experiment", help="experiment name (default keras-mnist)")
    parser.add_argument("--model-name", help="registered model name (default keras-mnist)")
    parser.add_argument("--keras-backend", choices=("tensorflow", "jax"),
                        help="the Keras backend the script trains on (default: tensorflow)")
    parser.add_argument("--seed", dest="script_seed", type=int, metavar="SEED", help="seed for the weights and the shuffling")
    parser.add_argument("--mixed-precision", action="store_true", default=None,
                        help="compute in float16 on a GPU (no gain on a CPU)")
    parser.add_argument("--compute", help="Azure ML cluster name (default gpu-cluster)")
    parser.add_argument("--vm-size", help="the cluster's VM size, when kerasjob creates it")
    parser.add_argument("--max-nodes", type=int, help="the cluster's node limit, when kerasjob creates it")
    parser.add_argument("--timeout", type=float, help="seconds before a run is canceled")
    parser.add_argument("--allow-secrets", action="store_true", default=None,
                        help="upload files that look like credentials anyway")
    parser.add_argument("--allow-symlinks", action="store_true", default=None,
                        help="upload what symlinks leading out of --source-dir point to (refused otherwise)")
    parser.add_argument("--max-restarts", type=int, metavar="N",
                        help="start a failed training process again up to N times, from its latest checkpoint "
                             "(local backend; default 0)")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    parser.add_argument("--quiet", action="store_true", help="do not stream the run's output")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def build_parser() -> CommandParser:
    from . import browse, serving, training

    parser = CommandParser(prog="kerasjob", description="Run a Keras training job locally or on Azure ML.")
    parser.add_argument("--version", action="version", version=f"kerasjob {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = _command(commands, "submit", training.submit, "run the training job (the seed's MNIST job by "
                                                             "default, or your script with --source-dir)")
    _job_flags(submit)
    for name, spec in HYPERPARAMETERS.items():
        submit.add_argument(flag_for(name), dest=name, type=spec.type, help=f"{spec.help} (default {spec.default})")
    submit.add_argument("--workers", type=int, help="train data-parallel on N workers (N nodes on Azure ML, "
                        "N processes on loopback locally); --batch-size is per worker")
    submit.add_argument("--no-wait", action="store_true", help="print the run id and return at once; the run "
                                                                "registers its model when it completes")
    _backend_flag(submit, None, "where to run (default: local, or azureml when a workspace is named)")
    submit.epilog = "Arguments after -- reach your script unchanged: kerasjob submit --source-dir DIR -- --my-flag 3"

    fit = _command(commands, "fit", training.fit, "train your own compiled Keras model (a .keras file) on .npz "
                                                    "data with kerasjob's trainer, anywhere, and register it")
    fit.add_argument("model", metavar="MODEL.keras", help="a .keras file holding a compiled model")
    fit.add_argument("data", metavar="DATA.npz", help="an .npz file (x and y) or a folder of .npz shards")
    fit.add_argument("--epochs", type=int, default=1, help="passes over the data (default 1)")
    fit.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    fit.add_argument("--validation-data", metavar="FILE", help="validation data: an .npz file or folder")
    fit.add_argument("--validation-split", type=float, default=0.0, help="share of the data held out instead")
    fit.add_argument("--no-shuffle", action="store_true", help="keep the examples' order in every epoch")
    _job_flags(fit)
    fit.add_argument("--no-wait", action="store_true", help="print the run id and return at once")
    _backend_flag(fit, None, "where to run (default: local, or azureml when a workspace is named)")

    tune = _command(commands, "tune", training.tune, "search hyperparameters (the seed notebook's sweep by "
                                                       "default) and register the best model")
    _job_flags(tune)
    tune.add_argument("--epochs", type=int, help="epochs per trial (default 20)")
    tune.add_argument("--set", dest="fixed", action="append", default=[], metavar="NAME=VALUE",
                      help="fix a hyperparameter instead of searching it (repeatable)")
    tune.add_argument("--max-total-runs", type=int, default=20, help="trials in all (default 20)")
    tune.add_argument("--max-concurrent-runs", type=int,
                      help="trials at a time (default 4, or --max-total-runs when fewer)")
    tune.add_argument("--sampling", default="random", help="random, grid or bayesian (default random)")
    tune.add_argument("--primary-metric", default="Accuracy", help="the metric that ranks trials (default "
                                                                   "Accuracy)")
    tune.add_argument("--goal", choices=("maximize", "minimize"),
                      help="maximize or minimize the primary metric (default: minimize for a loss, else "
                           "maximize)")
    tune.add_argument("--sampler-seed", dest="seed", type=int, help="seed of the sampler, for a repeatable sweep")
    _backend_flag(tune, None, "local: Optuna over local runs; azureml: HyperDrive; azureml-v2: a sweep job "
                              "(default: local, or azureml when a workspace is named)")

    runs = commands.add_parser("runs", help="runs: list, show, logs, wait, cancel, compare, download, delete "
                                            "(Azure ML runs by id with --backend)").add_subparsers(dest="action", required=True,
                                                                         metavar="ACTION")
    listing = _command(runs, "list", browse.list_runs, "local runs, newest first; sweep trials under their sweep")
    listing.add_argument("--experiment", help="only this experiment's runs")
    listing.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    _output_flags(listing)
    _backend_flag(listing, "local", "whose runs: local (default), or an Azure ML workspace's kerasjob runs "
                                    "(azureml-v2)")
    for action, handler, text in (("show", browse.show_run, "a run's status, parameters and metrics"),
                                  ("logs", browse.run_logs, "a run's driver log"),
                                  ("wait", browse.wait_run, "follow a run to its end and register its model"),
                                  ("cancel", browse.cancel_run, "cancel a running run"),
                                  ("recover", browse.recover_run, "record a run whose supervisor died: registered "
                                                                  "when its training completed, else failed")):
        command = _command(runs, action, handler, text)
        command.add_argument("run_id", metavar="RUN_ID")
        if action == "recover":
            continue
        if action == "logs":
            command.add_argument("--follow", action="store_true", help="keep printing until the run ends")
        if action == "show":
            _output_flags(command)
        if action == "wait":
            command.add_argument("--quiet", action="store_true", help="do not stream the run's output")
        _backend_flag(command, "local", "where the run lives (default local)")

    models = commands.add_parser("models", help="registered models: list, show, download, alias, delete").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    _output_flags(_command(models, "list", browse.list_models, "registered models and their champion"))
    show = _command(models, "show", browse.show_model, "a registered model's versions, aliases and metrics")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--version", help="one version (default: all)")
    _output_flags(show)
    download = _command(models, "download", browse.download_model,
                        "download a registered model's files (default: its champion, else the latest)")
    download.add_argument("name", metavar="NAME", help="NAME, NAME@ALIAS or NAME:VERSION")
    download.add_argument("destination", metavar="DESTINATION", help="a folder that does not exist yet or is empty")
    download.add_argument("--version", help="default: the champion, else the latest")
    alias = _command(models, "alias", browse.alias_model, "point an alias (default champion) at a version")
    alias.add_argument("name", metavar="NAME")
    alias.add_argument("version", metavar="VERSION")
    alias.add_argument("--alias", default="champion", help="the alias to set or move (default champion)")

    model_help = "NAME (its champion, else latest), NAME@ALIAS, NAME:VERSION, models:/NAME/VERSION or a folder"
    predict = _command(commands, "predict", serving.predict, "the digits a trained model sees in PNG files or "
                                                             "an IDX file")
    predict.add_argument("model", metavar="MODEL", help=model_help)
    predict.add_argument("files", nargs="+", metavar="FILES", help="28 x 28 PNG files, or one IDX images file")
    predict.add_argument("--labels", help="an IDX labels file: also print the accuracy")
    predict.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    deploy = _command(commands, "deploy", serving.deploy, "serve a trained model at a named endpoint (locally: "
                                                          "MLflow's scoring server on 127.0.0.1)")
    deploy.add_argument("model", metavar="MODEL", help=model_help)
    deploy.add_argument("--endpoint", required=True, help="the endpoint's name (3-32 letters, digits or '-', "
                                                          "starting with a letter)")
    deploy.add_argument("--instance-type", help="Azure ML: the VM size (default Standard_DS3_v2)")
    deploy.add_argument("--instance-count", type=int, help="Azure ML: how many instances (default 1)")
    deploy.add_argument("--port", type=int, help="local: the port on 127.0.0.1 (default: a free one)")
    deploy.add_argument("--max-body-mb", type=float, metavar="MB",
                        help="local: the largest request body, bigger ones are answered 413 (default 50)")
    deploy.add_argument("--auth-token", help="local: a bearer token every request must carry (default: the "
                                             "KERASJOB_ENDPOINT_TOKEN environment variable, else none)")
    deploy.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _backend_flag(deploy, "local", "where to serve (default local)")

    endpoints = commands.add_parser("endpoints", help="deployed endpoints: list, invoke, logs, delete"
                                    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    endpoints_list = _command(endpoints, "list", serving.list_endpoints, "the deployed endpoints")
    _output_flags(endpoints_list)
    _backend_flag(endpoints_list, "local", "where the endpoints live (default local)")
    invoke = _command(endpoints, "invoke", serving.invoke_endpoint, "the digits an endpoint sees in PNG files or "
                                                                    "an IDX file")
    invoke.add_argument("name", metavar="NAME")
    invoke.add_argument("files", nargs="+", metavar="FILES")
    invoke.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _backend_flag(invoke, "local", "where the endpoint lives (default local)")
    for action, handler, text in (("logs", serving.endpoint_logs, "the server's log"),
                                  ("delete", serving.delete_endpoint, "stop serving and forget the endpoint")):
        command = _command(endpoints, action, handler, text)
        command.add_argument("name", metavar="NAME")
        _backend_flag(command, "local", "where the endpoint lives (default local)")
    _more_commands(commands, runs, models)
    return parser


def _more_commands(commands: Any, runs: Any, models: Any) -> None:
    """What MLflow and az ml users reach for: ``ui``; ``runs delete|download|compare``, ``models delete``."""
    from . import housekeeping, tracking_ui

    download = _command(runs, "download", housekeeping.download_run, "download a run's outputs/ folder "
                                                                       "(any backend)")
    download.add_argument("run_id", metavar="RUN_ID")
    download.add_argument("destination", metavar="DEST", help="the folder that receives outputs/")
    _backend_flag(download, "local", "where the run lives (default local)")
    compare = _command(runs, "compare", housekeeping.compare_runs, "parameters and final metrics of runs side "
                                                                   "by side")
    compare.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="two or more run ids")
    _output_flags(compare)
    _backend_flag(compare, "local", "where the runs live (default local)")
    delete = _command(runs, "delete", housekeeping.delete_run, "delete a local run that has ended (not one "
                                                               "whose model is registered)")
    delete.add_argument("run_id", metavar="RUN_ID")
    model_delete = _command(models, "delete", housekeeping.delete_model_version,
                            "delete a registered version; deleting the champion moves @champion to the best "
                            "version left")
    model_delete.add_argument("model", metavar="NAME:VERSION")

    ui = _command(commands, "ui", tracking_ui.ui, "MLflow's UI on kerasjob's local store (the runs and models "
                                                  "that runs list and models list show)")
    ui.add_argument("--port", type=int, default=5000, help="the port to listen on (default 5000)")
    ui.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this "
                                                        "machine only)")
