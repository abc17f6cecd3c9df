"""``KERASJOB_HOME``: where kerasjob keeps its local state (runs, the MLflow store, packages, data).

Example:
    >>> import os; os.environ["KERASJOB_HOME"] = "/tmp/kj"; str(kerasjob_home())
    '/tmp/kj'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ValidationError

__all__ = ["ensure_writable", "kerasjob_home"]


def kerasjob_home() -> Path:
    """``KERASJOB_HOME``, else the user's data directory for kerasjob."""
    configured = os.environ.get("KERASJOB_HOME")
    if configured:
        return Path(configured).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("kerasjob"))


def ensure_writable(folder: Path, purpose: str) -> None:
    """Create ``folder`` under ``KERASJOB_HOME`` and prove it writable, else ``ValidationError`` naming
    ``KERASJOB_HOME`` (nothing started yet): ``purpose`` says what kerasjob keeps there, e.g. "its runs"."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValidationError("KERASJOB_HOME", f"a folder kerasjob can write {purpose} in", str(folder.parent),
                              hint=f"{folder} cannot be written ({exc.strerror or exc}). Set the KERASJOB_HOME "
                                   "environment variable to a writable folder.") from exc
