"""Retry Azure calls that fail for a transient reason, with exponential backoff.

Transient: throttling (429), server errors (5xx), timeouts, dropped connections.
Anything else (a 404, bad credentials, a validation error) is raised at once.

Reads and idempotent updates go through :func:`azure_call`. A call that *creates*
something (a job, a run, a model version) is never blindly retried: Azure's own
clients already retry the request, and a response lost after the service acted
would make a second GPU job. :func:`create_once` sends a create that carries a
fixed identity and, before sending it again, looks that identity up.

Example:
    >>> azure_call(lambda: 42)
    42
    >>> create_once(lambda: "job-1", find=lambda: None, what="job job-1")
    'job-1'
"""

from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

import tenacity

__all__ = ["ATTEMPTS", "TRANSIENT_STATUS", "azure_call", "create_once", "is_transient", "policy",
           "status_code"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Matched by name so that no SDK has to be imported to recognise its errors.
_TRANSIENT_NAMES = frozenset({"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout",
                              "ServiceRequestError", "ServiceResponseError"})
ATTEMPTS = 5


def status_code(error: BaseException) -> int | None:
    """The HTTP status an SDK error carries, if any."""
    for holder in (error, getattr(error, "response", None)):
        code = getattr(holder, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def is_transient(error: BaseException) -> bool:
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(error).__mro__):
        return True
    return status_code(error) in TRANSIENT_STATUS


def _log_retry(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    logger.warning("Transient Azure error (attempt %d of %d), retrying: %s", state.attempt_number, ATTEMPTS, error)


#: The waiting policy; tests swap ``wait`` for ``tenacity.wait_none()``.
policy = tenacity.Retrying(
    retry=tenacity.retry_if_exception(is_transient),
    stop=tenacity.stop_after_attempt(ATTEMPTS),
    wait=tenacity.wait_exponential_jitter(initial=1, max=30),
    before_sleep=_log_retry,
    reraise=True,
)


def azure_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``function(*args, **kwargs)``, retrying transient failures."""
    return policy.copy()(function, *args, **kwargs)


def create_once(create: Callable[[], T], *, find: Callable[[], T | None], what: str) -> T:
    """Send ``create`` (which must carry a fixed identity) until it lands, but never twice over.

    A transient failure may hide a create the service carried out. So before each
    new attempt ``find()`` looks the identity up: what it finds is returned, and
    only when it returns None is the same create sent again. ``find`` returns None
    for "not there"; its own transient errors are retried like the create's.
    """
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            found = find()
            if found is not None:
                logger.warning("%s was created although its response was lost; using it", what)
                return found
        return create()

    return policy.copy()(attempt)
