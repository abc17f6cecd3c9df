"""Get or create the Azure ML compute cluster (AmlCompute) a job runs on, through either SDK.

One ``ComputeConfig`` becomes the SDK v1 provisioning configuration
(:func:`provisioning_configuration`) or the SDK v2 ``AmlCompute`` entity
(:func:`aml_compute`), both built offline; :func:`get_or_create_compute` (v1,
a ``Workspace``) and :func:`get_or_create_compute_v2` (v2, an ``MLClient``) reuse
the cluster when it exists and create it otherwise.

Example:
    >>> from kerasjob.job import ComputeConfig
    >>> provisioning_configuration(ComputeConfig(low_priority=True)).vm_priority  # doctest: +SKIP
    'lowpriority'
"""

from __future__ import annotations

import logging
from typing import Any

from ...errors import SubmissionError
from ...job import ComputeConfig
from ...azure_errors import is_not_found

__all__ = ["DEFAULT_TIMEOUT_MINUTES", "NOT_FOUND", "aml_compute", "get_or_create_compute", "get_or_create_compute_v2",
           "provisioning_configuration"]

logger = logging.getLogger(__name__)

#: The seed waits 20 minutes for a new cluster.
DEFAULT_TIMEOUT_MINUTES = 20

#: How ``ComputeTarget(workspace, name)``'s not-found message starts (azureml/core/compute/compute.py).
NOT_FOUND = "ComputeTargetNotFound"


def _tier(config: ComputeConfig) -> str:
    return "low_priority" if config.low_priority else "dedicated"


def provisioning_configuration(config: ComputeConfig) -> Any:
    """The SDK v1 ``AmlCompute`` provisioning configuration for ``config`` (built offline)."""
    from azureml.core.compute import AmlCompute

    return AmlCompute.provisioning_configuration(
        vm_size=config.vm_size, min_nodes=config.min_nodes, max_nodes=config.max_nodes,
        idle_seconds_before_scaledown=config.idle_seconds_before_scaledown,
        vm_priority=_tier(config).replace("_", ""),
    )


def aml_compute(config: ComputeConfig) -> Any:
    """The SDK v2 ``azure.ai.ml.entities.AmlCompute`` for ``config`` (built offline)."""
    from azure.ai.ml.entities import AmlCompute

    return AmlCompute(name=config.name, size=config.vm_size, min_instances=config.min_nodes,
                      max_instances=config.max_nodes, idle_time_before_scale_down=config.idle_seconds_before_scaledown,
                      tier=_tier(config))


def _log_creation(config: ComputeConfig) -> None:
    logger.info("Creating compute target %s (%s, %d-%d nodes)", config.name, config.vm_size,
                config.min_nodes, config.max_nodes)


def _warn_if_different(target: Any, config: ComputeConfig) -> None:
    vm_size = getattr(target, "vm_size", None)
    if vm_size and vm_size.lower() != config.vm_size.lower():
        logger.warning("Reusing compute target %s, whose VM size %s differs from the job's %s",
                       config.name, vm_size, config.vm_size)


def get_or_create_compute(workspace: Any, config: ComputeConfig,
                          timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES) -> Any:
    """SDK v1: the cluster ``config.name`` in ``workspace``, the existing one or a new one once provisioned.

    Raises ``SubmissionError`` when creation fails or does not finish within
    ``timeout_minutes``.
    """
    from azureml.core.compute import ComputeTarget
    from azureml.exceptions import ComputeTargetException

    from ...retry import azure_call

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
        _log_creation(config)
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


def get_or_create_compute_v2(ml_client: Any, config: ComputeConfig) -> Any:
    """SDK v2: the ``AmlCompute`` cluster ``config.name``, created (and waited for) when absent.

    Raises ``SubmissionError`` naming the cluster when creation fails.
    """
    from ...retry import azure_call

    try:
        return azure_call(ml_client.compute.get, config.name)
    except Exception as error:  # noqa: BLE001 - only "not found" means create
        if not is_not_found(error):
            raise
    _log_creation(config)
    try:
        return azure_call(ml_client.compute.begin_create_or_update, aml_compute(config)).result()
    except Exception as error:  # noqa: BLE001 - surfaced with the cluster named
        raise SubmissionError(f"Could not create compute {config.name!r}: {error}") from error
