"""What both Azure ML fakes share: the outcome you choose, and the record of the calls made."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACCESS", "FakeService", "LostResponse", "azure_resolves", "press_ctrl_c", "spread"]


class LostResponse(Exception):
    """In ``failures``: the service carries the call out, then ``error`` reaches the caller."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def spread(kind: str, parameters: list[Any], index: int, total: int) -> Any:
    """Trial ``index``'s value of one swept parameter: the choices in turn, ranges evenly spread.

    ``kind`` is the distribution's name (``choice``, ``uniform``, ``loguniform``,
    ``quniform``, ``normal``); ``parameters`` its values (choice) or bounds.
    """
    kind = kind.lower()
    if kind == "choice":
        return parameters[index % len(parameters)]
    if kind == "normal":
        return parameters[0]
    low, high = parameters[0], parameters[1]
    value = low + (high - low) * (index + 0.5) / max(total, 1)
    return math.exp(value) if kind.startswith("log") else value


ACCESS = ("ok", "not-logged-in", "forbidden", "no-workspace")


def azure_resolves() -> Any:
    """A patch for ``kerasjob.azure_errors.resolves``: the fake's Azure is reachable, so a login it refuses is the
    login's fault (kerasjob asks whether Azure Resource Manager's host resolves before it blames a login)."""
    from unittest import mock

    return mock.patch("kerasjob.azure_errors.resolves", lambda host, timeout=3.0: True)


def press_ctrl_c() -> None:
    """A Ctrl-C as the terminal sends it: ``KeyboardInterrupt`` in the main thread.

    Called in the main thread, it raises there. Called from another thread (azure-core's
    ``LROPoller`` polls in one while the main thread waits in ``result()``), it sends SIGINT to
    the main thread, whose wait it interrupts with Python's own handler.
    """
    if threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


@dataclass
class FakeService:
    """The outcome a fake Azure ML gives every run, and the calls it records.

    Each fake also offers ``submissions`` (what was submitted) and ``created_computes``.

    Args:
        final_status: where every run ends (``Completed``, ``Failed``, ``Canceled``).
        statuses: states a run reports before that (default Queued, Running).
        metrics: what the run logged (lists are per-epoch histories).
        log_lines: the run's driver log.
        computes: names of clusters that already exist.
        new_compute_state: provisioning state of a cluster created here
            (``Succeeded``, ``Failed``; v1 also ``Creating``, meaning it timed out).
        failures: ``{"<call name>": [ConnectionResetError(), ...]}``: errors raised
            by the next calls of that name, one per call (None lets that call through;
            ``LostResponse(error)``: the service carries the call out, then ``error`` is raised).
        run_files: ``{path: bytes}``, the files the run holds (for downloads).
        trial_metrics, trial_statuses: for a sweep, what trial ``i`` reports
            and where it ends (default: Accuracy 0.9 + 0.001 i, Completed).
        access: how the service answers this login: ``ok``; ``not-logged-in`` (the
            login has no token to give: the SDK's authentication error); ``forbidden`` (every call
            gets HTTP 403 AuthorizationFailed: the login lacks a role); ``no-workspace``
            (the workspace does not exist: 404 from Azure Resource Manager).
        interrupt_after: a Ctrl-C (``KeyboardInterrupt``) at the n-th status read
            while a run is waited for, inside the SDK's own waiting loop (v2: a poll of
            a long-running operation counts too; see :func:`press_ctrl_c`).
    """

    final_status: str = "Completed"
    statuses: list[str] = field(default_factory=lambda: ["Queued", "Running"])
    metrics: dict[str, Any] = field(default_factory=lambda: {"Loss": [0.2, 0.1], "Accuracy": [0.95, 0.97],
                                                   "Final test loss": 0.1, "Final test accuracy": 0.97})
    log_lines: list[str] = field(default_factory=lambda: ["Epoch 1/2", "Epoch 2/2", "Final test accuracy: 0.9700"])
    computes: set[str] | dict[str, str] = field(default_factory=set)
    new_compute_state: str = "Succeeded"
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    run_files: dict[str, bytes] = field(default_factory=lambda: {"outputs/model/model.keras": b"fake model",
                                                                 "outputs/training.png": b"png"})
    trial_metrics: list[dict[str, Any]] = field(default_factory=list)
    trial_statuses: list[str] = field(default_factory=list)
    access: str = "ok"
    interrupt_after: int | None = None

    def trial_outcome(self, index: int) -> tuple[dict[str, Any], str]:
        """What sweep trial ``index`` reports and the state it ends in."""
        metrics = (self.trial_metrics[index % len(self.trial_metrics)] if self.trial_metrics
                   else {"Accuracy": [0.9, 0.9 + 0.001 * index]})
        return metrics, self.trial_statuses[index] if index < len(self.trial_statuses) else "Completed"

    def __post_init__(self) -> None:
        if self.access not in ACCESS:
            raise ValueError(f"access must be one of {ACCESS}, not {self.access!r}")
        self.calls: list[tuple[str, object]] = []
        self._stack = contextlib.ExitStack()
        self._status_reads = 0

    def _record(self, name: str, detail: object = None, action: Callable[[], Any] | None = None) -> Any:
        """Record a service operation; carry it out with ``action`` unless a failure is due first.

        Returns what ``action`` returns (None without one).
        """
        self.calls.append((name, detail))
        pending = self.failures.get(name)
        error = pending.pop(0) if pending else None  # None: this call goes through, a later one fails
        if isinstance(error, LostResponse):
            if action is not None:
                action()
            raise error.error
        if error is not None:
            raise error
        result = action() if action is not None else None
        lost = self._lost_response(name)
        if lost is not None:
            raise lost
        return result

    def _lost_response(self, name: str) -> BaseException | None:
        """The error a carried-out call ``name`` answers with instead of its response (a fake may lose some)."""
        return None

    def _status_read(self) -> None:
        """Counts status reads; the ``interrupt_after``-th is a Ctrl-C, raised where the SDK polls."""
        self._status_reads += 1
        if self.interrupt_after is not None and self._status_reads >= self.interrupt_after:
            self.interrupt_after = None
            press_ctrl_c()

    @property
    def service_calls(self) -> list[str]:
        """The names of the service calls made so far, in order."""
        return [name for name, _ in self.calls]

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()
