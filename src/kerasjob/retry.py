"""Retry Azure calls that fail for a transient reason, with exponential backoff.

Transient: throttling (429), server errors (5xx), timeouts, dropped connections.
Anything else (a 404, bad credentials, a validation error) is raised at once.

Example:
    >>> azure_call(lambda: 42)
    42
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import tenacity

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
    logger.warning("Transient Azure error (attempt %d of %d), retrying: %s",
                   state.attempt_number, ATTEMPTS, state.outcome.exception())


#: The waiting policy; tests swap ``wait`` for ``tenacity.wait_none()``.
policy = tenacity.Retrying(
    retry=tenacity.retry_if_exception(is_transient),
    stop=tenacity.stop_after_attempt(ATTEMPTS),
    wait=tenacity.wait_exponential_jitter(initial=1, max=30),
    before_sleep=_log_retry,
    reraise=True,
)


def azure_call(function: Callable[..., T], *args, **kwargs) -> T:
    """Call ``function(*args, **kwargs)``, retrying transient failures."""
    return policy.copy()(function, *args, **kwargs)
