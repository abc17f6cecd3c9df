"""Whether a process still runs, by pid, from this process or any other.

Example:
    >>> import os
    >>> pid_running(os.getpid())
    True
"""

from __future__ import annotations

import os

__all__ = ["pid_running"]


def pid_running(pid: int) -> bool:
    """True while ``pid`` runs. A finished child of this process (a zombie) is reaped and counts as finished."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True  # not our child: it exists
