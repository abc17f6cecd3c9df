"""Get or create the Azure ML compute cluster (AmlCompute) a job runs on.

Example:
    >>> from kerasjob.job import ComputeConfig
    >>> provisioning_configuration(ComputeConfig(low_priority=True)).vm_priority  # doctest: +SKIP
    'lowpriority'
"""

from __future__ import annotations

import logging

from .errors import SubmissionError
from .job import ComputeConfig

logger = logging.getLogger(__name__)

#: The seed waits 20 minutes for a new cluster.
DEFAULT_TIMEOUT_MINUTES = 20


def provisioning_configuration(config: ComputeConfig):
    """The ``AmlCompute`` provisioning configuration for ``config`` (built offline)."""
    from azureml.core.compute import AmlCompute

    return AmlCompute.provisioning_configuration(
        vm_size=config.vm_size, min_nodes=config.min_nodes, max_nodes=config.max_nodes,
        idle_seconds_before_scaledown=config.idle_seconds_before_scaledown,
        vm_priority="lowpriority" if config.low_priority else "dedicated",
    )


#: How ``ComputeTarget(workspace, name)``'s not-found message starts (azureml/core/compute/compute.py).
NOT_FOUND = "ComputeTargetNotFound"


def _warn_if_different(target, config: ComputeConfig) -> None:
    vm_size = getattr(target, "vm_size", None)
    if vm_size and vm_size.lower() != config.vm_size.lower():
        logger.warning("Reusing compute target %s, whose VM size %s differs from the job's %s",
                       config.name, vm_size, config.vm_size)


def get_or_create_compute(workspace, config: ComputeConfig, timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES):
    """The cluster ``config.name``: the existing one, or a new one once it is provisioned.

    Raises ``SubmissionError`` when creation fails or does not finish within
    ``timeout_minutes``.
    """
    from azureml.core.compute import ComputeTarget
    from azureml.exceptions import ComputeTargetException

    from .retry import azure_call

    try:
        target = azure_call(ComputeTarget, workspace=workspace, name=config.name)
        logger.info("Found existing compute target %s", config.name)
        _warn_if_different(target, config)
        return target
    except ComputeTargetException as error:
        # ComputeTarget._get turns a 404 into this message, and any other bad response (403, 5xx)
        # into "Received bad response ...": only the first means "create it".
        if not str(getattr(error, "message", error)).startswith(NOT_FOUND):
            raise
        logger.info("Creating compute target %s (%s, %d-%d nodes)", config.name, config.vm_size,
                    config.min_nodes, config.max_nodes)
    try:
        target = azure_call(ComputeTarget.create, workspace, config.name, provisioning_configuration(config))
        target.wait_for_completion(show_output=False, min_node_count=None, timeout_in_minutes=timeout_minutes)
    except ComputeTargetException as exc:
        raise SubmissionError(f"Creating compute target {config.name!r} failed: {exc}") from exc
    state = getattr(target, "provisioning_state", None)
    if state != "Succeeded":
        errors = getattr(target, "provisioning_errors", None)
        if state == "Failed":
            raise SubmissionError(f"Creating compute target {config.name!r} failed: {errors}")
        raise SubmissionError(f"Compute target {config.name!r} was not ready after {timeout_minutes} minutes "
                              f"(state {state!r}); it may still be provisioning: try again later.")
    return target
