"""``main``: parse the flags, run the command, turn what went wrong into one line and an exit code.

Example:
    >>> main(["submit", "--epochs", "0", "--dry-run"])  # doctest: +SKIP
    kerasjob: Invalid --epochs: expected an integer >= 1. Received: --epochs 0
    2
"""

from __future__ import annotations

import json
import logging
import os
import sys

from ..errors import KerasJobError, TrainingFailed
from .output import print_error, quiet_closed_pipe
from .parser import build_parser, command_parser
from .refusals import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, exit_code, in_flags

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "build_parser", "main"]

#: Loggers that warn on stderr before a login fails: ``DefaultAzureCredential``'s list of every credential it
#: tried (azure-identity), azureml-core's "unable to load cloud metadata" when Azure can't be reached.
SDK_LOGIN_LOGGERS = ("azure.identity", "azureml._vendor.azure_cli_core")

#: The commands that pass what follows ``--`` to a training script.
TAKES_SCRIPT_ARGUMENTS = ("submit",)


def _split_script_arguments(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``[..., "--", "--my-flag", "3"]`` -> the command's own arguments and the script's (None without ``--``)."""
    if "--" not in argv:
        return argv, None
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kerasjob`` console script; returns the exit code."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow's "Creating initial database tables..."
    for name in SDK_LOGIN_LOGGERS:  # a failure is one line of ours, not the SDKs' warnings before it
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # runs/models download: one line
    parser = build_parser()
    own, script_arguments = _split_script_arguments(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(own)  # argparse exits 2 on bad flags, as we do
    if script_arguments is not None and args.command not in TAKES_SCRIPT_ARGUMENTS:
        (command_parser(args) or parser).error(f"arguments after -- go to a training script: only "
                                   f"{', '.join(TAKES_SCRIPT_ARGUMENTS)} takes them")
    args.script_arguments = script_arguments or []
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # here, not at exit: a closed pipe is then ours to handle
        return code
    except BrokenPipeError:
        quiet_closed_pipe()
        return EXIT_OK
    except TrainingFailed as exc:
        print_error(str(exc))
        if getattr(args, "json", False) or getattr(args, "output", None) == "json":
            print(json.dumps({"run_id": exc.run_id, "status": exc.status, "error": str(exc).splitlines()[0]}))
        return EXIT_FAILED
    except KerasJobError as exc:
        print_error(in_flags(exc, command_parser(args), args))
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print_error(str(exc) or "interrupted; the run was canceled")
        return EXIT_INTERRUPTED
