"""Training speed: the seed sample's classic method against kerasjob's script, side by side, on one Keras backend.

    python benchmarks/train_speed.py [--keras-backend tensorflow|jax] [--data-folder ../shared/data/mnist]
                                     [--repeats 3] [--epochs 20] [--with-fit] [--json-out FILE]

(a) classic: the seed sample's way on Keras 3 -- ``model.fit`` on float64 NumPy
    arrays with one-hot labels, default settings (one step per call, no XLA);
(b) kerasjob: ``keras_mnist.py``'s own model and training (``fused_epoch.py``:
    one compiled program per epoch, data on the device, float32, sparse labels);
(c) with ``--with-fit``, Keras's fast ``fit``: float32 and sparse labels as in (b),
    ``steps_per_execution`` and ``jit_compile`` -- what (b) has to beat to be worth it.
Same model (784-300-100-10), optimizer (RMSprop), learning rate, batch size,
epochs and per-epoch evaluation on the test set, on the same backend and
device. One benchmark run alternates the methods; each repetition trains in a
fresh interpreter (so none inherits another's thread pools, caches or memory)
and times the training only (compilation included), not the imports. On JAX
nothing here imports TensorFlow.

GFLOP/s counts the dense layers' multiply-adds as 2 FLOPs each, for the forward
pass and twice that for the backward pass (3x forward in all), over the
training samples, plus the forward pass over the test set each epoch. The
machine's float32 peak is cores x clock x FLOPs/cycle (32 with AVX2's two
8-wide FMA units, 64 with AVX-512) unless --peak-gflops is given; the clock is
read from /proc/cpuinfo. No peak is printed for a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "kerasjob" / "training"))

from contract import DEFAULT_KERAS_BACKEND, KERAS_BACKENDS  # noqa: E402  (standard library only)

FIT_STEPS_PER_EXECUTION = 100  # Keras fit's fast setting (c): 100 steps per call into the backend
ARMS = {"classic": "classic (seed sample on Keras 3)", "fit": "Keras fit, float32, steps_per_execution, XLA",
        "kerasjob": "kerasjob keras_mnist.py (fused epoch)"}


def flops_per_epoch(train: int, test: int, first: int, second: int) -> float:
    forward = 2 * (784 * first + first * second + second * 10)
    return 3 * forward * train + forward * test


def peak_gflops() -> float | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 16
    return (os.cpu_count() or 1) * (max(mhz) / 1000 if mhz else 0) * per_cycle or None


def mlp(keras, args, softmax_dtype: str | None = None):
    return keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(args.first, activation="relu"),
                             keras.layers.Dense(args.second, activation="relu"),
                             keras.layers.Dense(10, activation="softmax", dtype=softmax_dtype)])


def classic(keras, data, args) -> tuple[float, float]:
    x_train, y_train, x_test, y_test = data
    x_train, x_test = x_train.astype("float64"), x_test.astype("float64")  # the sample divides uint8 by 255.0
    y_train_hot = keras.utils.to_categorical(y_train, 10)
    y_test_hot = keras.utils.to_categorical(y_test, 10)
    model = mlp(keras, args)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=args.lr),
                  metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, y_train_hot, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              validation_data=(x_test, y_test_hot))
    seconds = time.perf_counter() - started
    return seconds, float(model.evaluate(x_test, y_test_hot, verbose=0)[1])


def fast_fit(keras, data, args) -> tuple[float, float]:
    x_train, y_train, x_test, y_test = data
    model = mlp(keras, args)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=args.lr),
                  metrics=["accuracy"], steps_per_execution=FIT_STEPS_PER_EXECUTION, jit_compile=True)
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              validation_data=(x_test, y_test))
    seconds = time.perf_counter() - started
    return seconds, float(model.evaluate(x_test, y_test, verbose=0, batch_size=2000)[1])


def kerasjob_script(keras, data, args) -> tuple[float, float]:
    import keras_mnist

    namespace = argparse.Namespace(first_layer_neurons=args.first, second_layer_neurons=args.second,
                                   learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs, seed=None)
    started = time.perf_counter()
    _, _, accuracy = keras_mnist.train_single(keras, namespace, data, on_epoch=lambda epoch, metrics: None)
    return time.perf_counter() - started, accuracy


def one_arm(args) -> int:
    """Trains one method in this interpreter (KERAS_BACKEND set by the caller) and prints its outcome as JSON."""
    import keras

    from mnist_data import load_mnist

    data = load_mnist(args.data_folder)
    train = {"classic": classic, "fit": fast_fit, "kerasjob": kerasjob_script}[args.arm]
    seconds, accuracy = train(keras, data, args)
    devices = sorted({device.split(":")[0] for device in keras.distribution.list_devices()})
    print(json.dumps({"seconds": seconds, "accuracy": accuracy, "devices": ", ".join(devices),
                      "backend": keras.backend.backend(), "train": len(data[0]), "test": len(data[2])}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-backend", choices=KERAS_BACKENDS, default=DEFAULT_KERAS_BACKEND)
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--first", type=int, default=300)
    parser.add_argument("--second", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--peak-gflops", type=float, default=None)
    parser.add_argument("--with-fit", action="store_true", help="also time Keras fit with its fast settings")
    parser.add_argument("--json-out", help="also write the medians to this JSON file")
    parser.add_argument("--arm", choices=tuple(ARMS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        return one_arm(args)

    arms = ["classic", *(["fit"] if args.with_fit else []), "kerasjob"]
    environment = {**os.environ, "KERAS_BACKEND": args.keras_backend}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in arms}
    for repeat in range(args.repeats):
        for name in arms:  # alternate, so drift hits every method alike
            done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--arm", name], env=environment,
                                  capture_output=True, text=True)
            if done.returncode:
                sys.stderr.write(done.stderr[-3000:])
                raise SystemExit(f"the {name} arm failed (exit {done.returncode})")
            outcome = json.loads(done.stdout.strip().splitlines()[-1])
            results[name].append((outcome["seconds"], outcome["accuracy"]))
            print(f"repeat {repeat + 1} {name:<9} {outcome['seconds']:7.2f} s  accuracy {outcome['accuracy']:.4f}",
                  flush=True)

    flops = flops_per_epoch(outcome["train"], outcome["test"], args.first, args.second) * args.epochs
    on_gpu = "gpu" in outcome["devices"].lower() or "cuda" in outcome["devices"].lower()
    peak = None if on_gpu else args.peak_gflops or peak_gflops()
    print(f"\nKeras on {outcome['backend']}, devices: {outcome['devices']}; {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.repeats} repeats")
    print(f"{'method':<46} {'median s':>9} {'samples/s':>10} {'accuracy':>9} {'GFLOP/s':>8}")
    summary: dict[str, dict[str, float]] = {}
    for name, outcomes in results.items():
        seconds = statistics.median(s for s, _ in outcomes)
        accuracy = statistics.median(a for _, a in outcomes)
        summary[name] = {"seconds": seconds, "samples_per_second": outcome["train"] * args.epochs / seconds,
                         "accuracy": accuracy, "gflops": flops / seconds / 1e9}
        print(f"{ARMS[name]:<46} {seconds:9.2f} {summary[name]['samples_per_second']:10.0f} {accuracy:9.4f} "
              f"{summary[name]['gflops']:8.1f}")
    speedup = summary["classic"]["seconds"] / summary["kerasjob"]["seconds"]
    print(f"speed-up kerasjob / classic: {speedup:.2f}x; accuracy "
          f"{100 * (summary['kerasjob']['accuracy'] - summary['classic']['accuracy']):+.2f} points")
    if "fit" in summary:
        print(f"speed-up kerasjob / Keras fit (fast settings): "
              f"{summary['fit']['seconds'] / summary['kerasjob']['seconds']:.2f}x")
    if peak:
        print(f"kerasjob reaches {flops / summary['kerasjob']['seconds'] / 1e9 / peak:.0%} of the float32 peak "
              f"({peak:.0f} GFLOP/s)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"backend": outcome["backend"], "devices": outcome["devices"],
                                                   "epochs": args.epochs, "repeats": args.repeats,
                                                   "speedup_vs_classic": speedup, "methods": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
