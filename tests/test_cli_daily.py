"""The command in daily use: a --no-wait run that ends registered once with nobody waiting, readable listings,
one status vocabulary, --version, and output into a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from kerasjob import RunStatus, __version__
from kerasjob.backends.local import LocalRun
from kerasjob.cli import main
from kerasjob.local_registry import MlflowModelRegistry

FAST = ["--epochs", "1", "--first-layer-neurons", "16", "--second-layer-neurons", "8"]
STATUS_WORDS = {status.value for status in RunStatus}


def _until_ended(run_id: str, seconds: float = 180) -> LocalRun:
    run = LocalRun.from_id(run_id)
    deadline = time.monotonic() + seconds
    while not run.status().is_final and time.monotonic() < deadline:
        time.sleep(0.2)
    return run


@pytest.mark.slow
def test_a_no_wait_run_ends_registered_exactly_once_with_nobody_waiting(tiny_mnist, capsys):
    assert main(["submit", "--data-folder", str(tiny_mnist), *FAST, "--no-wait", "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert set(started) == {"run_id", "status", "metrics", "model", "backend", "workers", "url"}
    assert started["status"] in STATUS_WORDS and started["model"] is None

    run = _until_ended(started["run_id"])  # nobody calls wait: the supervisor registers on its own
    assert run.status() is RunStatus.COMPLETED
    versions = MlflowModelRegistry().versions("keras-mnist")
    assert [version.tags["run_id"] for version in versions] == [started["run_id"]]

    assert main(["runs", "wait", started["run_id"], "--quiet"]) == 0  # waiting afterwards registers nothing new
    assert "version 1 registered" in capsys.readouterr().out
    assert main(["submit", "--data-folder", str(tiny_mnist), *FAST, "--json"]) == 0
    waited = json.loads(capsys.readouterr().out)
    assert set(waited) == set(started)  # one key set with and without --no-wait
    assert waited["model"]["version"] == "2"
    assert len(MlflowModelRegistry().versions("keras-mnist")) == 2

    assert main(["runs", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["RUN", "ID", "NAME", "STATUS", "STARTED", "DURATION", "METRIC", "BACKEND"]
    assert sum(started["run_id"] in line and "completed" in line for line in table) == 1
    assert main(["runs", "list", "-o", "json", "--limit", "1"]) == 0
    [newest] = json.loads(capsys.readouterr().out)
    assert newest["run_id"] == waited["run_id"] and newest["status"] == "completed"

    assert main(["runs", "show", started["run_id"]]) == 0
    shown = capsys.readouterr().out
    assert "status:" in shown and "completed" in shown and "FINISHED" not in shown
    assert main(["models", "show", "keras-mnist", "-o", "json"]) == 0
    model = json.loads(capsys.readouterr().out)
    assert [version["run_id"] for version in model["versions"]] == [started["run_id"], waited["run_id"]]
    assert main(["models", "alias", "keras-mnist", "2"]) == 0
    assert main(["models", "list", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])[0]["champion_version"] == "2"


def test_version_and_a_closed_pipe_end_quietly(isolated_home):
    assert subprocess.run([sys.executable, "-m", "kerasjob", "--version"], capture_output=True,
                          text=True).stdout.strip() == f"kerasjob {__version__}"
    # `kerasjob runs list -o json | head -0`: the reader is gone before the first byte is written.
    reader, writer = os.pipe()
    os.close(reader)
    done = subprocess.run([sys.executable, "-m", "kerasjob", "runs", "list", "-o", "json"], stdout=writer,
                          stderr=subprocess.PIPE, text=True)
    os.close(writer)
    assert done.returncode == 0 and done.stderr == ""
