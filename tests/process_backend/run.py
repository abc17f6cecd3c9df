"""A process backend's run: the script's child process in its own folder (``outputs/``, ``driver_log.txt``), and the
registry its models are registered in (a JSON file beside the runs, with real aliases)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

from kerasjob.backends import JobRun, ModelVersion, RunStatus
from kerasjob.champion import CHAMPION, ModelRegistry, RegisteredVersion
from kerasjob.home import kerasjob_home

LOG = "driver_log.txt"
#: The run's exit code, written by the child itself as it ends (``RUNNER``), so that any handle reads the outcome.
EXIT_CODE = "exit_code"
#: ``python -c RUNNER SCRIPT ARGS...``: runs the script as ``__main__``, then records how it ended.
RUNNER = """\
import pathlib, runpy, sys, traceback
sys.argv = sys.argv[1:]
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code if isinstance(exit.code, int) else 1
except BaseException:
    traceback.print_exc()
    code = 1
pathlib.Path("exit_code").write_text(str(code))
sys.exit(code)
"""


def backend_home() -> Path:
    """Where this backend keeps its runs and its registry."""
    return kerasjob_home() / "process-backend"


class ProcessRegistry(ModelRegistry):
    """Every version of every model in one JSON file: ``{name: [{version, run_id, source, tags, aliases}]}``."""

    def __init__(self, home: Path) -> None:
        self.path = home / "registry.json"

    def _read(self) -> dict[str, list[dict]]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _write(self, models: dict[str, list[dict]]) -> None:
        staging = self.path.with_suffix(".tmp")
        staging.write_text(json.dumps(models))
        os.replace(staging, self.path)

    def versions(self, name: str) -> list[RegisteredVersion]:
        return [RegisteredVersion(name, each["version"], each["run_id"], each["source"], each["tags"],
                                  tuple(each["aliases"])) for each in self._read().get(name, [])]

    def add(self, name: str, run_id: str, source: str, tags: dict[str, str]) -> ModelVersion:
        models = self._read()
        versions = models.setdefault(name, [])
        versions.append({"version": str(len(versions) + 1), "run_id": run_id, "source": source, "tags": tags,
                         "aliases": []})
        self._write(models)
        return ModelVersion(name, versions[-1]["version"], source)

    def set_alias(self, name: str, version: str, alias: str = CHAMPION) -> None:
        models = self._read()
        for each in models.get(name, []):
            each["aliases"] = [a for a in each["aliases"] if a != alias] + ([alias] if each["version"] == version else [])
        self._write(models)


class ProcessRun(JobRun):
    """The handle of one run: its folder, and its child process while this process started it."""

    backend = "process"

    def __init__(self, folder: Path, process: subprocess.Popen[bytes] | None = None) -> None:
        self.folder, self.process = folder, process

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def url(self) -> str:
        return self.folder.as_uri()

    def _exit_code(self) -> int | None:
        path = self.folder / EXIT_CODE
        return int(path.read_text()) if path.is_file() and path.read_text() else None

    def status(self) -> RunStatus:
        code = self._exit_code()
        if code is None:
            ended = self.process is not None and self.process.poll() is not None
            return RunStatus.FAILED if ended else RunStatus.RUNNING  # ended without a word: killed
        return {0: RunStatus.COMPLETED, -9: RunStatus.CANCELED}.get(code, RunStatus.FAILED)

    def stream_logs(self) -> Iterator[str]:
        deadline = time.monotonic() + 120  # a bound, as every wait has
        while self.status() is RunStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.05)
        yield from self.log_tail(10_000).splitlines()

    def cancel(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            (self.folder / EXIT_CODE).write_text("-9")

    def metrics(self) -> dict[str, float]:
        path = self.folder / "outputs" / "metrics.json"
        return {k: float(v) for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}

    def log_tail(self, lines: int = 20) -> str:
        log = self.folder / LOG
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.is_file() else ""

    def register_model(self, name: str, model_path: str, tags: dict[str, str]) -> ModelVersion:
        return ProcessRegistry(self.folder.parent.parent).add(name, self.id, str(self.folder / model_path), tags)

    def model_registry(self) -> ProcessRegistry:
        return ProcessRegistry(self.folder.parent.parent)

    def download_files(self, prefix: str, destination: str | Path) -> Path:
        shutil.copytree(self.folder / prefix, destination, dirs_exist_ok=True)
        return Path(destination)
