"""What every backend's endpoints provide: an ``EndpointHost`` (deploy, get, list) behind ``Backend.endpoints()``,
and the ``Endpoint`` handle, with the same verbs on every backend (``url``, ``invoke``, ``logs``, ``delete``).

An endpoint name follows Azure ML's rule on every backend (:data:`ENDPOINT_NAME`), so a name tried locally works
on Azure too.

Example:
    >>> check_endpoint_name("mnist-1")
    'mnist-1'
"""

from __future__ import annotations

import abc
import re
from typing import Any, ClassVar

from .errors import KerasJobError, ValidationError
from .prediction import Prediction

__all__ = ["DEFAULT_INSTANCE_COUNT", "DEFAULT_INSTANCE_TYPE", "ENDPOINT_NAME", "Endpoint", "EndpointHost",
           "check_endpoint_name", "prediction_from"]

#: Azure ML's rule for online endpoint (and deployment) names, as azure-ai-ml checks it before any call
#: (``validate_endpoint_or_deployment_name`` in azure/ai/ml/entities/_endpoint/_endpoint_helpers.py, with
#: ``EndpointConfigurations`` in azure/ai/ml/constants/_endpoint.py): 3-32 characters, a letter first, then
#: letters, digits or '-', ending with a letter or digit. Local endpoints follow the same rule, so a name works on
#: both. Azure also wants the name unique in its region, which only the service can tell.
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
#: Azure ML's defaults for a managed online deployment; the local backend has no use for them.
DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"
DEFAULT_INSTANCE_COUNT = 1


def check_endpoint_name(name: object) -> str:
    """``name`` when it follows :data:`ENDPOINT_NAME`, else ``ValidationError`` (nothing is contacted).

    Example:
        >>> check_endpoint_name("mnist-1")
        'mnist-1'
    """
    if not isinstance(name, str) or not ENDPOINT_NAME.match(name):
        raise ValidationError("endpoint", "3-32 letters, digits or '-', starting with a letter and not ending with "
                              "'-' (Azure ML's rule for online endpoints)", name)
    return name


def prediction_from(outputs: Any) -> Prediction:
    """The ``Prediction`` for what a scoring server answers: rows of class scores (the digits and probabilities),
    values, or a dict of them for a multi-output model."""
    if isinstance(outputs, dict) and all(isinstance(value, list) for value in outputs.values()):
        return Prediction.of(outputs)
    if isinstance(outputs, list) and outputs and all(isinstance(row, dict) for row in outputs):
        outputs = [list(row.values()) for row in outputs]  # a DataFrame answered as records: one row of scores each
    if not isinstance(outputs, list) or not outputs or not all(
            isinstance(row, (int, float)) or isinstance(row, list) for row in outputs):
        raise KerasJobError(f"The endpoint answered {str(outputs)[:200]!r}, not rows of predictions.")
    try:
        return Prediction.of(outputs)
    except (TypeError, ValueError):
        raise KerasJobError(f"The endpoint answered {str(outputs)[:200]!r}, not rows of numbers.") from None


class Endpoint(abc.ABC):
    """A model served at a named endpoint: where it answers, what it serves, and the same verbs on every backend."""

    name: str
    backend: str
    url: str
    model: str

    @abc.abstractmethod
    def invoke(self, inputs: Any) -> Prediction:
        """What the served model answers for ``inputs`` (any form ``predict`` takes for its signature)."""

    @abc.abstractmethod
    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the server's log."""

    @abc.abstractmethod
    def delete(self) -> None:
        """Stop serving and forget the endpoint."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The endpoint as the CLI prints it: at least name, backend, url, model and running."""

    def _repr_html_(self) -> str:
        """In a notebook: the endpoint as a small table, with a link to where it answers."""
        from .html import html_table

        described = self.describe()
        return html_table(f"Endpoint {self.name}", [("backend", self.backend), ("model", self.model),
                                                    ("running", described.get("running")), ("url", self.url)],
                          link=self.url)


class EndpointHost(abc.ABC):
    """Where a backend serves models (``Backend.endpoints()``): deploys, finds and lists its endpoints."""

    #: Whether ``deploy`` takes a server's own options (``port``, ``max_body_bytes``, ``auth_token``): a server
    #: kerasjob starts does; a managed service sets its own.
    server_options: ClassVar[bool] = False

    @abc.abstractmethod
    def deploy(self, model: object, name: str, *, instance_type: str, instance_count: int,
               timeout: float | None) -> Endpoint:
        """Serve ``model`` at endpoint ``name`` (already checked); returns once it answers."""

    @abc.abstractmethod
    def get(self, name: str) -> Endpoint | None:
        """The endpoint called ``name``, or None."""

    @abc.abstractmethod
    def list(self) -> list[Endpoint]:
        """Every endpoint, by name."""
