"""What the local endpoint's limits cost: MLflow's scoring app bare beside the same app behind ``RequestLimits``.

    python benchmarks/endpoint_limits.py [--requests 300] [--rows 1]

Saves a tiny pyfunc model (it answers zeros: the model's own time is not what is measured), starts uvicorn twice
on loopback, ``mlflow.pyfunc.scoring_server.app:app`` (what ``mlflow models serve`` runs) and
``kerasjob.serving_app:app`` (the same app behind the body limit and a bearer token), then sends ``--requests``
POSTs of ``--rows`` 784-float rows alternately to each, and prints p50/p95 of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MODEL_CODE = '''
import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class Zeros(PythonModel):
    # Type hints: without them MLflow warns "Add type hints to the `predict` method" under a filter of its own
    # (catch_warnings + simplefilter("once")) that no pytest filter overrides. An array is what {"inputs": ...}
    # brings; MLflow infers no schema from np.ndarray, so it validates nothing.
    def predict(self, context, model_input: np.ndarray, params=None) -> list[int]:
        return [0] * len(model_input)


mlflow.models.set_model(Zeros())
'''
TOKEN = "benchmark-token-0123"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(app: str, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "__pyfunc_model_path__": str(model), "KERASJOB_ENDPOINT_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{app} did not start")


def post(url: str, body: bytes) -> float:
    request = urllib.request.Request(url + "/invocations", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1)
    args = parser.parse_args()
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        code = Path(folder) / "model_code.py"
        code.write_text(MODEL_CODE)
        model = Path(folder) / "model"
        mlflow.pyfunc.save_model(str(model), python_model=str(code))
        servers = {name: serve(app, model) for name, app in (("bare", "mlflow.pyfunc.scoring_server.app:app"),
                                                             ("limits", "kerasjob.serving_app:app"))}
        try:
            body = json.dumps({"inputs": [[0.5] * 784] * args.rows}).encode()
            times: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(10):  # warm both
                for name, (_, url) in servers.items():
                    post(url, body)
            for _ in range(args.requests):
                for name, (_, url) in servers.items():
                    times[name].append(post(url, body))
        finally:
            for process, _ in servers.values():
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
    for name, values in times.items():
        print(f"{name:>6}: p50 {statistics.median(values):.2f} ms, p95 {percentile(values, 0.95):.2f} ms "
              f"({len(values)} requests of {len(body)} bytes)")
    print(f"limits / bare p50: {statistics.median(times['limits']) / statistics.median(times['bare']):.2f}x")


if __name__ == "__main__":
    main()
