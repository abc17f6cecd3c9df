"""The ``kerasjob`` command: a thin layer over the functions the API uses.

Exit codes: 0 success; 1 the run failed; 2 nothing started (bad input, missing data or extra, Azure refused
the login, workspace or permission); 130 interrupted (the run was canceled).

Example:
    $ kerasjob submit --data-folder ../shared/data/mnist --epochs 2 --json
    $ kerasjob runs list
    $ kerasjob models download keras-mnist ./model
    $ kerasjob predict keras-mnist ../shared/data/mnist/t10k-images-idx3-ubyte.gz --labels ...
    $ kerasjob tune --data-folder ../shared/data/mnist --epochs 3 --max-total-runs 6 --max-concurrent-runs 2
    $ kerasjob submit --source-dir ./my_job --entry-script train.py --data-folder ./data -- --my-flag 3
    $ kerasjob submit --backend azureml-v2 --subscription-id S --resource-group RG --workspace-name WS --no-wait
    $ kerasjob runs wait RUN_ID --backend azureml-v2 --workspace-config config.json

One module per group of commands: ``training`` (submit, tune), ``browse`` (runs, models), ``serving``
(predict, deploy, endpoints); ``parser`` declares every flag, ``refusals`` turns errors into exit codes and
messages that name the flags, ``output`` prints.
"""

from .main import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, build_parser, main

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "build_parser", "main"]
