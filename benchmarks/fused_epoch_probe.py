"""Where a fused epoch spends its time: the trainer's build (trace), the first epoch (compilation included) and each
epoch after, in wall-clock and CPU seconds, beside Keras's fast ``fit`` epoch by epoch.

    python benchmarks/fused_epoch_probe.py generic|fit|graph|xla [--kind mlp|conv] [--epochs 3] [--samples 60000]
        [--data-folder ../shared/data/mnist]

``generic`` is the trainer as it chooses (``fused_epoch.make_trainer``); ``graph`` and ``xla`` force the TensorFlow
epoch program's choice (``KERASJOB_FUSED_XLA=0`` / ``1``); ``fit`` is ``fit`` with ``jit_compile=True`` and
``steps_per_execution`` (benchmarks/fit_speed.py's model and settings). Prints one JSON line. Run it with
``XLA_FLAGS=...`` to compare XLA settings. What it showed on the 2-core CPU (TensorFlow 2.21, Keras 3.15):

- conv net (Conv2D 16, batch 128), one epoch of 20,000 samples after the first: ``xla`` 11.6 s wall / 5.8 s CPU,
  ``fit`` 4.1 s / 4.1 s, ``graph`` 1.6 s / 0.9 s: XLA's CPU convolutions are the slow part, hence the graph for
  conv nets on a CPU (``fused_epoch.tensorflow_xla``);
- seed MLP, epochs of 60,000 after the first: ``xla`` 1.2 s CPU (single-threaded, at about the core's peak FLOPs),
  ``fit`` 2.0 s, ``graph`` 2.2-2.8 s CPU; compiling the fused epoch costs about 2 s of CPU (``fit``'s about
  1.7 s), so the MLP's lead grows with the number of epochs. No ``XLA_FLAGS`` setting tried
  (optimization level, thunk runtime, XNNPACK dots, Eigen threads) made the steady epoch faster;
  ``--xla_backend_optimization_level=0`` halves the compilation but makes each epoch 2.5x slower.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "kerasjob" / "training"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=("generic", "fit", "graph", "xla"))
    parser.add_argument("--kind", choices=("mlp", "conv"), default="mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    args = parser.parse_args()
    if args.variant in ("graph", "xla"):
        os.environ["KERASJOB_FUSED_XLA"] = "1" if args.variant == "xla" else "0"
    import keras

    from fit_speed import build
    from mnist_data import load_mnist

    x, y, x_test, y_test = load_mnist(args.data_folder)
    x, y = x[:args.samples], y[:args.samples]
    if args.kind == "conv":
        x, x_test = x.reshape(-1, 28, 28, 1), x_test.reshape(-1, 28, 28, 1)
    batch = 128 if args.kind == "conv" else 50
    model = build(keras, args.kind, fast_fit=args.variant == "fit")
    times: list[list[float]] = []

    def timed(work):  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        times.append([round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3)])
        return result

    if args.variant == "fit":
        for _ in range(args.epochs):
            history = timed(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0,
                                              validation_data=(x_test, y_test)).history)
        accuracy = history["val_accuracy"][-1]
        build_s = None
    else:
        from fused_epoch import make_trainer

        trainer = timed(lambda: make_trainer(model, x, y, validation=(x_test, y_test), batch_size=batch, seed=1))
        build_s = times.pop()
        for epoch in range(args.epochs):
            logs = timed(lambda: trainer.train_epoch(epoch))
        accuracy = logs["val_accuracy"]
    print(json.dumps({"variant": args.variant, "kind": args.kind, "backend": keras.backend.backend(),
                      "samples": args.samples, "xla_flags": os.environ.get("XLA_FLAGS", ""),
                      "build_wall_cpu_s": build_s, "epochs_wall_cpu_s": times, "val_accuracy": round(float(accuracy), 4)}))


if __name__ == "__main__":
    main()
