"""Training speed: the seed sample's classic method against kerasjob's script, side by side.

    python benchmarks/train_speed.py [--data-folder ../shared/data/mnist] [--repeats 3] [--epochs 20]

(a) classic: the seed sample's way on Keras 3 -- ``model.fit`` on float64 NumPy
    arrays with one-hot labels, default settings (one step per call, no XLA);
(b) kerasjob: ``keras_mnist.py``'s own model and data pipeline (float32, sparse
    labels, tf.data with cache and prefetch, 100 steps per call, XLA).
Same model (784-300-100-10), optimizer (RMSprop), learning rate, batch size,
epochs and per-epoch evaluation on the test set. One benchmark run alternates
the two methods; each repetition trains in a fresh interpreter (so neither
inherits the other's thread pools, caches or memory) and times ``model.fit``
only, not the imports.

GFLOP/s counts the dense layers' multiply-adds as 2 FLOPs each, for the forward
pass and twice that for the backward pass (3x forward in all), over the
training samples, plus the forward pass over the test set each epoch. The
machine's float32 peak is cores x clock x 32 FLOPs/cycle (AVX2: two 8-wide FMA
units) unless --peak-gflops is given; the clock is read from /proc/cpuinfo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "kerasjob" / "training"))

import keras_mnist  # noqa: E402
from mnist_data import load_mnist  # noqa: E402


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


def classic(keras, data, args) -> tuple[float, float]:
    x_train, y_train, x_test, y_test = data
    x_train, x_test = x_train.astype("float64"), x_test.astype("float64")  # the sample divides uint8 by 255.0
    y_train_hot = keras.utils.to_categorical(y_train, 10)
    y_test_hot = keras.utils.to_categorical(y_test, 10)
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(args.first, activation="relu"),
                              keras.layers.Dense(args.second, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=args.lr),
                  metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, y_train_hot, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              validation_data=(x_test, y_test_hot))
    seconds = time.perf_counter() - started
    return seconds, float(model.evaluate(x_test, y_test_hot, verbose=0)[1])


def kerasjob_script(keras, tf, data, args) -> tuple[float, float]:
    namespace = argparse.Namespace(first_layer_neurons=args.first, second_layer_neurons=args.second,
                                   learning_rate=args.lr)
    train, test = keras_mnist.build_datasets(tf, data, args.batch_size, None)
    model = keras_mnist.build_model(keras, namespace)
    started = time.perf_counter()
    model.fit(train, epochs=args.epochs, validation_data=test, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    return seconds, float(model.evaluate(test, verbose=0)[1])


def one_arm(args) -> int:
    """Trains one method in this interpreter and prints its outcome as JSON."""
    import keras
    import tensorflow as tf

    data = load_mnist(args.data_folder)
    seconds, accuracy = classic(keras, data, args) if args.arm == "classic" else kerasjob_script(keras, tf, data, args)
    devices = ", ".join(d.device_type for d in tf.config.list_physical_devices())
    print(json.dumps({"seconds": seconds, "accuracy": accuracy, "devices": devices, "train": len(data[0]),
                      "test": len(data[2])}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--first", type=int, default=300)
    parser.add_argument("--second", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--peak-gflops", type=float, default=None)
    parser.add_argument("--arm", choices=("classic", "kerasjob"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        return one_arm(args)

    results: dict[str, list[tuple[float, float]]] = {"classic": [], "kerasjob": []}
    for repeat in range(args.repeats):
        for name in ("classic", "kerasjob"):  # alternate, so drift hits both alike
            done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--arm", name],
                                  capture_output=True, text=True, check=True)
            outcome = json.loads(done.stdout.strip().splitlines()[-1])
            results[name].append((outcome["seconds"], outcome["accuracy"]))
            print(f"repeat {repeat + 1} {name:<9} {outcome['seconds']:7.2f} s  accuracy {outcome['accuracy']:.4f}",
                  flush=True)

    flops = flops_per_epoch(outcome["train"], outcome["test"], args.first, args.second) * args.epochs
    peak = args.peak_gflops or peak_gflops()
    print(f"\n{args.epochs} epochs, batch {args.batch_size}, {args.repeats} repeats, devices: {outcome['devices']}")
    print(f"{'method':<10} {'median s':>9} {'samples/s':>10} {'accuracy':>9} {'GFLOP/s':>8}")
    medians = {}
    for name, outcomes in results.items():
        seconds = statistics.median(s for s, _ in outcomes)
        accuracy = statistics.median(a for _, a in outcomes)
        medians[name] = seconds
        print(f"{name:<10} {seconds:9.2f} {outcome['train'] * args.epochs / seconds:10.0f} {accuracy:9.4f} "
              f"{flops / seconds / 1e9:8.1f}")
    print(f"speed-up kerasjob / classic: {medians['classic'] / medians['kerasjob']:.2f}x")
    if peak:
        print(f"kerasjob reaches {flops / medians['kerasjob'] / 1e9 / peak:.0%} of the float32 peak ({peak:.0f} GFLOP/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
