"""An Azure ML SDK v1 run: its handle (``AzureMLRun``: status, logs, metrics, files, its best trial for a
HyperDrive run) and the workspace's model registry, which has no aliases (``AzureMLModelRegistry``).

Example:
    >>> new_run_id("mnist").startswith("mnist_")
    True
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from ...champion import ALIAS_TAG_VALUE, RegisteredVersion, TaggedAliasRegistry, tag_aliases
from ...retry import azure_call, create_once
from .._azure import STATUS_MAP, SweepBest, best_of, map_status
from ..base import JobRun, ModelVersion, RunStatus, safe_destination

__all__ = ["DEFAULT_POLL_SECONDS", "DRIVER_LOG_MARKERS", "STATUS_MAP", "AzureMLModelRegistry", "AzureMLRun", "last_metric",
           "new_run_id"]

logger = logging.getLogger(__name__)

#: Seconds between two reads of a running run's logs (tests set 0).
DEFAULT_POLL_SECONDS = 5.0
#: The logs that hold the script's output (v1 images name them either way).
DRIVER_LOG_MARKERS = ("std_log", "driver_log")


class AzureMLModelRegistry(TaggedAliasRegistry):
    """A workspace's model registry through SDK v1, which has no aliases: the champion carries the tag
    ``champion=true``, moved with ``Model.update_tags_properties`` (azureml/core/model.py: one PATCH of
    ``/kvTags`` per version)."""

    def __init__(self, workspace: Any) -> None:
        self.workspace = workspace

    def _models(self, name: str, run_id: str | None = None) -> list[Any]:
        from azureml.core import Model

        return sorted(azure_call(Model.list, self.workspace, name=name, run_id=run_id), key=lambda m: m.version)

    @staticmethod
    def _version(model: Any) -> RegisteredVersion:
        tags = dict(model.tags or {})
        return RegisteredVersion(model.name, str(model.version), model.run_id, model.url or "", tags,
                                 tag_aliases(tags))

    def entities(self, name: str) -> list[tuple[RegisteredVersion, Any]]:
        return [(self._version(model), model) for model in self._models(name)]

    def registered_from(self, name: str, run_id: str) -> RegisteredVersion | None:
        found = self._models(name, run_id)
        return self._version(found[-1]) if found else None

    def retag(self, entity: Any, tag: str, *, add: bool) -> None:
        if add:
            azure_call(entity.update_tags_properties, add_tags={tag: ALIAS_TAG_VALUE})
        else:
            azure_call(entity.update_tags_properties, remove_tags=[tag])


def last_metric(run: Any, name: str) -> float | None:
    """The last value ``run`` (an ``azureml.core`` run) logged for metric ``name``; None when absent or NaN."""
    value = azure_call(run.get_metrics).get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def new_run_id(experiment_name: str) -> str:
    """A run id fixed before the first submit, as ``Experiment.submit`` would make one."""
    return f"{experiment_name}_{int(time.time())}_{uuid.uuid4().hex[:8]}"


class AzureMLRun(JobRun):
    """Handle on an ``azureml.core.Run``."""

    backend = "azureml"

    def __init__(self, run: Any, poll_seconds: float | None = None) -> None:
        self.run = run
        self.poll_seconds = DEFAULT_POLL_SECONDS if poll_seconds is None else poll_seconds

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def url(self) -> str:
        return self.run.get_portal_url()

    def status(self) -> RunStatus:
        return map_status(azure_call(self.run.get_status))

    def _driver_log(self) -> list[str]:
        details = azure_call(self.run.get_details_with_logs)
        logs = details.get("logFiles") or {}
        for name in sorted(logs):
            if any(marker in name for marker in DRIVER_LOG_MARKERS):
                return str(logs[name]).splitlines()
        return []

    def stream_logs(self) -> Iterator[str]:
        seen = 0
        while True:
            final = self.status().is_final
            lines = self._driver_log()
            yield from lines[seen:]
            seen = max(seen, len(lines))
            if final:
                return
            time.sleep(self.poll_seconds)

    @property
    def is_sweep(self) -> bool:
        """Whether this is a HyperDrive parent (``Run.get`` hands one back as a ``HyperDriveRun``)."""
        try:
            from azureml.train.hyperdrive import HyperDriveRun
        except ImportError:  # azureml-train-core absent: no run can be one
            return False
        return isinstance(self.run, HyperDriveRun)

    def cancel(self) -> None:
        """Cancel on the service. A HyperDrive parent goes through ``HyperDriveRun.cancel``, the HyperDrive
        service's ``cancel_experiment``, which stops its trials too; ``Run.cancel`` would only post a "canceled"
        event to run history and leave the trials running (azureml/train/hyperdrive/run.py, azureml/core/run.py).
        Any other run: ``Run.cancel`` is what ``ScriptRun.cancel`` does for a remote target, without
        first rebuilding the run's ``RunConfiguration`` from the service, which fails for a run this process
        did not submit (``attach``): azureml/core/script_run.py, a None project path in runconfig.py."""
        from azureml.core import Run

        if self.is_sweep:
            azure_call(self.run.cancel)
        else:
            azure_call(Run.cancel, self.run)

    def sweep_best(self) -> SweepBest | None:
        """For a HyperDrive parent: its best completed trial by the sweep's own primary metric and goal
        (``HyperDriveConfig._primary_metric_config``, rebuilt from the parent's system tags by ``Run.get``) and
        the values HyperDrive gave it (``get_hyperparameters``); None for any other run. A parent holds no
        ``outputs/model``: its ``register_model`` raises ``ModelPathNotFoundException``."""
        if not self.is_sweep:
            return None
        config = self.run.hyperdrive_config._primary_metric_config
        metric, goal = str(config["name"]), str(config["goal"]).lower()
        children = {child.id: child for child in azure_call(lambda: list(self.run.get_children()))}
        states = {trial: str(azure_call(child.get_status)) for trial, child in children.items()}
        scored = [(last_metric(children[trial], metric), trial) for trial, state in states.items()
                  if state == "Completed"]
        best = best_of(self.id, scored, goal, states)
        sampled = json.loads(azure_call(self.run.get_hyperparameters).get(best) or "{}")
        parameters = {flag.lstrip("-").replace("-", "_"): value for flag, value in sampled.items()}
        value = next(value for value, trial in scored if trial == best)
        return SweepBest(AzureMLRun(children[best], poll_seconds=self.poll_seconds), metric, goal, value, parameters)

    def metrics(self) -> dict[str, float]:
        values = azure_call(self.run.get_metrics)
        return {name: value[-1] if isinstance(value, list) else value for name, value in values.items()}

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._driver_log()[-lines:])

    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        """Register a version of ``name`` from this run; a version this run already registered is reused."""
        model = create_once(lambda: self.run.register_model(model_name=name, model_path=model_path, tags=tags),
                            find=lambda: self.model_registry().registered_from(name, self.id),
                            what=f"model {name} from run {self.id}")
        return ModelVersion(name=model.name, version=str(model.version), source=f"{self.id}/{model_path}")

    def model_registry(self) -> "AzureMLModelRegistry":
        """The workspace's model registry, where the champion alias is a tag (``AzureMLModelRegistry``)."""
        return AzureMLModelRegistry(self.run.experiment.workspace)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        """Download the run's files under ``prefix`` (refusing any that would land outside)."""
        root = Path(destination)
        for name in azure_call(self.run.get_file_names):
            if name.startswith(prefix.rstrip("/") + "/"):
                target = safe_destination(root, name[len(prefix.rstrip("/")) + 1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                azure_call(self.run.download_file, name=name, output_file_path=str(target))
        return root
