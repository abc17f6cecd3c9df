"""A 4-trial local sweep of kerasjob (Optuna, MLflow, real trials) with the compile cache cold, then warm.

    python benchmarks/sweep_cache.py [--keras-backend jax] [--data-folder ../shared/data/mnist] [--epochs 2]
                                     [--trials 4] [--json-out FILE]

Three sweeps of the same job over ``learning_rate`` (grid, one trial at a time, so each trial can read what the
one before compiled), each in a fresh ``KERASJOB_HOME``:
- "off": ``compile_cache=False``: every trial compiles;
- "cold": an empty cache folder: the first trial compiles and writes, the others read;
- "warm": the same folder again (a later sweep of the same model): every trial reads.
Per sweep: the wall time from ``tune_training`` to its result, and per trial the first epoch's seconds (as the
trial's log shows it) and what the cache gave (programs read / compiled, from the trial's log).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"^Epoch 1/\d+ - ([\d.]+)s", re.MULTILINE)
CACHE_LINE = re.compile(r"(\d+) programs read from the cache, (\d+) compiled and written")


def one_sweep(args: argparse.Namespace, cache: Path | None, home: Path) -> dict:
    os.environ["KERASJOB_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if cache is not None:
        os.environ["KERASJOB_COMPILE_CACHE"] = str(cache)
    from kerasjob import Sweep, choice, tune_training
    from kerasjob.backends.local import LocalRun

    rates = [0.001 * (1 + index) for index in range(args.trials)]
    sweep = Sweep(space={"learning_rate": choice(*rates)}, sampling="grid", max_total_runs=args.trials,
                  max_concurrent_runs=1, policy=None)
    started = time.perf_counter()
    result = tune_training(data=args.data_folder, keras_backend=args.keras_backend, sweep=sweep, show_output=False,
                           compile_cache=cache is not None, hyperparameters={"epochs": args.epochs})
    seconds = time.perf_counter() - started
    trials = []
    for trial in result.trials:
        log = LocalRun.from_id(trial.run_id).log_tail(400)
        epoch, counts = EPOCH_LINE.search(log), CACHE_LINE.search(log)
        trials.append({"state": trial.state, "first_epoch": float(epoch.group(1)) if epoch else None,
                       "read": int(counts.group(1)) if counts else None,
                       "compiled": int(counts.group(2)) if counts else None})
    return {"seconds": seconds, "trials": trials}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-backend", default="jax", choices=("jax", "tensorflow"))
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="sweep-cache-") as scratch:
        cache = Path(scratch) / "compile"
        for name, folder in (("off", None), ("cold", cache), ("warm", cache)):
            results[name] = one_sweep(args, folder, Path(scratch) / f"home-{name}")
            outcome = results[name]
            print(f"{name:<5} sweep of {args.trials}: {outcome['seconds']:6.1f} s; first epochs "
                  + ", ".join(f"{t['first_epoch']}s" for t in outcome["trials"]) + "; cache read/compiled "
                  + ", ".join(f"{t['read']}/{t['compiled']}" for t in outcome["trials"]), flush=True)
    print(f"sweep with the cache cold: {results['off']['seconds'] / results['cold']['seconds']:.2f}x, warm: "
          f"{results['off']['seconds'] / results['warm']['seconds']:.2f}x the sweep without it "
          f"({args.keras_backend}, {args.epochs} epochs per trial)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
