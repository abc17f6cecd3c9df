"""How a person types kerasjob's and MLflow's commands on this machine, for the hints kerasjob prints.

``make demo`` runs ``.venv/bin/kerasjob`` with the virtual environment not on ``PATH``: a hint that says
``kerasjob models download ...`` or ``mlflow ui ...`` would then fail. ``shell_command`` names the program as
it can be typed: its bare name when ``PATH`` finds this very installation, else its full path.

Example:
    >>> shell_command("kerasjob").endswith("kerasjob")
    True
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["shell_command"]


def shell_command(program: str) -> str:
    """``program`` (a console script of this Python's environment: ``kerasjob``, ``mlflow``) as a shell can run
    it: the bare name where ``PATH`` finds this installation's, else the full path, else ``python -m``."""
    installed = Path(sys.executable).parent / program
    found = shutil.which(program)
    if found is not None and (not installed.exists() or os.path.realpath(found) == os.path.realpath(installed)):
        return program
    if installed.exists():
        return str(installed)
    return f"{sys.executable} -m {program}"
