"""``python -m kerasjob.backends.local RUN_DIR``: the supervisor process of one local run (``supervisor``), which
registers a completed run's model through the run's handle (``run.LocalRun``).

Example:
    $ python -m kerasjob.backends.local ~/.kerasjob/runs/keras-mnist_1733312345_ab12cd34   # doctest: +SKIP
"""

import os
import sys

from .run import LocalRun
from .supervisor import main

__all__: list[str] = []

if __name__ == "__main__":
    code = main(sys.argv, LocalRun)
    # Everything is recorded (state.json, MLflow's synchronous calls): leave at once. A normal exit spends
    # about 0.8 s in MLflow's and SQLAlchemy's exit handlers, which a caller waiting on us would pay.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
