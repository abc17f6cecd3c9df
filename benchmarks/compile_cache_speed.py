"""Where a whole ``keras_mnist.py`` process spends its time, with kerasjob's compile cache cold and warm.

    python benchmarks/compile_cache_speed.py [--keras-backend jax] [--data-folder ../shared/data/mnist]
        [--epochs 20] [--warm 2] [--sweep-trials 4] [--sweep-epochs 5] [--autotune-level 0] [--json-out FILE]

Runs the packaged script itself (``src/kerasjob/training/keras_mnist.py``), each
process in a fresh folder, exactly as a run starts it, and stamps every line it
prints. Scenarios, each with a cache folder of its own:

- ``script``: one process with the cache cold (an empty folder), then ``--warm``
  processes of the same job reading it;
- ``sweep``: ``--sweep-trials`` processes one after the other that differ only in the
  learning rate, as a sweep's trials do (the learning rate is a variable of the
  program, so every trial runs the first trial's programs), with the cache cold,
  then the same trials again with it warm (a later sweep of the same model).
  ``benchmarks/sweep_cache.py`` times kerasjob's own local sweep (MLflow, Optuna);
- ``autotune``: cold and once warm under ``XLA_FLAGS=--xla_gpu_autotune_level=N``
  (GPU only: XLA's CPU compiler does not autotune; skipped with ``--autotune-level -1``).

Each process is split into: start (interpreter, data, Keras import: until the
first epoch's clock starts), the first epoch (model build, device start,
compilation or cache reads, the epoch itself), the steady epochs, and the rest
(saving the model, exit); plus the line the script prints about the cache
(programs read / compiled).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "src" / "kerasjob" / "training" / "keras_mnist.py"
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+) - ([\d.]+)s")
CACHE_LINE = re.compile(r"^Compile cache: .*?(\d+) programs read from the cache, (\d+) compiled and written")


def run_script(data: str, epochs: int, backend: str, cache: Path | None, extra_env: dict[str, str],
               arguments: list[str], timeout: float) -> dict:
    """One process of the script; its phases, the cache counts, and its final accuracy."""
    env = {**os.environ, **extra_env, "PYTHONUNBUFFERED": "1",
           "KERASJOB_COMPILE_CACHE": str(cache) if cache else "none"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    stamps: list[tuple[float, str]] = []
    with tempfile.TemporaryDirectory(prefix="run-") as run_dir:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-u", str(SCRIPT), "--data-folder", data, "--epochs", str(epochs),
                                    "--keras-backend", backend, "--checkpoint-dir", "none", *arguments],
                                   cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            stamps.append((time.perf_counter() - started, line.rstrip("\n")))
            if time.perf_counter() - started > timeout:
                process.kill()
        code = process.wait()
        whole = time.perf_counter() - started
    epochs_at = [(at, float(match.group(3))) for at, line in stamps if (match := EPOCH_LINE.match(line))]
    if code or not epochs_at:
        tail = "\n".join(line for _, line in stamps[-15:])
        raise RuntimeError(f"keras_mnist.py failed (exit {code}):\n{tail}")
    first_at, first_seconds = epochs_at[0]
    start = first_at - first_seconds
    steady = epochs_at[-1][0] - first_at
    outcome = {"whole": whole, "start": start, "first_epoch": first_seconds, "steady": steady,
               "rest": whole - epochs_at[-1][0], "hits": None, "compiled": None, "accuracy": None}
    for _, line in stamps:
        if match := CACHE_LINE.match(line):
            outcome["hits"], outcome["compiled"] = int(match.group(1)), int(match.group(2))
        if line.startswith("Final test accuracy:"):
            outcome["accuracy"] = float(line.split(":")[1])
    return outcome


def show(label: str, outcome: dict) -> None:
    cache = "" if outcome["hits"] is None else f"  cache: {outcome['hits']} read, {outcome['compiled']} compiled"
    print(f"{label:<24} whole {outcome['whole']:6.2f} s = start {outcome['start']:5.2f} + epoch 1 "
          f"{outcome['first_epoch']:5.2f} + steady {outcome['steady']:5.2f} + rest {outcome['rest']:5.2f}"
          f"  accuracy {outcome['accuracy']}{cache}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-backend", default="jax", choices=("jax", "tensorflow"))
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--warm", type=int, default=2, help="warm processes after the cold one")
    parser.add_argument("--sweep-trials", type=int, default=4, help="0: no sweep scenario")
    parser.add_argument("--sweep-epochs", type=int, default=5)
    parser.add_argument("--autotune-level", type=int, default=-1, help="-1: no autotune scenario")
    parser.add_argument("--scenarios", default="script,autotune,sweep")
    parser.add_argument("--timeout", type=float, default=300.0, help="per process")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    chosen = set(args.scenarios.split(","))
    results: dict[str, list[dict]] = {}

    def record(name: str, label: str, outcome: dict) -> None:
        results.setdefault(name, []).append({"label": label, **outcome})
        show(label, outcome)
        if args.json_out:  # after every process: a run cut short keeps what it measured
            Path(args.json_out).write_text(json.dumps(summarise(results), indent=1))

    with tempfile.TemporaryDirectory(prefix="compile-cache-") as scratch:
        if "script" in chosen:
            cache = Path(scratch) / "script"
            for index in range(1 + args.warm):
                record("script", "cold" if index == 0 else f"warm {index}",
                       run_script(args.data_folder, args.epochs, args.keras_backend, cache, {}, [], args.timeout))
        if "sweep" in chosen and args.sweep_trials:
            cache = Path(scratch) / "sweep"
            for sweep in ("cold", "warm"):
                for trial in range(args.sweep_trials):
                    rate = 0.001 * (1 + trial)
                    record(f"sweep_{sweep}", f"sweep {sweep} trial {trial + 1}",
                           run_script(args.data_folder, args.sweep_epochs, args.keras_backend, cache, {},
                                      ["--learning-rate", str(rate)], args.timeout))
        if "autotune" in chosen and args.autotune_level >= 0:
            cache = Path(scratch) / "autotune"
            flags = {"XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                                  f"--xla_gpu_autotune_level={args.autotune_level}".strip()}
            for label in ("cold", "warm"):
                record("autotune", f"autotune {args.autotune_level} {label}",
                       run_script(args.data_folder, args.epochs, args.keras_backend, cache, flags, [], args.timeout))
    summary = summarise(results)
    print()
    for name, values in summary.items():
        if isinstance(values, dict) and "whole_total" in values:
            print(f"{name:<12} processes {values['processes']}, whole {values['whole_total']:.2f} s in all, "
                  f"median {values['whole_median']:.2f} s, first epochs {values['first_epoch_total']:.2f} s")
    if "script" in summary and len(results["script"]) > 1:
        cold, warm = results["script"][0], results["script"][1:]
        print(f"warm / cold whole process: {cold['whole'] / statistics.median(o['whole'] for o in warm):.2f}x "
              f"faster; first epoch {cold['first_epoch']:.2f} s -> "
              f"{statistics.median(o['first_epoch'] for o in warm):.2f} s")
    if "sweep_cold" in summary and "sweep_warm" in summary:
        print(f"sweep of {args.sweep_trials}: cold cache {summary['sweep_cold']['whole_total']:.2f} s, warm cache "
              f"{summary['sweep_warm']['whole_total']:.2f} s")
    return 0


def summarise(results: dict[str, list[dict]]) -> dict:
    summary: dict = {"processes": results}
    for name, outcomes in results.items():
        summary[name] = {"processes": len(outcomes), "whole_total": sum(o["whole"] for o in outcomes),
                         "whole_median": statistics.median(o["whole"] for o in outcomes),
                         "first_epoch_total": sum(o["first_epoch"] for o in outcomes)}
    return summary


if __name__ == "__main__":
    sys.exit(main())
