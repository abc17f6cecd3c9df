"""The process backend's endpoints: a registered model served in this process (its ``model.json``: a scale)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerasjob.hosting import Endpoint, EndpointHost
from kerasjob.prediction import Prediction
from kerasjob.registration import TrainingResult
from kerasjob.errors import ValidationError

from .run import ProcessRegistry


@dataclass
class ProcessEndpoint(Endpoint):
    name: str
    backend: str
    url: str
    model: str
    scale: float

    def invoke(self, inputs: Any) -> Prediction:
        return Prediction.of([[self.scale * float(x)] for x in inputs])

    def logs(self, lines: int = 50) -> str:
        return ""

    def delete(self) -> None:
        ProcessEndpoints.served.pop(self.name, None)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "url": self.url, "model": self.model, "running": True}


class ProcessEndpoints(EndpointHost):
    served: dict[str, ProcessEndpoint] = {}

    def __init__(self, home: Path) -> None:
        self.registry = ProcessRegistry(home)

    def deploy(self, model: object, name: str, *, instance_type: str, instance_count: int,
               timeout: float | None) -> ProcessEndpoint:
        if isinstance(model, TrainingResult):
            model = f"{model.model_name}:{model.model_version}"
        if not isinstance(model, str) or ":" not in model:
            raise ValidationError("model", "a TrainingResult or 'NAME:VERSION'", model)
        model_name, version = model.split(":")
        found = next((each for each in self.registry.versions(model_name) if each.version == version), None)
        if found is None:
            raise ValidationError("model", "a model of the process backend's registry", model)
        scale = json.loads((Path(found.source) / "model.json").read_text())["scale"]
        endpoint = ProcessEndpoint(name, "process", f"process://{name}", model, scale)
        self.served[name] = endpoint
        return endpoint

    def get(self, name: str) -> ProcessEndpoint | None:
        return self.served.get(name)

    def list(self) -> list[Endpoint]:
        return [self.served[name] for name in sorted(self.served)]
