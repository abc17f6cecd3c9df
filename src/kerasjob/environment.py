"""The job's software environment: a conda file on an Ubuntu base image (TensorFlow or JAX brings its CUDA).

The pure part reads and checks the conda file and names the environment from a
hash of its content, so Azure ML reuses its cached image whenever nothing
changed. kerasjob ships one conda file per Keras backend (``PACKAGED_CONDA_FILES``):
TensorFlow, or JAX without TensorFlow; the name says which. ``build_environment`` turns it into an SDK v1 ``azureml.core.Environment``
and ``build_environment_asset`` into an SDK v2 ``azure.ai.ml.entities.Environment``
(both built offline); ``get_or_create_environment`` creates the v2 asset once.

Example:
    >>> spec = read_conda_file(DEFAULT_CONDA_FILE)
    >>> spec.name.startswith("kerasjob-keras-env-"), spec.keras_backends
    (True, ('tensorflow',))
    >>> read_conda_file(PACKAGED_CONDA_FILES["jax"]).name.startswith("kerasjob-keras-jax-env-")
    True
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ValidationError

__all__ = ["DEFAULT_BASE_IMAGE", "DEFAULT_CONDA_FILE", "ENVIRONMENT_PREFIX", "PACKAGED_CONDA_FILES", "EnvironmentSpec",
           "V1_RUNTIME_REQUIREMENT", "build_environment", "build_environment_asset", "environment_version",
           "get_or_create_environment", "read_conda_file", "tensorflow_version"]

logger = logging.getLogger(__name__)

DEFAULT_CONDA_FILE = Path(__file__).with_name("conda_dependencies.yml")
#: Keras backend -> the conda file kerasjob ships for it (TensorFlow's is the default).
PACKAGED_CONDA_FILES = {"tensorflow": DEFAULT_CONDA_FILE, "jax": Path(__file__).with_name("conda_dependencies_jax.yml")}

# Ubuntu 22.04 with OpenMPI from Azure's curated base images, without a CUDA of its own:
# tensorflow[and-cuda] (or jax[cuda12]) brings CUDA 12 as pip wheels, and a CUDA 11.8 image (the former default)
# puts its libraries on LD_LIBRARY_PATH, where they win over TensorFlow's (libcusolver.so.11,
# libcurand.so.10). The GPU driver comes from the host on Azure's GPU VMs.
DEFAULT_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"

#: What SDK v1 runs add to the conda file: the runtime that downloads or mounts a FileDataset.
#: SDK v2 jobs mount data without it, so it is not in the shared conda file.
V1_RUNTIME_REQUIREMENT = "azureml-defaults==1.62.0"

ENVIRONMENT_PREFIX = "kerasjob-keras-env"
#: Environment name prefix by the Keras backends a conda file lists (TensorFlow's keeps the original name).
_PREFIXES: dict[tuple[str, ...], str] = {("tensorflow",): ENVIRONMENT_PREFIX, ("jax",): "kerasjob-keras-jax-env"}
#: The package that makes each Keras backend, as a conda file's pip requirement names it.
_BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax"}
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class EnvironmentSpec:
    """A checked conda file, the Keras backends it installs and the name its content hashes to."""

    conda_file: Path
    base_image: str
    content_hash: str
    keras_backends: tuple[str, ...] = ("tensorflow",)

    @property
    def prefix(self) -> str:
        """``kerasjob-keras-env`` for TensorFlow, ``kerasjob-keras-jax-env`` for JAX alone."""
        return _PREFIXES.get(self.keras_backends, ENVIRONMENT_PREFIX)

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.content_hash[:12]}"


def _normalise(requirement: str) -> str:
    match = _REQUIREMENT_NAME.match(requirement)
    return match.group(1).lower().replace("_", "-") if match else ""


def _requirements(document: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for entry in document.get("dependencies") or []:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict):
            found.extend(str(item) for item in entry.get("pip") or [])
    return found


def read_conda_file(conda_file: str | Path = DEFAULT_CONDA_FILE, base_image: str = DEFAULT_BASE_IMAGE) -> EnvironmentSpec:
    """Read and check a conda file; raise ``ValidationError`` naming ``conda_file``.

    It must exist, parse as YAML, list Keras and a backend for it (TensorFlow or
    JAX), and must not list ``tensorflow-gpu``, which PyPI removed
    (``tensorflow[and-cuda]`` replaces it).
    """
    import yaml

    path = Path(conda_file)
    if not path.is_file():
        raise ValidationError("conda_file", "an existing conda YAML file", str(path))
    text = path.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError("conda_file", "a conda file that parses as YAML", str(path), hint=f"({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("dependencies"), list):
        raise ValidationError("conda_file", "a conda file with a `dependencies:` list", str(path))
    names = {_normalise(requirement) for requirement in _requirements(document)}
    if "tensorflow-gpu" in names:
        raise ValidationError(
            "conda_file", "no `tensorflow-gpu`", str(path),
            hint="PyPI removed tensorflow-gpu (its last release refuses to build); "
                 "use `tensorflow[and-cuda]`, which brings CUDA 12 on Linux.",
        )
    backends = tuple(backend for backend, package in _BACKEND_PACKAGES.items() if package in names)
    if not backends:
        raise ValidationError("conda_file", "a conda file that lists `tensorflow` or `jax`", str(path),
                              hint="Keras 3 needs a backend to run on.")
    if "keras" not in names:
        raise ValidationError("conda_file", "a conda file that lists `keras`", str(path))
    if not isinstance(base_image, str) or not re.fullmatch(r"[a-z0-9.-]+(:\d+)?/[A-Za-z0-9._/-]+(:[A-Za-z0-9._-]+)?", base_image):
        raise ValidationError("base_image", "a Docker image reference such as registry/name:tag", base_image)
    digest = hashlib.sha256(text.encode() + b"\0" + base_image.encode()).hexdigest()
    return EnvironmentSpec(conda_file=path, base_image=base_image, content_hash=digest, keras_backends=backends)


def tensorflow_version(conda_file: str | Path = DEFAULT_CONDA_FILE) -> str:
    """The TensorFlow version the conda file pins (``==``), else its specifier, else ``"unknown"``.

        >>> tensorflow_version()
        '2.21.0'
    """
    import yaml
    from packaging.requirements import InvalidRequirement, Requirement

    document = yaml.safe_load(Path(conda_file).read_text(encoding="utf-8"))
    for line in _requirements(document if isinstance(document, dict) else {}):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # a conda (not pip) entry such as python=3.11
        if requirement.name.lower() == "tensorflow":
            pins = [spec.version for spec in requirement.specifier if spec.operator == "=="]
            return pins[0] if len(pins) == 1 else str(requirement.specifier) or "unknown"
    return "unknown"


def build_environment(spec: EnvironmentSpec) -> Any:
    """Build the SDK v1 ``azureml.core.Environment`` for ``spec`` (offline; nothing is registered).

    Example:
        >>> env = build_environment(read_conda_file())  # doctest: +SKIP
        >>> env.docker.base_image                        # doctest: +SKIP
        'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04'
    """
    from .optional import AZUREML

    AZUREML.require()
    from azureml.core import Environment

    environment = Environment.from_conda_specification(name=spec.name, file_path=str(spec.conda_file))
    environment.docker.base_image = spec.base_image
    environment.python.conda_dependencies.add_pip_package(V1_RUNTIME_REQUIREMENT)
    return environment


# --- Azure ML v2: a versioned environment asset ----------------------------------------


def environment_version(spec: EnvironmentSpec) -> tuple[str, str]:
    """Name and version of the SDK v2 environment asset for ``spec``; the version hashes conda file + image.

        >>> environment_version(read_conda_file())[0]
        'kerasjob-keras-env'
    """
    return spec.prefix, spec.content_hash[:16]


def build_environment_asset(spec: EnvironmentSpec) -> Any:
    """Build the SDK v2 ``azure.ai.ml.entities.Environment`` for ``spec`` (offline; nothing is created)."""
    from azure.ai.ml.entities import Environment

    name, version = environment_version(spec)
    return Environment(name=name, version=version, image=spec.base_image, conda_file=str(spec.conda_file),
                       description=f"kerasjob training environment ({spec.conda_file.name} on a GPU image)")


def get_or_create_environment(ml_client: Any, spec: EnvironmentSpec) -> str:
    """SDK v2: ``name:version`` of the environment asset for ``spec``, created only when that version is absent."""
    from .retry import azure_call
    from .azure_errors import is_not_found

    name, version = environment_version(spec)
    try:
        azure_call(ml_client.environments.get, name=name, version=version)
    except Exception as error:  # noqa: BLE001 - only "not found" means create
        if not is_not_found(error):
            raise
        azure_call(ml_client.environments.create_or_update, build_environment_asset(spec))
        logger.info("Created environment %s:%s", name, version)
    return f"{name}:{version}"
