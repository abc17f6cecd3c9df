"""What kerasjob itself costs: import time, local submit vs the bare script, bad-input rejection.

    python benchmarks/overhead.py [--data-folder ../shared/data/mnist] [--repeats 3] [--epochs 5]

(i)   ``import kerasjob``: its own cumulative time from ``-X importtime`` (median).
(ii)  ``submit_training(backend="local")`` end to end (a fresh interpreter, tracking,
      registration included) against ``python keras_mnist.py`` with the same
      arguments in a fresh interpreter; alternating; the ratio of medians.
(iii) rejecting a missing data folder, through the API (in process) and the CLI
      (a fresh ``kerasjob`` process), and which SDKs that path imported.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()

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
    return 0


def timed_rejection() -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kerasjob", "submit", "--data-folder", "/nonexistent"],
                          capture_output=True)
    assert done.returncode == 2, done
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
