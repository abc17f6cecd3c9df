"""Whether a process still runs, by pid and start time, from this process or any other.

A recorded pid alone is not a process: once it ends, the kernel hands the pid to
the next process that starts. kerasjob records a process as its pid *and* its
start time (``ProcessIdentity``) and only trusts, and only ever signals, a
process that has both. Children are tied to their parent's life with Linux's
parent-death signal (``PARENT_DEATH_PRELUDE``).

Example:
    >>> import os
    >>> pid_running(os.getpid())
    True
    >>> ProcessIdentity.of(os.getpid()).running()
    True
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["PARENT_DEATH_PRELUDE", "ProcessIdentity", "describe_signal", "pid_running", "stop_group",
           "with_parent_death_signal"]

#: Start times agree to the clock tick (10 ms on Linux); a reused pid starts at least that much later.
_START_TOLERANCE_S = 0.05

#: Python code run before a child's own program: asks Linux to SIGKILL it when its parent dies (prctl
#: PR_SET_PDEATHSIG = 1), and leaves at once when the parent is already gone. The code then replaces itself with
#: the real program (``os.execv`` keeps the death signal), so the child is still the program, pid for pid.
PARENT_DEATH_PRELUDE = (
    "import ctypes, os, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(137)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def with_parent_death_signal(argv: list[str], parent_pid: int | None = None) -> list[str]:
    """``argv`` wrapped so that its process is killed when this process (or ``parent_pid``) dies (Linux; elsewhere
    the program runs as it is).

    Example:
        >>> with_parent_death_signal(["/bin/true"])[-1]
        '/bin/true'
    """
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-c", PARENT_DEATH_PRELUDE, str(parent_pid or os.getpid()), *argv]


@dataclass(frozen=True)
class ProcessIdentity:
    """One process: its pid and its start time (seconds since the epoch, as psutil reads it)."""

    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> "ProcessIdentity | None":
        """The process running as ``pid`` now, or None when there is none."""
        import psutil

        try:
            return cls(pid, psutil.Process(pid).create_time())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, ValueError):
            return None
        except psutil.AccessDenied:
            return None

    @classmethod
    def from_record(cls, record: Any) -> "ProcessIdentity | None":
        """An identity written by ``to_record`` (None for anything else)."""
        if isinstance(record, dict) and isinstance(record.get("pid"), int) and \
                isinstance(record.get("started"), (int, float)):
            return cls(record["pid"], float(record["started"]))
        return None

    def to_record(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started}

    def running(self) -> bool:
        """True while this very process runs (not a later one that got its pid; a zombie counts as ended)."""
        import psutil

        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > _START_TOLERANCE_S:
                return False
            if process.status() == psutil.STATUS_ZOMBIE:
                _reap(self.pid)
                return False
            return True
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True  # it exists, under another user, with the recorded start time

    def signal_group(self, signum: int) -> bool:
        """Send ``signum`` to this process's group if this very process still leads it; False when it is gone."""
        return self._send(os.killpg, signum)

    def signal(self, signum: int) -> bool:
        """Send ``signum`` to this process if it still runs; False when it is gone."""
        return self._send(os.kill, signum)

    def _send(self, send: Any, signum: int) -> bool:
        if not self.running():
            return False
        try:
            send(self.pid, signum)
            return True
        except (ProcessLookupError, PermissionError):
            return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_group(identity: ProcessIdentity, grace_seconds: float = 5.0) -> None:
    """SIGTERM to ``identity``'s process group, SIGKILL after ``grace_seconds``; returns once it is gone."""
    if not identity.signal_group(signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_seconds
    while identity.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    identity.signal_group(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while identity.running() and time.monotonic() < deadline:
        time.sleep(0.05)


def describe_signal(returncode: int | None) -> str:
    """The reason of a process that a signal ended (a negative return code), e.g. 'killed by signal 9 (SIGKILL)';
    '' otherwise.

    Example:
        >>> describe_signal(-9)
        'killed by signal 9 (SIGKILL)'
    """
    if returncode is None or returncode >= 0:
        return ""
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"killed by signal {number}"
    return f"killed by signal {number} ({name})"


def pid_running(pid: int) -> bool:
    """True while ``pid`` runs. A finished child of this process (a zombie) is reaped and counts as finished.
    Prefer ``ProcessIdentity.running``: a pid alone may have been reused."""
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
