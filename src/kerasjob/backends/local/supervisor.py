"""The process that looks after one local run, detached from the caller.

``python -m kerasjob.backends.local RUN_DIR`` (``__main__``) reads ``launch.json``,
starts the training script as a child in its own process group, copies its
output line by line to ``logs/driver_log.txt``, enforces the timeout, and when
the child ends records the outcome: ``state.json`` in the run directory and the
MLflow run's status (FINISHED, FAILED or KILLED) with the driver log and
``outputs/`` as artifacts. SIGTERM cancels: SIGTERM to the child's group, then
SIGKILL after a grace period. Because the supervisor outlives its caller, a run
submitted with ``wait=False`` is still finished and recorded properly.

The supervisor creates the MLflow run (the caller never imports MLflow, so
``submit --no-wait`` returns at once) and writes its id to ``run_id.json``. A
script that reads ``MLFLOW_RUN_ID`` is started once the run exists; kerasjob's
own script starts at once and appends its metrics as JSON lines to
``$KERASJOB_METRICS_FILE``, which the supervisor logs to the run as they come
(so the script never imports MLflow on this machine). When the run completes,
the supervisor registers its model (``launch.json``'s ``register``) before it
records the outcome, so a run nobody waits for still ends registered, once.

Faults: each child is started through ``processes.with_parent_death_signal``, so
it dies with the supervisor (``kill -9``, the OOM killer); the children's
identities (pid and start time) are in ``state.json``, and the moment training
ended (``training_ended`` with the return code) is recorded before anything is
sent to MLflow, so that a reader who finds the supervisor gone can stop what is
left, or recover a run whose training completed (``recover``: the metrics not
yet logged, the outcome, the registered model; once). A training process that
fails is started again up to ``max_restarts`` times (it resumes from its own
checkpoint); a metric already logged for a step is not logged again. SIGTERM is
honoured at any moment: before the children start and after they ended too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import tenacity

from ...processes import ProcessIdentity, describe_signal, with_parent_death_signal
from .files import (DRIVER_LOG, LAUNCH_FILE, LOGGED_FILE, METRICS_ENV, RUN_ID_FILE, STATE_FILE, read_json,
                          read_run_id, write_json_atomically)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ..base import JobRun

#: The handle of a run by its folder and tracking URI (``run.LocalRun``), through which a completed run's model is
#: registered: handed in by whoever starts the supervisor (``__main__``) or recovers a run (``LocalRun``), so that
#: this module never imports the handle that imports it.
OpenRun = Callable[[Path, str], "JobRun"]

__all__ = ["MLFLOW_STATUS", "MetricsForwarder", "Supervisor", "copy_lines", "create_mlflow_run", "free_ports", "main",
           "mark_failed_in_mlflow", "read_metrics_lines", "record_outcome", "recover", "store_call",
           "worker_environments"]

T = TypeVar("T")

MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "canceled": "KILLED"}
FORWARD_INTERVAL_SECONDS = 0.5


def copy_lines(stream: Iterable[str], log: TextIO, prefix: str, lock: threading.Lock) -> None:
    """Copies a worker's output into the driver log line by line, each line prefixed with its worker."""
    for line in stream:
        with lock:
            log.write(prefix + line)


