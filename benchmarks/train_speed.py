"""Training speed: the seed sample's classic method against kerasjob's script, side by side, on one Keras backend.

    python benchmarks/train_speed.py [--keras-backend tensorflow|jax] [--data-folder ../shared/data/mnist]
                                     [--repeats 3] [--epochs 20] [--with-fit] [--without-cache-arms]
                                     [--json-out FILE]

(a) classic: the seed sample's way on Keras 3 -- ``model.fit`` on float64 NumPy
    arrays with one-hot labels, default settings (one step per call, no XLA);
(b) kerasjob: ``keras_mnist.py``'s own model and training (``fused_epoch.py``:
    one compiled program per epoch, data on the device, float32, sparse labels);
(c) with ``--with-fit``, Keras's fast ``fit``: float32 and sparse labels as in (b),
    ``steps_per_execution`` and ``jit_compile`` -- what (b) has to beat to be worth it;
(d) kerasjob with its persistent compilation cache (``compile_cache.py``): "cache cold"
    in a fresh, empty cache folder, then "cache warm", a second process of the same
    job reading that folder (each repetition starts a new folder). (a)-(c) run with
    no cache, as a user's own script does.
Same model (784-300-100-10), optimizer (RMSprop), learning rate, batch size,
epochs and per-epoch evaluation on the test set, on the same backend and
device. One benchmark run alternates the methods; each repetition trains in a
fresh interpreter (so none inherits another's thread pools, caches or memory).
Two times per method: training (compilation included), and the whole process,
measured by this parent from start to exit, split into "start" (interpreter,
imports, data, touching the device once), the first epoch (on JAX mostly
compilation and autotuning), the steady epochs, and the rest (final
evaluation, exit). On JAX nothing here imports TensorFlow.

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
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "kerasjob" / "training"))

from contract import DEFAULT_KERAS_BACKEND, KERAS_BACKENDS  # noqa: E402  (standard library only)

FIT_STEPS_PER_EXECUTION = 100  # Keras fit's fast setting (c): 100 steps per call into the backend
ARMS = {"classic": "classic (seed sample on Keras 3)", "fit": "Keras fit, float32, steps_per_execution, XLA",
        "kerasjob": "kerasjob keras_mnist.py (fused epoch)", "cold": "kerasjob, compile cache cold",
        "warm": "kerasjob, compile cache warm"}
PHASES = ("start", "first_epoch", "steady", "rest")


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


def epoch_clock(keras):
    """A callback recording each epoch's wall time (its ``times`` list)."""
    class Clock(keras.callbacks.Callback):
        times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            Clock.times.append(time.perf_counter() - self.started)

    return Clock()


def classic(keras, data, args) -> tuple[float, float, list[float]]:
    x_train, y_train, x_test, y_test = data
    x_train, x_test = x_train.astype("float64"), x_test.astype("float64")  # the sample divides uint8 by 255.0
    y_train_hot = keras.utils.to_categorical(y_train, 10)
    y_test_hot = keras.utils.to_categorical(y_test, 10)
    model = mlp(keras, args)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=args.lr),
                  metrics=["accuracy"])
    clock = epoch_clock(keras)
    started = time.perf_counter()
    model.fit(x_train, y_train_hot, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              validation_data=(x_test, y_test_hot), callbacks=[clock])
    seconds = time.perf_counter() - started
    return seconds, float(model.evaluate(x_test, y_test_hot, verbose=0)[1]), clock.times


def fast_fit(keras, data, args) -> tuple[float, float, list[float]]:
    x_train, y_train, x_test, y_test = data
    model = mlp(keras, args)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.RMSprop(learning_rate=args.lr),
                  metrics=["accuracy"], steps_per_execution=FIT_STEPS_PER_EXECUTION, jit_compile=True)
    clock = epoch_clock(keras)
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              validation_data=(x_test, y_test), callbacks=[clock])
    seconds = time.perf_counter() - started
    return seconds, float(model.evaluate(x_test, y_test, verbose=0, batch_size=2000)[1]), clock.times


def kerasjob_script(keras, data, args) -> tuple[float, float, list[float]]:
    import keras_mnist

    namespace = argparse.Namespace(first_layer_neurons=args.first, second_layer_neurons=args.second,
                                   learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs, seed=None)
    started = time.perf_counter()
    ends: list[float] = []
    _, _, accuracy = keras_mnist.train_single(keras, namespace, data,
                                              on_epoch=lambda epoch, metrics: ends.append(time.perf_counter()))
    # the first "epoch" holds the model's build and the compilation, as a user's first epoch does
    times = [end - previous for previous, end in zip([started, *ends], ends)]
    return time.perf_counter() - started, accuracy, times


def one_arm(args) -> int:
    """Trains one method in this interpreter (KERAS_BACKEND set by the caller) and prints its outcome as JSON:
    training seconds, accuracy, each epoch's seconds, and when (on the clock of ``BENCH_STARTED``, the parent's
    ``time.time()`` at the start) the process had its imports, data and device ready."""
    from compile_cache import enable_compile_cache

    enable_compile_cache(os.environ["KERAS_BACKEND"])  # KERASJOB_COMPILE_CACHE: a folder for (d), "none" else
    import keras

    from mnist_data import load_mnist

    data = load_mnist(args.data_folder)
    keras.ops.convert_to_numpy(keras.ops.ones((1,)) + 1)  # touch the device once
    ready = time.time() - float(os.environ.get("BENCH_STARTED", time.time()))
    train = {"classic": classic, "fit": fast_fit, "kerasjob": kerasjob_script, "cold": kerasjob_script,
             "warm": kerasjob_script}[args.arm]
    seconds, accuracy, epochs = train(keras, data, args)
    devices = sorted({device.split(":")[0] for device in keras.distribution.list_devices()})
    print(json.dumps({"seconds": seconds, "accuracy": accuracy, "epoch_seconds": epochs, "ready": ready,
                      "devices": ", ".join(devices), "backend": keras.backend.backend(), "train": len(data[0]),
                      "test": len(data[2])}))
    return 0


