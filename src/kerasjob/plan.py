"""The dry-run plan: what a submission would do, computed without side effects.

Example:
    >>> from kerasjob import submit_training
    >>> plan = submit_training(backend="local", dry_run=True, data=None)
    >>> plan.script_arguments[:2][0]
    '--data-folder'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .backends.base import Backend
from .environment import read_conda_file
from .job import TrainingJob
from .snapshot import scan_snapshot

__all__ = ["SubmissionPlan", "build_plan"]


@dataclass(frozen=True)
class SubmissionPlan:
    """Everything ``submit_training`` would do, for a person to read before paying for it."""

    backend: str
    experiment: str
    source_dir: str
    entry_script: str
    files: dict[str, int]
    total_bytes: int
    environment_name: str
    environment_hash: str
    base_image: str
    keras_backend: str
    compute: str
    script_arguments: list[str]
    data: str
    model_registration: str
    distribution: str
    timeout: float | None
    #: Where compiled programs are kept between runs (``TrainingJob.compile_cache``).
    compile_cache: str = "on"
    #: Azure ML: the workspace (subscription, resource group, name, where they came from) and the login.
    workspace: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        lines = [
            f"backend:      {self.backend}",
            *([f"workspace:    {self.workspace}"] if self.workspace else []),
            f"experiment:   {self.experiment}",
            f"snapshot:     {len(self.files)} files, {self.total_bytes / 1024:.1f} KiB from {_shown_source(self.source_dir)}",
            *(f"                {path} ({size} B)" for path, size in self.files.items()),
            f"environment:  {self.environment_name} (sha256 {self.environment_hash[:16]}..., {self.base_image})",
            f"keras:        on {self.keras_backend}",
            f"compute:      {self.compute}",
            f"command:      python {self.entry_script} {' '.join(self.script_arguments)}",
            f"data:         {self.data}",
            f"distribution: {self.distribution}",
            f"timeout:      {self.timeout if self.timeout else 'none'}",
            f"compile cache: {self.compile_cache}",
            f"then:         {self.model_registration}",
        ]
        return "\n".join(lines)


def _shown_source(folder: str) -> str:
    """The snapshot's folder as the plan shows it: kerasjob's own trainer by name (not where it is installed), a
    folder inside the current one relative to it, any other as it is (``to_dict`` keeps the full path).

    Example:
        >>> _shown_source(str(Path(__file__).parent / "training"))
        "kerasjob's packaged trainer (kerasjob/training)"
    """
    path = Path(folder).resolve()
    if path == Path(__file__).resolve().parent / "training":
        return "kerasjob's packaged trainer (kerasjob/training)"
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return folder


def build_plan(job: TrainingJob, backend: Backend) -> SubmissionPlan:
    """The plan for running ``job`` on ``backend`` (a ``Backend``); nothing is contacted."""
    snapshot = scan_snapshot(job.source_dir, allow_symlinks=job.allow_symlinks)
    environment = read_conda_file(job.conda_file, job.base_image)
    return SubmissionPlan(
        backend=backend.name, experiment=job.experiment, source_dir=str(job.source_dir),
        entry_script=job.entry_script, files=dict(snapshot.files), total_bytes=snapshot.total_bytes,
        environment_name=backend.environment_name(job), environment_hash=environment.content_hash,
        base_image=environment.base_image, keras_backend=job.keras_backend, compute=backend.describe_compute(job),
        script_arguments=[str(argument) for argument in job.script_arguments(backend.data_placeholder(job))],
        data=backend.describe_data(job),
        model_registration=f"on success only, register {job.model_path} as model {job.model_name!r} "
                           f"(new version) in {backend.registry_description}",
        distribution=repr(job.distribution) if job.distribution else "none (one process)",
        timeout=job.timeout, compile_cache=backend.describe_compile_cache(job), workspace=backend.describe_workspace(),
    )
