"""Training speed of the generic trainer against Keras's fast ``fit``, side by side in one run, and keras_mnist.py
before/after its move onto the generic trainer.

    python benchmarks/fit_speed.py [--keras-backend tensorflow|jax] [--data-folder ../shared/data/mnist]
                                   [--epochs 3] [--conv-epochs 2] [--repeats 1] [--old-commit 296877f]

Arms, each timed in a fresh interpreter (training only, compilation included, imports and data loading not):
- mlp/fit:      the seed MLP (784-300-100-10, RMSprop, batch 50) with ``fit``'s fast settings: float32 data,
                ``jit_compile=True``, ``steps_per_execution=FIT_STEPS``, validation on the test set every epoch;
- mlp/generic:  the same model and data through ``fused_epoch.make_trainer`` (what keras_fit.py runs);
- conv/fit, conv/generic: Conv2D 16 -> MaxPooling -> Flatten -> Dense 10 on 28 x 28 x 1, batch 128, Adam;
- mnist/before: ``keras_mnist.train_single`` as of ``--old-commit`` (its own fused loop, copied to a temp dir);
- mnist/after:  ``keras_mnist.train_single`` now (on the generic trainer, no checkpoints).
Ratios are fit/generic and before/after seconds (> 1: the generic trainer is faster), wall-clock and CPU time
(user + system of the arm's process: steadier than wall-clock when other work shares the CPU). The arms
alternate, so drift on a shared CPU hits each alike; the test accuracy after the last epoch is printed beside each.

Figures (2026-12-04 19:55-20:11, commit e94bcaf, the 2-core CPU shared with other work, load 4-6; TensorFlow
2.21, Keras 3.15, JAX 0.10; medians; wall ratios understate the single-threaded fused epoch on a loaded machine):

    python benchmarks/fit_speed.py --repeats 3                      # TensorFlow, MLP 3 epochs, conv 2
      mlp/fit 9.54 s (7.45 s CPU) 0.9758 | mlp/generic 8.44 s (5.25 s CPU) 0.9764  -> 1.13x wall, 1.42x CPU
      conv/fit 32.02 s (23.03 s CPU) 0.9635 | conv/generic 8.14 s (5.02 s CPU) 0.9685 -> 3.93x wall, 4.59x CPU
      mnist/before 9.26 s (5.64 s CPU) 0.9764 | mnist/after 9.57 s (5.28 s CPU) 0.9767 -> 0.97x wall, 1.07x CPU
    python benchmarks/fit_speed.py --arms mlp/fit,mlp/generic --epochs 8 --repeats 2
      mlp/fit 23.19 s (17.24 s CPU) 0.9797 | mlp/generic 19.29 s (11.49 s CPU) 0.9796 -> 1.20x wall, 1.50x CPU
    python benchmarks/fit_speed.py --keras-backend jax --arms mlp/fit,mlp/generic,conv/fit,conv/generic --repeats 2
      MLP 0.67x wall, 0.99x CPU; conv net 1.26x wall, 1.27x CPU (accuracy 0.9776/0.9773, 0.9676/0.9645)

The TF conv net was 0.65x before the conv epoch left XLA (benchmarks/fused_epoch_probe.py says why).
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
TRAINING = ROOT / "src" / "kerasjob" / "training"
FIT_STEPS = 100
ARMS = ("mlp/fit", "mlp/generic", "conv/fit", "conv/generic", "mnist/before", "mnist/after")
OLD_FILES = ("__init__.py", "contract.py", "fused_epoch.py", "keras_mnist.py", "mlflow_model.py", "mnist_data.py",
             "multi_worker.py")


def build(keras, kind: str, fast_fit: bool):
    extra = {"jit_compile": True, "steps_per_execution": FIT_STEPS} if fast_fit else {}
    if kind == "mlp":
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(300, activation="relu"),
                                  keras.layers.Dense(100, activation="relu"), keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.RMSprop(0.001), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], **extra)
    else:
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(16, 3, activation="relu"),
                                  keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], **extra)
    return model


def one_arm(args) -> dict:
    import keras

    sys.path.insert(0, str(args.old_dir if args.arm == "mnist/before" else TRAINING))
    from mnist_data import load_mnist

    x_train, y_train, x_test, y_test = load_mnist(args.data_folder)
    kind, method = args.arm.split("/")
    epochs = args.conv_epochs if kind == "conv" else args.epochs
    if kind == "conv":
        x_train, x_test = x_train.reshape(-1, 28, 28, 1), x_test.reshape(-1, 28, 28, 1)
    batch = 128 if kind == "conv" else 50
    if kind == "mnist":
        import keras_mnist

        namespace = argparse.Namespace(first_layer_neurons=300, second_layer_neurons=100, learning_rate=0.001,
                                       batch_size=50, epochs=epochs, seed=None)
        started, cpu = time.perf_counter(), time.process_time()
        _, _, accuracy = keras_mnist.train_single(keras, namespace, (x_train, y_train, x_test, y_test),
                                                  on_epoch=lambda epoch, metrics: None)
        return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "accuracy": accuracy}
    model = build(keras, kind, fast_fit=method == "fit")
    started, cpu = time.perf_counter(), time.process_time()
    if method == "fit":
        history = model.fit(x_train, y_train, batch_size=batch, epochs=epochs, verbose=0,
                            validation_data=(x_test, y_test)).history
        accuracy = history["val_accuracy"][-1]
    else:
        from fused_epoch import make_trainer

        trainer = make_trainer(model, x_train, y_train, validation=(x_test, y_test), batch_size=batch)
        for epoch in range(epochs):
            logs = trainer.train_epoch(epoch)
        accuracy = logs["val_accuracy"]
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "accuracy": float(accuracy)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the MLP arms (mlp, mnist)")
    parser.add_argument("--conv-epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--old-commit", default="296877f", help="keras_mnist.py 'before' (its training/ folder)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--json-out")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--old-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(one_arm(args)))
        return 0

    arms = [arm for arm in args.arms.split(",") if arm]
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as old_dir:
        if any(arm.startswith("mnist/") for arm in arms):
            for name in OLD_FILES:
                text = subprocess.run(["git", "show", f"{args.old_commit}:src/kerasjob/training/{name}"], cwd=ROOT,
                                      capture_output=True, text=True, check=True).stdout
                Path(old_dir, name).write_text(text)
        environment = {**os.environ, "KERAS_BACKEND": args.keras_backend}
        for _ in range(args.repeats):
            for arm in arms:  # alternate, so drift hits every arm alike
                done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--arm", arm, "--old-dir", old_dir],
                                      env=environment, capture_output=True, text=True)
                if done.returncode:
                    sys.stderr.write(done.stderr[-3000:])
                    raise SystemExit(f"the {arm} arm failed (exit {done.returncode})")
                results[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
                last = results[arm][-1]
                print(f"  {arm:13s} {last['seconds']:7.2f} s ({last['cpu']:.2f} s CPU)  accuracy {last['accuracy']:.4f}",
                      flush=True)

    median = {arm: statistics.median(r["seconds"] for r in runs) for arm, runs in results.items() if runs}
    cpu = {arm: statistics.median(r["cpu"] for r in runs) for arm, runs in results.items() if runs}
    accuracy = {arm: statistics.median(r["accuracy"] for r in runs) for arm, runs in results.items() if runs}
    print(f"\nKeras backend {args.keras_backend}, {os.cpu_count()} CPUs, median of {args.repeats}, "
          f"training seconds incl. compilation (MLP {args.epochs} epochs, conv {args.conv_epochs}):")
    for arm in arms:
        print(f"  {arm:13s} {median[arm]:7.2f} s  {cpu[arm]:7.2f} s CPU   test accuracy {accuracy[arm]:.4f}")
    ratios = {}
    for slow, fast, label in (("mlp/fit", "mlp/generic", "MLP: generic vs fast fit"),
                              ("conv/fit", "conv/generic", "conv net: generic vs fast fit"),
                              ("mnist/before", "mnist/after", "keras_mnist.py: after vs before")):
        if slow in median and fast in median:
            ratios[label] = median[slow] / median[fast]
            ratios[label + " (CPU time)"] = cpu[slow] / cpu[fast]
            print(f"  {label}: {ratios[label]:.2f}x wall, {cpu[slow] / cpu[fast]:.2f}x CPU time")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"median_seconds": median, "cpu_seconds": cpu, "accuracy": accuracy,
                                                   "ratios": ratios,
                                                   "backend": args.keras_backend, "repeats": args.repeats}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
