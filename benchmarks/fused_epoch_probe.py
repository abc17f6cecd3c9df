"""Where the fused JAX epoch spends its time on a GPU: backend start, compilation, and each epoch after.

    python benchmarks/fused_epoch_probe.py --data-folder DIR [--variant gather|pregathered] [--epochs 3]

Run it once per XLA_FLAGS setting to compare (benchmarks/gpu_check.sh does). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "kerasjob" / "training"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-folder", required=True)
    parser.add_argument("--variant", choices=("gather", "pregathered"), default="gather")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    import jax
    import keras

    from fused_epoch import _JaxTrainer, epoch_order
    from keras_mnist import build_model
    from mnist_data import load_mnist

    jax.numpy.zeros(1).block_until_ready()
    backend_start = time.perf_counter() - started
    data = load_mnist(args.data_folder)
    model = build_model(keras, argparse.Namespace(first_layer_neurons=300, second_layer_neurons=100,
                                                  learning_rate=0.001, batch_size=50, seed=1,
                                                  mixed_precision=False))

    class Pregathered(_JaxTrainer):
        """The epoch's batches gathered once (one shuffled copy), then scanned as the loop's input."""

        def _epoch_program(self, state, data, order):  # type: ignore[no-untyped-def]
            x_train, y_train, x_test, y_test = data
            full, _ = self._batches(order)
            xs, ys = x_train[full], y_train[full]

            def step(state, batch):  # type: ignore[no-untyped-def]
                x, y = batch
                trainable, non_trainable, optimizer_values = state
                gradient = jax.value_and_grad(self._loss_and_aux, has_aux=True)
                (_, (loss, probabilities, non_trainable)), grads = gradient(
                    trainable, non_trainable, optimizer_values, x, y)
                trainable, optimizer_values = self.optimizer.stateless_apply(optimizer_values, grads, trainable)
                return (trainable, non_trainable, optimizer_values), keras.ops.stack(
                    [loss * x.shape[0], self._hits(y, probabilities)])

            state, sums = jax.lax.scan(step, state, (xs, ys))
            loss_sum, hits = sums.sum(axis=0)
            test_probabilities, _ = self.model.stateless_call(state[0], state[1], x_test, training=False)
            return state, self._summary(loss_sum, hits, test_probabilities, y_test)

    trainer = (Pregathered if args.variant == "pregathered" else _JaxTrainer)(model, data, 50, 1)
    order = epoch_order(1, 0, len(data[0]))
    moment = time.perf_counter()
    trainer._run_epoch(order).block_until_ready()  # compiles, then runs the first epoch
    compile_s = time.perf_counter() - moment
    epochs = []
    for epoch in range(1, args.epochs + 1):
        moment = time.perf_counter()
        metrics = trainer._run_epoch(epoch_order(1, epoch, len(data[0])))
        metrics.block_until_ready()
        epochs.append(round(time.perf_counter() - moment, 4))
    print(json.dumps({"variant": args.variant, "xla_flags": os.environ.get("XLA_FLAGS", ""),
                      "backend_start_s": round(backend_start, 2), "compile_and_first_epoch_s": round(compile_s, 2),
                      "epochs_s": epochs, "test_accuracy": float(metrics[3])}))


if __name__ == "__main__":
    main()
