"""The process that looks after one local run, detached from the caller.

``python -m kerasjob.backends.local_supervisor RUN_DIR`` reads ``launch.json``,
starts the training script as a child in its own process group, copies its
output line by line to ``logs/driver_log.txt``, enforces the timeout, and when
the child ends records the outcome: ``state.json`` in the run directory and the
MLflow run's status (FINISHED, FAILED or KILLED) with the driver log and
``outputs/`` as artifacts. SIGTERM cancels: SIGTERM to the child's group, then
SIGKILL after a grace period. Because the supervisor outlives its caller, a run
submitted with ``wait=False`` is still finished and recorded properly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

LAUNCH_FILE = "launch.json"
STATE_FILE = "state.json"
DRIVER_LOG = "logs/driver_log.txt"
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "canceled": "KILLED"}


def write_json_atomically(path: Path, document: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=1))
    os.replace(temporary, path)


class Supervisor:
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.launch = json.loads((run_dir / LAUNCH_FILE).read_text())
        self.state = {"status": "running", "supervisor_pid": os.getpid(), "child_pid": None,
                      "returncode": None, "reason": "", "started": time.time(), "ended": None}
        self.cancel_reason = ""
        self.child: subprocess.Popen | None = None
        self._killer: threading.Timer | None = None

    def request_cancel(self, reason: str) -> None:
        if self.cancel_reason or self.child is None:
            self.cancel_reason = self.cancel_reason or reason
            return
        self.cancel_reason = reason
        self._signal_group(signal.SIGTERM)
        self._killer = threading.Timer(self.launch.get("grace_seconds", 5.0), self._signal_group, (signal.SIGKILL,))
        self._killer.daemon = True
        self._killer.start()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.child.pid, signum)
        except ProcessLookupError:
            pass

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.request_cancel("canceled"))
        signal.signal(signal.SIGINT, lambda *_: self.request_cancel("canceled"))
        # Import MLflow while the child trains, so recording the outcome is quick.
        preload = threading.Thread(target=lambda: __import__("mlflow"), daemon=True)
        preload.start()
        log_path = self.run_dir / DRIVER_LOG
        env = {**os.environ, **self.launch["env"]}
        with open(log_path, "a", encoding="utf-8", buffering=1) as log:
            self.child = subprocess.Popen(
                self.launch["argv"], cwd=self.run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True,
            )
            self.state["child_pid"] = self.child.pid
            write_json_atomically(self.run_dir / STATE_FILE, self.state)
            if self.cancel_reason:  # canceled before the child existed
                reason, self.cancel_reason = self.cancel_reason, ""
                self.request_cancel(reason)
            timeout = self.launch.get("timeout")
            if timeout:
                timer = threading.Timer(timeout, self.request_cancel, (f"timed out after {timeout:g} s",))
                timer.daemon = True
                timer.start()
            for line in self.child.stdout:
                log.write(line)
            returncode = self.child.wait()
        if self._killer:
            self._killer.cancel()
        self._signal_group(signal.SIGKILL)  # nothing the script started outlives it
        if self.cancel_reason:
            status = "canceled"
        else:
            status = "completed" if returncode == 0 else "failed"
        preload.join()
        self._record_in_mlflow(status)
        self.state.update(status=status, returncode=returncode, reason=self.cancel_reason, ended=time.time())
        write_json_atomically(self.run_dir / STATE_FILE, self.state)
        return 0

    def _record_in_mlflow(self, status: str) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.launch["tracking_uri"])
        run_id = self.launch["run_id"]
        try:
            client.log_artifact(run_id, str(self.run_dir / DRIVER_LOG), artifact_path="logs")
            outputs = self.run_dir / "outputs"
            if any(outputs.iterdir()):
                client.log_artifacts(run_id, str(outputs), artifact_path="outputs")
        finally:
            client.set_terminated(run_id, MLFLOW_STATUS[status])


def main(argv: list[str]) -> int:
    run_dir = Path(argv[1])
    try:
        return Supervisor(run_dir).run()
    except Exception as exc:  # noqa: BLE001 - the outcome must be recorded whatever went wrong
        write_json_atomically(run_dir / STATE_FILE, {"status": "failed", "reason": f"supervisor error: {exc!r}",
                                                      "supervisor_pid": os.getpid(), "ended": time.time()})
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv))