def run_arm(name: str, environment: dict[str, str], cache: Path) -> dict:
    """One method in a fresh interpreter, timed from outside: its outcome plus ``whole`` and the phases."""
    env = {**environment, "KERASJOB_COMPILE_CACHE": str(cache) if name in ("cold", "warm") else "none"}
    env["BENCH_STARTED"] = repr(time.time())
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--arm", name], env=env,
                          capture_output=True, text=True)
    whole = time.perf_counter() - started
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"the {name} arm failed (exit {done.returncode})")
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    epochs = outcome["epoch_seconds"]
    outcome.update(whole=whole, start=outcome["ready"], first_epoch=epochs[0] if epochs else 0.0,
                   steady=sum(epochs[1:]))
    outcome["rest"] = whole - outcome["start"] - outcome["first_epoch"] - outcome["steady"]
    return outcome


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
    parser.add_argument("--without-cache-arms", action="store_true",
                        help="leave out kerasjob with its compile cache cold and warm")
    parser.add_argument("--only-cache-arms", action="store_true",
                        help="classic and kerasjob with its compile cache cold and warm (not kerasjob without it)")
    parser.add_argument("--json-out", help="also write the medians to this JSON file")
    parser.add_argument("--arm", choices=tuple(ARMS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        return one_arm(args)

    arms = ["classic", *(["fit"] if args.with_fit else []), *([] if args.only_cache_arms else ["kerasjob"]),
            *([] if args.without_cache_arms else ["cold", "warm"])]
    environment = {**os.environ, "KERAS_BACKEND": args.keras_backend}
    for name in ("JAX_COMPILATION_CACHE_DIR", "TF_XLA_FLAGS"):  # (a)-(c) run as a user's own script does
        environment.pop(name, None)
    results: dict[str, list[dict]] = {name: [] for name in arms}
    with tempfile.TemporaryDirectory(prefix="compile-cache-") as scratch:
        for repeat in range(args.repeats):
            cache = Path(scratch) / f"repeat-{repeat}"  # cold: empty; warm: what the cold process wrote
            for name in arms:  # alternate, so drift hits every method alike
                outcome = run_arm(name, environment, cache)
                results[name].append(outcome)
                print(f"repeat {repeat + 1} {name:<9} training {outcome['seconds']:7.2f} s  whole {outcome['whole']:7.2f} s"
                      f" (start {outcome['start']:.2f}, first epoch {outcome['first_epoch']:.2f}, steady "
                      f"{outcome['steady']:.2f}, rest {outcome['rest']:.2f})  accuracy {outcome['accuracy']:.4f}",
                      flush=True)

    flops = flops_per_epoch(outcome["train"], outcome["test"], args.first, args.second) * args.epochs
    on_gpu = "gpu" in outcome["devices"].lower() or "cuda" in outcome["devices"].lower()
    peak = None if on_gpu else args.peak_gflops or peak_gflops()
    print(f"\nKeras on {outcome['backend']}, devices: {outcome['devices']}; {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.repeats} repeats")
    print(f"{'method (medians)':<46} {'train s':>8} {'samples/s':>10} {'accuracy':>9} {'GFLOP/s':>8} "
          f"{'whole s':>8} {'start':>6} {'epoch 1':>8} {'steady':>7} {'rest':>6}")
    summary: dict[str, dict[str, float]] = {}
    for name, outcomes in results.items():
        seconds = statistics.median(o["seconds"] for o in outcomes)
        summary[name] = {"seconds": seconds, "samples_per_second": outcome["train"] * args.epochs / seconds,
                         "accuracy": statistics.median(o["accuracy"] for o in outcomes),
                         "gflops": flops / seconds / 1e9,
                         **{key: statistics.median(o[key] for o in outcomes) for key in ("whole", *PHASES)},
                         "whole_each": [o["whole"] for o in outcomes]}
        row = summary[name]
        print(f"{ARMS[name]:<46} {seconds:8.2f} {row['samples_per_second']:10.0f} {row['accuracy']:9.4f} "
              f"{row['gflops']:8.1f} {row['whole']:8.2f} {row['start']:6.2f} {row['first_epoch']:8.2f} "
              f"{row['steady']:7.2f} {row['rest']:6.2f}")
    ours = "kerasjob" if "kerasjob" in summary else "cold"
    speedup = summary["classic"]["seconds"] / summary[ours]["seconds"]
    print(f"speed-up kerasjob / classic, training: {speedup:.2f}x; accuracy "
          f"{100 * (summary[ours]['accuracy'] - summary['classic']['accuracy']):+.2f} points")
    whole = {name: summary["classic"]["whole"] / summary[name]["whole"] for name in summary if name != "classic"}
    print("speed-up / classic, whole process: " + ", ".join(f"{ARMS[name]} {ratio:.2f}x"
                                                           for name, ratio in whole.items()))
    if "fit" in summary:
        print(f"speed-up kerasjob / Keras fit (fast settings): "
              f"{summary['fit']['seconds'] / summary[ours]['seconds']:.2f}x")
    if peak:
        print(f"kerasjob reaches {flops / summary[ours]['seconds'] / 1e9 / peak:.0%} of the float32 peak "
              f"({peak:.0f} GFLOP/s)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"backend": outcome["backend"], "devices": outcome["devices"],
                                                   "epochs": args.epochs, "repeats": args.repeats,
                                                   "speedup_vs_classic": speedup,
                                                   "whole_process_speedup_vs_classic": whole, "methods": summary},
                                                  indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
