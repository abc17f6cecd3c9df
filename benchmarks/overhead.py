"""What kerasjob itself costs: import time, local submit vs the bare script, bad-input rejection, listing.

    python benchmarks/overhead.py [--data-folder ../shared/data/mnist] [--repeats 3] [--epochs 5]
                                  [--only listing] [--runs 60]

(i)   ``import kerasjob``: its own cumulative time from ``-X importtime`` (median).
(ii)  ``submit_training(backend="local")`` end to end (a fresh interpreter, tracking,
      registration included) against ``python keras_mnist.py`` with the same
      arguments in a fresh interpreter; alternating; the ratio of medians.
(iii) rejecting a missing data folder, through the API (in process) and the CLI
      (a fresh ``kerasjob`` process), and which SDKs that path imported.
(iv)  ``kerasjob runs list`` and ``kerasjob models list`` (a fresh process each, median of 5; target < 2 s)
      against a store holding ``--runs`` runs, a sweep and registered versions (made with MLflow's client,
      no training); beside them ``local_runs.list_runs()`` through the SQLite reader kerasjob uses and
      through ``MlflowClient`` (what it used before), each in a fresh interpreter.
(v)   ``kerasjob submit --no-wait`` (a fresh process each, median of 5; target < 2 s): until it prints the run
      id; each run then trains one epoch on its own and registers itself (the benchmark waits for them to end).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "src" / "kerasjob" / "training" / "keras_mnist.py"
HEAVY = ("azureml", "azure.ai.ml", "tensorflow", "keras", "mlflow")


def timed(command: list[str], **kwargs) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - started


def import_ms() -> float:
    output = subprocess.run([sys.executable, "-X", "importtime", "-c", "import kerasjob"], capture_output=True,
                            text=True, check=True).stderr
    line = [line for line in output.splitlines() if line.rstrip().endswith("| kerasjob")][-1]
    return int(line.split("|")[1]) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", choices=("listing", "no-wait"), help="run only section (iv) or (v)")
    parser.add_argument("--runs", type=int, default=60, help="runs in the store that (iv) lists")
    args = parser.parse_args()
    if args.only == "listing":
        return listing(args.runs)
    if args.only == "no-wait":
        return no_wait(args.data_folder)

    imports = [import_ms() for _ in range(7)]
    print(f"(i) import kerasjob: median {statistics.median(imports):.1f} ms (of {len(imports)})")

    direct, submitted = [], []
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "KERASJOB_HOME": home, "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop("MLFLOW_TRACKING_URI", None)
        submit = (f"from kerasjob import submit_training; submit_training(data={args.data_folder!r}, "
                  f"hyperparameters={{'epochs': {args.epochs}}}, show_output=False)")
        timed([sys.executable, "-c", submit], env=env)  # warm-up: creates the MLflow store once
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as workdir:
                direct.append(timed([sys.executable, str(SCRIPT), "--data-folder", args.data_folder,
                                     "--epochs", str(args.epochs)], cwd=workdir, env=env))
            submitted.append(timed([sys.executable, "-c", submit], env=env))
            print(f"    repeat {repeat + 1}: direct {direct[-1]:.2f} s, submit_training {submitted[-1]:.2f} s")
    ratio = statistics.median(submitted) / statistics.median(direct)
    print(f"(ii) {args.epochs} epochs: direct {statistics.median(direct):.2f} s, "
          f"submit_training {statistics.median(submitted):.2f} s, ratio {ratio:.2f}x")

    from kerasjob import ValidationError, submit_training

    started = time.perf_counter()
    try:
        submit_training(data="/nonexistent")
    except ValidationError:
        pass
    api_ms = (time.perf_counter() - started) * 1000
    loaded = [name for name in HEAVY if name in sys.modules]
    cli = [timed_rejection() for _ in range(5)]
    print(f"(iii) bad input rejected: API {api_ms:.1f} ms, CLI {statistics.median(cli) * 1000:.0f} ms "
          f"(whole process, median of 5); SDKs imported: {loaded or 'none'}")
    listing(args.runs)
    return no_wait(args.data_folder)


FILL_STORE = """
import sys
from mlflow.entities import Metric, Param
from kerasjob import tracking
uri = tracking.tracking_uri()
tracking.ensure_store_writable(uri)
client = tracking.client(uri)
experiment = tracking.get_or_create_experiment(client, "keras-mnist", uri)
def run(metrics, params, tags):
    created = client.create_run(experiment, tags={"kerasjob.backend": "local", **tags})
    client.log_batch(created.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                     params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(created.info.run_id, "FINISHED")
    return created.info.run_id
ids = [run({"Final test accuracy": 0.9, "Accuracy": 0.9, "Loss": 0.3}, {"batch_size": 50, "epochs": 5}, {})
       for _ in range(int(sys.argv[1]))]
sweep = run({"best Accuracy": 0.95}, {"primary_metric": "Accuracy"}, {"kerasjob.sweep": "true"})
for _ in range(6):
    run({"Accuracy": 0.9}, {"batch_size": 25}, {"mlflow.parentRunId": sweep})
client.create_registered_model("keras-mnist")
for run_id in ids[:5]:
    client.create_model_version("keras-mnist", f"file:///nowhere/{run_id}/artifacts/outputs/model", run_id=run_id)
client.set_registered_model_alias("keras-mnist", "champion", "3")
"""
LIST_RUNS = "from kerasjob import local_runs; local_runs.list_runs()"
LIST_RUNS_THROUGH_MLFLOW = ("from kerasjob import local_runs, tracking; tracking.SCHEMA_REVISION = 'none'; "
                            "local_runs.list_runs()")


def listing(runs: int) -> int:
    """(iv): how long listing takes, whole process."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "KERASJOB_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        subprocess.run([sys.executable, "-c", FILL_STORE, str(runs)], check=True, env=env, capture_output=True)
        times = {name: statistics.median(timed(command, env=env) for _ in range(5)) for name, command in (
            ("runs list", [sys.executable, "-m", "kerasjob", "runs", "list"]),
            ("models list", [sys.executable, "-m", "kerasjob", "models", "list"]),
            ("list_runs (SQLite reader)", [sys.executable, "-c", LIST_RUNS]),
            ("list_runs (MlflowClient)", [sys.executable, "-c", LIST_RUNS_THROUGH_MLFLOW]))}
    print(f"(iv) listing a store of {runs + 7} runs (whole process, median of 5): "
          f"kerasjob runs list {times['runs list']:.2f} s, kerasjob models list {times['models list']:.2f} s; "
          f"list_runs() {times['list_runs (SQLite reader)']:.2f} s through the SQLite reader, "
          f"{times['list_runs (MlflowClient)']:.2f} s through MlflowClient")
    return 0


def no_wait(data_folder: str) -> int:
    """(v): how long ``submit --no-wait`` takes to hand back the run id."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "KERASJOB_HOME": home, "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop("MLFLOW_TRACKING_URI", None)
        command = [sys.executable, "-m", "kerasjob", "submit", "--data-folder", data_folder, "--epochs", "1",
                   "--no-wait", "--json"]
        times = []
        for _ in range(5):
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            times.append(time.perf_counter() - started)
            run_id = json.loads(done.stdout)["run_id"]  # one run at a time: each start is measured alone
            subprocess.run([sys.executable, "-m", "kerasjob", "runs", "wait", run_id, "--quiet"], env=env,
                           check=True, capture_output=True)
    print(f"(v) kerasjob submit --no-wait (whole process, median of 5): {statistics.median(times):.2f} s "
          f"(max {max(times):.2f} s)")
    return 0


def timed_rejection() -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kerasjob", "submit", "--data-folder", "/nonexistent"],
                          capture_output=True)
    assert done.returncode == 2, done
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