def store_call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the MLflow store, retrying a few times: several runs (a sweep's trials, parallel submits) share
    one SQLite file, and a busy database is a reason to wait, not to lose a run's outcome."""
    retrying = tenacity.Retrying(stop=tenacity.stop_after_attempt(6), wait=tenacity.wait_exponential(0.2, max=3),
                                 reraise=True)
    return retrying(function, *args, **kwargs)


def read_metrics_lines(path: Path, position: int) -> tuple[list[dict[str, Any]], int]:
    """The complete JSON lines appended to ``path`` since ``position``, and the new position."""
    try:
        with open(path, "rb") as stream:
            stream.seek(position)
            chunk = stream.read()
    except FileNotFoundError:
        return [], position
    complete = chunk[: chunk.rfind(b"\n") + 1]
    records = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return records, position + len(complete)


def create_mlflow_run(run_dir: Path, launch: dict[str, Any]) -> tuple[MlflowClient, str]:
    """Creates the run's MLflow run (experiment, tags, parameters, dataset), writes ``run_id.json`` and links
    ``runs/<MLflow run id>`` to the run folder, so that either id finds the run."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Param
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from kerasjob.backends.local import tracking

    spec, uri = launch["mlflow_run"], launch["tracking_uri"]
    with tracking.store_lock(uri):  # the first run of a new store creates its tables: one process at a time
        client = store_call(MlflowClient, tracking_uri=uri)
        experiment_id = store_call(tracking.get_or_create_experiment, client, spec["experiment"], uri)
        run = store_call(client.create_run, experiment_id, tags={**spec["tags"], "kerasjob.run_id": run_dir.name})
    run_id = run.info.run_id
    store_call(client.log_batch, run_id, params=[Param(name, value) for name, value in spec["params"].items()])
    if spec.get("dataset"):
        dataset = Dataset(source_type="local", **spec["dataset"])
        store_call(client.log_inputs, run_id, [DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, "training")])])
    write_json_atomically(run_dir / RUN_ID_FILE, {"run_id": run_id})
    (run_dir.parent / run_id).symlink_to(run_dir.name)
    return client, run_id


class MetricsForwarder(threading.Thread):
    """Creates the MLflow run, then logs the script's metric lines to it until told to stop."""

    def __init__(self, run_dir: Path, launch: dict[str, Any], metrics_path: Path | None,
                 created: tuple[MlflowClient, str] | None = None,
                 on_error: Callable[[str], None] = lambda reason: None) -> None:
        super().__init__(daemon=True)
        self.on_error = on_error
        self.run_dir = run_dir
        self.launch = launch
        self.metrics_path = metrics_path
        self.stop = threading.Event()
        self.client: MlflowClient | None = created[0] if created is not None else None
        self.run_id: str | None = created[1] if created is not None else None
        self.error: BaseException | None = None
        logged = read_json(run_dir / LOGGED_FILE) or {}
        self._position = int(logged.get("position", 0))  # what a supervisor before us logged already
        self._logged: set[tuple[str, int]] = set()

    def run(self) -> None:
        try:
            if self.run_id is None:
                self.client, self.run_id = create_mlflow_run(self.run_dir, self.launch)
            while True:
                last_pass = self.stop.is_set()
                if self.client is not None and self.metrics_path is not None:
                    self._forward(self.client, self.run_id, self.metrics_path)
                if last_pass:
                    return
                self.stop.wait(FORWARD_INTERVAL_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - reported by the supervisor with the outcome
            self.error = exc
            self.on_error(f"the MLflow run could not be recorded: {exc}")

    def _forward(self, client: MlflowClient, run_id: str, metrics_path: Path) -> None:
        from mlflow.entities import Metric

        records, position = read_metrics_lines(metrics_path, self._position)
        metrics = []
        for record in records:
            step = record.get("step") or 0
            for key, value in record["metrics"].items():
                if (key, step) in self._logged and record.get("step") is not None:
                    continue  # a restarted process that reports an epoch again: the first report stands
                self._logged.add((key, step))
                metrics.append(Metric(key, float(value), record.get("timestamp", int(time.time() * 1000)), step))
        if metrics:
            store_call(client.log_batch, run_id, metrics=metrics)
        if position != self._position:
            self._position = position  # only once logged, so nothing is skipped
            write_json_atomically(self.run_dir / LOGGED_FILE, {"position": position})


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on loopback right now (the OS picks them)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


def worker_environments(env: dict[str, str], workers: int) -> list[dict[str, str]]:
    """One environment per worker; several workers get a ``TF_CONFIG`` naming them all on loopback."""
    if workers == 1:
        return [env]
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    return [{**env, "TF_CONFIG": json.dumps({"cluster": {"worker": addresses},
                                              "task": {"type": "worker", "index": index}})}
            for index in range(workers)]


class Supervisor:
    """Runs the workers of the run in ``run_dir`` and records how they ended (``state``: a recovering reader's
    copy of ``state.json``, to record the outcome of a run whose supervisor is gone)."""

    def __init__(self, run_dir: Path, open_run: OpenRun, state: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        self.open_run = open_run
        self.launch = json.loads((run_dir / LAUNCH_FILE).read_text())
        self.workers = int(self.launch.get("workers", 1))
        self.max_restarts = int(self.launch.get("max_restarts", 0) or 0)
        self.state: dict[str, Any] = state if state is not None else {
            "status": "running", "supervisor_pid": os.getpid(), "supervisor": None, "child_pids": [],
            "children": [], "workers": self.workers, "returncode": None, "reason": "", "started": time.time(),
            "ended": None, "restarts": 0}
        self.cancel_reason = ""
        self.failure = ""
        self.children: list[subprocess.Popen[str]] = []
        self._killer: threading.Timer | None = None

    def request_cancel(self, reason: str) -> None:
        if self.cancel_reason or not self.children:
            self.cancel_reason = self.cancel_reason or reason
            return
        self.cancel_reason = reason
        self._terminate_children()

    def _on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM/SIGINT: cancel the children; with none running (not started yet, or the outcome being
        recorded) leave at once, so that a slow or unreachable tracking server never keeps us."""
        if any(child.poll() is None for child in self.children):
            self.request_cancel("canceled")
            return
        if self.state.get("training_ended") and self.state.get("returncode") == 0:
            # training completed: the next reader (or `kerasjob runs recover`) records it; nothing is lost
            sys.stderr.write("Stopped by a signal while recording a completed run: it will be recovered.\n")
        else:
            self.state.update(status="canceled", reason=self.cancel_reason or "canceled", ended=time.time())
            self._write_state()
        sys.stderr.flush()
        os._exit(0)

    def _fail(self, reason: str) -> None:
        """Something the run needs broke (its MLflow run): stop the workers; the run ends failed."""
        self.failure = self.failure or reason
        self._terminate_children()

    def _terminate_children(self) -> None:
        """SIGTERM to every worker's process group, SIGKILL after the grace period."""
        if self._killer is not None:
            return
        self._signal_groups(signal.SIGTERM)
        self._killer = threading.Timer(self.launch.get("grace_seconds", 5.0), self._signal_groups, (signal.SIGKILL,))
        self._killer.daemon = True
        self._killer.start()

    def _signal_groups(self, signum: int) -> None:
        for child in self.children:
            try:
                os.killpg(child.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def _write_state(self) -> bool:
        """``state.json`` as ``self.state`` says; False (and the reason in the supervisor's log) when the disk
        refuses it: the reader then finds the supervisor's last words."""
        try:
            write_json_atomically(self.run_dir / STATE_FILE, self.state)
            return True
        except OSError as exc:
            sys.stderr.write(f"could not write state.json: {exc}\n")
            sys.stderr.flush()
            return False

    def _start_workers(self, env: dict[str, str], log: TextIO) -> list[threading.Thread]:
        lock = threading.Lock()
        copiers = []
        argv = with_parent_death_signal(self.launch["argv"])  # no child outlives us (kill -9, OOM)
        for index, worker_env in enumerate(worker_environments(env, self.workers)):
            cwd = self.run_dir if index == 0 else self.run_dir / "workers" / str(index)  # own outputs/ per worker
            cwd.mkdir(parents=True, exist_ok=True)
            child = subprocess.Popen(
                argv, cwd=cwd, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True,
            )
            self.children.append(child)
            prefix = f"[worker {index}] " if self.workers > 1 else ""
            copier = threading.Thread(target=copy_lines, args=(child.stdout, log, prefix, lock), daemon=True)
            copier.start()
            copiers.append(copier)
        identities = [ProcessIdentity.of(child.pid) for child in self.children]
        self.state["child_pids"] = [child.pid for child in self.children]
        self.state["children"] = [each.to_record() for each in identities if each is not None]
        self._write_state()
        return copiers

    def _wait_for_workers(self) -> int:
        """Waits for every worker; the first one that fails stops the others. Returns the run's exit code."""
        while True:
            codes = [child.poll() for child in self.children]
            failed = [(index, code) for index, code in enumerate(codes) if code is not None and code != 0]
            if failed and not self.cancel_reason and not self.failure:
                index, code = failed[0]
                if self.workers > 1:
                    self.failure = f"worker {index} failed with exit code {code}; the other workers were stopped"
                self._terminate_children()
            if all(code is not None for code in codes):
                return failed[0][1] if failed else 0
            time.sleep(0.1)

    def _train(self, env: dict[str, str]) -> int:
        """Runs the workers, again after a failure while ``max_restarts`` allows; the last exit code."""
        with open(self.run_dir / DRIVER_LOG, "a", encoding="utf-8", buffering=1) as log:
            timeout = self.launch.get("timeout")
            if timeout:
                timer = threading.Timer(timeout, self.request_cancel, (f"timed out after {timeout:g} s",))
                timer.daemon = True
                timer.start()
            restarts = 0
            while True:
                copiers = self._start_workers(env, log)
                if self.cancel_reason:  # canceled before the workers existed
                    self._terminate_children()
                returncode = self._wait_for_workers()
                for copier in copiers:
                    copier.join()
                if self._killer:
                    self._killer.cancel()
                self._signal_groups(signal.SIGKILL)  # nothing the script started outlives it
                if returncode == 0 or self.cancel_reason or restarts >= self.max_restarts:
                    return returncode
                restarts += 1
                why = describe_signal(returncode) or f"exit code {returncode}"
                log.write(f"[kerasjob] The training process ended ({why}): restart {restarts} of "
                          f"{self.max_restarts}, from its latest checkpoint.\n")
                self.failure = ""
                self.state["restarts"] = restarts
                self.children, self._killer = [], None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        me = ProcessIdentity.of(os.getpid())
        self.state["supervisor"] = me.to_record() if me else None
        self._write_state()
        env = {**os.environ, **self.launch["env"]}
        created = None
        if self.launch.get("needs_run_id"):  # the script logs to MLflow itself: its run must exist first
            try:
                created = create_mlflow_run(self.run_dir, self.launch)
            except Exception as exc:  # noqa: BLE001 - recorded as the run's outcome
                return self._finish("failed", None, f"the MLflow run could not be created: {exc}")
            env["MLFLOW_RUN_ID"] = created[1]
        metrics_path = Path(env[METRICS_ENV]) if env.get(METRICS_ENV) else None
        forwarder = MetricsForwarder(self.run_dir, self.launch, metrics_path, created, on_error=self._fail)
        forwarder.start()
        returncode = self._train(env)
        # recorded before MLflow hears of it: a supervisor killed from here on leaves a run a reader can recover
        self.state.update(training_ended=time.time(), returncode=returncode)
        self._write_state()
        forwarder.stop.set()
        forwarder.join()  # first: an MLflow run that could not be made fails the run (self.failure)
        if self.cancel_reason:
            status = "canceled"
        else:
            status = "completed" if returncode == 0 and not self.failure else "failed"
        reason = self.cancel_reason or self.failure or describe_signal(returncode)
        if forwarder.client is not None and forwarder.run_id is not None:
            return self.record(forwarder.client, forwarder.run_id, status, returncode, reason)
        return self._finish(status, returncode, reason)

    def record(self, client: MlflowClient, run_id: str, status: str, returncode: int | None, reason: str) -> int:
        """The outcome, everywhere: MLflow's run status and artifacts, the registered model, ``state.json``."""
        self._record_in_mlflow(client, run_id, status)
        if status == "completed" and self.launch.get("register"):
            self._register(client, run_id)
        elif status == "completed":
            self.state["metrics"] = dict(store_call(client.get_run, run_id).data.metrics)
        return self._finish(status, returncode, reason)

    def _register(self, client: MlflowClient, run_id: str) -> None:
        """The completed run's model, registered once (``register_run_model`` finds an earlier registration)."""
        from ...registration import register_run_model

        try:
            self.state["metrics"] = dict(store_call(client.get_run, run_id).data.metrics)
            model = register_run_model(self.open_run(self.run_dir, self.launch["tracking_uri"]), **self.launch["register"])
            self.state["model"] = {"name": model.name, "version": model.version, "source": model.source}
        except Exception as exc:  # noqa: BLE001 - the run completed; whoever waits registers it or reports this
            self.state["registration_error"] = repr(exc)

    def _finish(self, status: str, returncode: int | None, reason: str) -> int:
        self.state.update(status=status, returncode=returncode, reason=reason, ended=time.time())
        if self._write_state():
            return 0
        # a full disk: a smaller record may still fit; else the reader finds us gone and our last words
        self.state = {key: self.state.get(key) for key in ("status", "returncode", "reason", "ended", "supervisor",
                                                            "supervisor_pid", "children", "workers")}
        return 0 if self._write_state() else 1

    def _record_in_mlflow(self, client: MlflowClient, run_id: str, status: str) -> None:
        try:
            store_call(client.log_artifact, run_id, str(self.run_dir / DRIVER_LOG), artifact_path="logs")
            outputs = self.run_dir / "outputs"
            if outputs.is_dir() and any(outputs.iterdir()):
                store_call(client.log_artifacts, run_id, str(outputs), artifact_path="outputs")
        finally:
            store_call(client.set_terminated, run_id, MLFLOW_STATUS[status])


def _client(launch: dict[str, Any]) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    uri = launch["tracking_uri"]
    return store_call(MlflowClient, tracking_uri=uri, registry_uri=uri)


def recover(run_dir: Path, state: dict[str, Any], open_run: OpenRun) -> dict[str, Any]:
    """Record a run whose training completed but whose supervisor is gone: the metrics not logged yet, the
    outputs, the FINISHED status and the registered model (once: ``register_run_model`` finds an earlier
    version). Returns the new state."""
    supervisor = Supervisor(run_dir, open_run, state)
    run_id = read_run_id(run_dir)
    if run_id is None:
        client, run_id = create_mlflow_run(run_dir, supervisor.launch)
    else:
        client = _client(supervisor.launch)
    metrics_file = supervisor.launch["env"].get(METRICS_ENV)
    if metrics_file:
        forwarder = MetricsForwarder(run_dir, supervisor.launch, Path(metrics_file), (client, run_id))
        forwarder._forward(client, run_id, Path(metrics_file))
    state["recovered"] = True
    supervisor.record(client, run_id, "completed", state.get("returncode") or 0, "")
    return supervisor.state


def mark_failed_in_mlflow(run_dir: Path, launch: dict[str, Any]) -> None:
    """A run that ended without its supervisor: FAILED in MLflow too, with its driver log (when it has a run)."""
    run_id = read_run_id(run_dir)
    if run_id is None:
        return
    client = _client(launch)
    try:
        store_call(client.log_artifact, run_id, str(run_dir / DRIVER_LOG), artifact_path="logs")
    finally:
        store_call(client.set_terminated, run_id, "FAILED")


def record_outcome(run_dir: Path, state: dict[str, Any]) -> None:
    """``state.json`` as ``state`` says (used by readers settling a run whose supervisor is gone)."""
    write_json_atomically(run_dir / STATE_FILE, state)


def main(argv: list[str], open_run: OpenRun) -> int:
    """Supervise the run in folder ``argv[1]`` to its end (``python -m kerasjob.backends.local RUN_DIR``)."""
    run_dir = Path(argv[1])
    try:
        return Supervisor(run_dir, open_run).run()
    except Exception as exc:  # noqa: BLE001 - the outcome must be recorded whatever went wrong
        try:
            write_json_atomically(run_dir / STATE_FILE, {"status": "failed", "reason": f"supervisor error: {exc!r}",
                                                          "supervisor_pid": os.getpid(), "ended": time.time()})
        except OSError as write_error:  # a full disk: the reader finds us gone and reads these last words
            sys.stderr.write(f"supervisor error: {exc!r}; could not write state.json: {write_error}\n")
        raise

