"""Entry script of a ``kerasjob.fit`` job: the job's one data input handed to the generic trainer.

Every backend gives a job one data folder (``--data-folder DIR``, as for ``keras_mnist.py``): a local folder,
a v2 ``uri_folder`` asset, a v1 FileDataset. ``kerasjob.fit`` lays it out as ``DIR/train/`` (the training
``.npz`` shards) and, with validation data, ``DIR/validation/``; this script passes them to ``keras_fit.py``
as ``--data`` and ``--validation-data`` and runs it, the rest of the arguments unchanged. Standard library
only; it runs unchanged on Azure ML, locally and alone:

    python fit_job.py --data-folder DIR --model model.keras --epochs 2

Example:
    >>> translate(["--data-folder", "/d", "--epochs", "2"])[:2]
    ['--data', '/d/train']
"""

from __future__ import annotations

import os
import sys

__all__ = ["DATA_FOLDER_FLAG", "translate"]

DATA_FOLDER_FLAG = "--data-folder"


def translate(argv: list[str]) -> list[str]:
    """``argv`` with ``--data-folder DIR`` replaced by ``--data DIR/train [--validation-data DIR/validation]``."""
    if DATA_FOLDER_FLAG not in argv or "--data" in argv:
        return list(argv)
    at = argv.index(DATA_FOLDER_FLAG)
    folder = argv[at + 1]
    train = os.path.join(folder, "train")
    replaced = ["--data", train if os.path.isdir(train) or not os.path.isdir(folder) else folder]
    validation = os.path.join(folder, "validation")
    if os.path.isdir(validation) and "--validation-data" not in argv:
        replaced += ["--validation-data", validation]
    return argv[:at] + replaced + argv[at + 2:]


if __name__ == "__main__":
    import importlib

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    keras_fit = importlib.import_module("keras_fit")  # the sibling trainer: this folder is the job's whole source
    sys.exit(keras_fit.main(translate(sys.argv[1:])))
