"""The exceptions kerasjob raises: one base class, one subclass per kind of failure.

Example:
    >>> try:
    ...     raise ValidationError("compute", "2-16 letters, digits or '-'", "GPU cluster")
    ... except KerasJobError as exc:
    ...     print(exc.argument)
    compute
"""

from __future__ import annotations

from typing import Iterator

__all__ = ["AccessDenied", "AzureAccessError", "AzureUnreachable", "BackendUnavailable", "DataError", "DeploymentFailed",
           "DeploymentInterrupted", "KerasJobError",
           "NotAuthenticated", "SubmissionError", "TrainingFailed", "ValidationError", "WorkspaceNotFound", "causes",
           "was_interrupted"]


class KerasJobError(Exception):
    """Base class of every error kerasjob raises on purpose."""


class ValidationError(KerasJobError, ValueError):
    """An argument is wrong; nothing was uploaded, written or started.

    The message names the argument, says what was expected and echoes what was
    received: ``Invalid `compute`: expected ... Received: compute='GPU cluster'.``
    """

    def __init__(self, argument: str, expected: str, received: object, hint: str = ""):
        self.argument = argument
        self.expected = expected
        self.received = received
        self.hint = hint
        message = f"Invalid `{argument}`: expected {expected}."
        if hint:
            message += f" {hint}"
        message += f" Received: {argument}={received!r}"
        super().__init__(message)


class DataError(KerasJobError):
    """The training data is missing, malformed or cannot be fetched."""


class SubmissionError(KerasJobError):
    """A backend could not submit the run, or a service call failed for good."""


class BackendUnavailable(KerasJobError, ImportError):
    """An optional SDK is missing; the message carries the exact install line."""

    def __init__(self, backend: str, extra: str, missing: str):
        self.backend = backend
        self.extra = extra
        super().__init__(
            f"The {backend!r} backend needs {missing}, which is not installed. "
            f'Install it with: pip install "kerasjob[{extra}]"'
        )


class TrainingFailed(KerasJobError):
    """The run ended without success; nothing was registered.

    Attributes:
        run_id: the run's id on its backend.
        status: the final status (``failed``, ``canceled``).
        log_tail: the last lines of the driver log.
    """

    def __init__(self, message: str, *, run_id: str, status: str, log_tail: str = ""):
        self.run_id = run_id
        self.status = status
        self.log_tail = log_tail
        text = f"{message} (run {run_id}, status {status})"
        if log_tail:
            text += "\nLast lines of the driver log:\n" + log_tail
        super().__init__(text)


class AzureAccessError(KerasJobError):
    """Azure refused before anything started; the message names the cause and the fix.

    Subclasses say which: :class:`NotAuthenticated`, :class:`WorkspaceNotFound`,
    :class:`AccessDenied`. Nothing was uploaded, created or started.
    """


class NotAuthenticated(AzureAccessError):
    """No usable Azure login (not logged in, expired token, missing service principal)."""


class AzureUnreachable(AzureAccessError):
    """Azure can't be reached from this machine: ``host`` does not resolve (no network, DNS, proxy or firewall)."""

    def __init__(self, message: str, host: str = "") -> None:
        super().__init__(message)
        self.host = host


class WorkspaceNotFound(AzureAccessError):
    """The subscription, resource group or workspace named does not exist (or is not visible)."""


class AccessDenied(AzureAccessError):
    """The login works but lacks permission (HTTP 403) for what was asked."""


class DeploymentFailed(SubmissionError):
    """A model did not come up at its endpoint; no traffic was moved to it.

    Attributes:
        endpoint: the endpoint's name.
        deployment: the deployment that failed (Azure ML), empty for a local server.
        log_tail: the last lines of its log.
    """

    def __init__(self, message: str, *, endpoint: str, deployment: str = "", log_tail: str = ""):
        self.endpoint = endpoint
        self.deployment = deployment
        self.log_tail = log_tail
        text = message
        if log_tail:
            text += "\nLast lines of its log:\n" + log_tail
        super().__init__(text)


class DeploymentInterrupted(KeyboardInterrupt):
    """Ctrl-C while a deployment (or an endpoint's deletion) was waited for; the message says what exists on the
    service and how to remove it.

    A ``KeyboardInterrupt``, so that Ctrl-C stays Ctrl-C (``except Exception`` does not swallow it).
    """


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """``error``, then each exception it was raised from or while handling, once each.

    The Azure SDKs wrap: ``data.get`` raises ``MlException`` from ``ValidationException`` from
    ``ResourceNotFoundError``; ``jobs.stream`` raises ``JobException`` from a ``KeyboardInterrupt``.

    Example:
        >>> try:
        ...     try:
        ...         raise KeyError("inner")
        ...     except KeyError as inner:
        ...         raise RuntimeError("outer") from inner
        ... except RuntimeError as error:
        ...     [type(each).__name__ for each in causes(error)]
        ['RuntimeError', 'KeyError']
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def was_interrupted(error: BaseException) -> bool:
    """Whether ``error`` stands for a Ctrl-C that an SDK turned into an exception of its own."""
    return any(isinstance(each, KeyboardInterrupt) for each in causes(error))
