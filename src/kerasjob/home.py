"""``KERASJOB_HOME``: where kerasjob keeps its local state (runs, the MLflow store, packages, data).

Example:
    >>> import os; os.environ["KERASJOB_HOME"] = "/tmp/kj"; str(kerasjob_home())
    '/tmp/kj'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["kerasjob_home"]


def kerasjob_home() -> Path:
    """``KERASJOB_HOME``, else the user's data directory for kerasjob."""
    configured = os.environ.get("KERASJOB_HOME")
    if configured:
        return Path(configured).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("kerasjob"))
