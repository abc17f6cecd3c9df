"""Train the seed walkthrough's MNIST classifier (784-300-100-10 MLP, RMSprop).

Runs unchanged in an Azure ML run, under kerasjob's local backend, and alone:

    python keras_mnist.py --data-folder DIR [--epochs 20 --batch-size 50 ...]

Logs ``Loss`` and ``Accuracy`` on the test set every epoch, then ``Final test
loss`` / ``Final test accuracy``, through MLflow when a tracking URI is set
(Azure ML and kerasjob set one) and always on stdout. Writes the model to
``./outputs/model/model.keras`` and a plot to ``./outputs/training.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mypy reads the siblings as the package modules they also are
    from kerasjob.training.contract import DATA_FOLDER_FLAG, HYPERPARAMETERS, flag_for
    from kerasjob.training.mlflow_model import preload, save_model
    from kerasjob.training.mnist_data import MnistFormatError, load_mnist
    from kerasjob.training.multi_worker import (MultiWorkerTrainer, cluster_from_environment, is_chief,
                                                weights_digest, worker_name)
else:  # at run time, sibling helpers: this folder is the job's whole source directory (no kerasjob installed)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from contract import DATA_FOLDER_FLAG, HYPERPARAMETERS, flag_for
    from mlflow_model import preload, save_model
    from mnist_data import MnistFormatError, load_mnist
    from multi_worker import MultiWorkerTrainer, cluster_from_environment, is_chief, weights_digest, worker_name

__all__ = ["Tracker", "build_datasets", "build_model", "main", "parse_args", "save_plot", "tracking_configured",
           "train_multi_worker", "train_single"]

#: What ``load_mnist`` returns: ``(x_train, y_train, x_test, y_test)``.
Data = tuple[Any, Any, Any, Any]
#: ``on_epoch(epoch, train_loss, test_loss, test_accuracy)``.
EpochCallback = Callable[[int, float, float, float], None]

OUTPUTS = Path("outputs")
EVAL_BATCH_SIZE = 2000  # evaluation only: its batch size does not change what is learned
STEPS_PER_EXECUTION = 100  # run 100 train steps per call into TF: per-step Python overhead dominates a small MLP


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(DATA_FOLDER_FLAG, dest="data_folder", required=True,
                        help="folder holding the four MNIST IDX files (.gz or not), searched recursively")
    for name, spec in HYPERPARAMETERS.items():
        parser.add_argument(flag_for(name), dest=name, type=spec.type, default=spec.default, help=spec.help)
    parser.add_argument("--mixed-precision", action="store_true",
                        help="compute in float16 on a GPU (off by default; no gain on a CPU)")
    parser.add_argument("--seed", type=int, default=None, help="seed for weights and shuffling")
    args = parser.parse_args(argv)
    for name, spec in HYPERPARAMETERS.items():
        value = getattr(args, name)
        too_small = value <= spec.minimum if spec.exclusive_minimum else value < spec.minimum
        if too_small:
            parser.error(f"{flag_for(name)} must be {'>' if spec.exclusive_minimum else '>='} "
                         f"{spec.minimum}. Received: {value}")
    return args


class Tracker:
    """Reports metrics: to kerasjob's local supervisor, else to MLflow when tracking is set up; always to stdout.

    Under kerasjob's local backend ``KERASJOB_METRICS_FILE`` names a file that
    the supervisor forwards to the MLflow run, so this process need not import
    MLflow (two seconds saved on every run); it also uploads ``outputs/``.
    """

    def __init__(self, chief: bool):
        self.mlflow: Any = None
        self.metrics_file = os.environ.get("KERASJOB_METRICS_FILE") if chief else None
        if chief and not self.metrics_file and tracking_configured():
            import mlflow

            self.mlflow = mlflow
            mlflow.start_run()  # resumes MLFLOW_RUN_ID when the launcher created the run

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        if self.metrics_file:
            record = {"metrics": values, "step": step, "timestamp": int(time.time() * 1000)}
            with open(self.metrics_file, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(record) + "\n")
        elif self.mlflow is not None:
            self.mlflow.log_metrics(values, step=step)

    def params(self, values: dict[str, object]) -> None:
        """The hyperparameters, as MLflow params: how a sweep reads back what each trial received
        (Azure ML's run-history records don't carry a job's inputs). The local supervisor logs them itself."""
        if self.mlflow is not None:
            self.mlflow.log_params(values)

    def artifact(self, path: Path) -> None:
        if self.mlflow is not None:
            self.mlflow.log_artifact(str(path))

    def close(self) -> None:
        if self.mlflow is not None:
            self.mlflow.end_run()


def tracking_configured() -> bool:
    return bool(os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_RUN_ID"))


def build_datasets(tf: Any, data: Data, batch_size: int, seed: int | None) -> tuple[Any, Any]:
    x_train, y_train, x_test, y_test = data
    # float32 features and sparse uint8 labels: half the bytes of float64 + one-hot, same maths.
    train = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .cache()  # decode once, then serve from memory
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)  # a new order every epoch, as fit() on arrays
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)  # the next batches are ready before the step asks
    )
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(EVAL_BATCH_SIZE).cache().prefetch(tf.data.AUTOTUNE)
    return train, test


def build_model(keras: Any, args: argparse.Namespace) -> Any:
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(args.first_layer_neurons, activation="relu"),
            keras.layers.Dense(args.second_layer_neurons, activation="relu"),
            # float32 softmax even under mixed precision, for a stable loss.
            keras.layers.Dense(10, activation="softmax", dtype="float32"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=args.learning_rate),
        loss="sparse_categorical_crossentropy",  # integer labels: no one-hot matrix to build or read
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
        jit_compile=True,  # XLA fuses the step's small kernels into a few
    )
    return model


def save_plot(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = range(1, len(history["Accuracy"]) + 1)
    axis.plot(epochs, history["Accuracy"], "b-", label="Accuracy")
    axis.plot(epochs, history["Loss"], "r--", label="Loss")
    axis.set_xlabel("epoch")
    axis.set_title("MNIST test set")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def train_single(tf: Any, keras: Any, args: argparse.Namespace, data: Data,
                 on_epoch: EpochCallback) -> tuple[Any, float, float]:
    """One process: Keras's own ``fit`` with the fast settings of ``build_model``."""
    class ReportEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:  # Keras passes the epoch's logs dict
            on_epoch(epoch, float(logs["loss"]), float(logs["val_loss"]), float(logs["val_accuracy"]))

    train, test = build_datasets(tf, data, args.batch_size, args.seed)
    model = build_model(keras, args)
    model.fit(train, epochs=args.epochs, validation_data=test, verbose=0, callbacks=[ReportEpoch()])
    loss, accuracy = model.evaluate(test, verbose=0)
    return model, float(loss), float(accuracy)


def train_multi_worker(tf: Any, keras: Any, args: argparse.Namespace, data: Data, on_epoch: EpochCallback,
                       chief: bool) -> tuple[Any, float, float]:
    """Several workers (``TF_CONFIG``): data parallel; only the chief evaluates."""
    trainer = MultiWorkerTrainer(tf, keras, args, data, build_model)
    _, test = build_datasets(tf, data, args.batch_size, args.seed)
    iterator = iter(trainer.train)
    loss = accuracy = float("nan")
    for epoch in range(args.epochs):
        train_loss = trainer.train_epoch(iterator)
        if chief:
            loss, accuracy = trainer.evaluate(test)
        on_epoch(epoch, train_loss, loss, accuracy)
    print(f"Workers: {trainer.workers}, global batch {trainer.global_batch}, "
          f"weights sha256 {weights_digest(trainer.model)}", flush=True)
    return trainer.model, loss, accuracy


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cluster = cluster_from_environment()  # before TensorFlow reads TF_CONFIG
    chief = cluster is None or is_chief(cluster)
    try:
        data = load_mnist(args.data_folder)
    except MnistFormatError as exc:
        print(f"keras_mnist.py: {exc}", file=sys.stderr)
        return 2
    print(f"MNIST: {len(data[0])} training and {len(data[2])} test images from {args.data_folder}"
          + (f" ({worker_name(cluster)} of {len(cluster['cluster'].get('worker', []))} workers)" if cluster else ""),
          flush=True)

    import keras
    import tensorflow as tf

    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")

    tracker = Tracker(chief=chief)
    tracker.params({name: getattr(args, name) for name in HYPERPARAMETERS})
    history: dict[str, list[float]] = {"Loss": [], "Accuracy": []}
    epoch_started = [time.perf_counter()]

    def on_epoch(epoch: int, train_loss: float, loss: float, accuracy: float) -> None:
        if chief:
            history["Loss"].append(loss)
            history["Accuracy"].append(accuracy)
            tracker.metrics({"Loss": loss, "Accuracy": accuracy}, step=epoch)
        evaluated = f" - Loss {loss:.4f} - Accuracy {accuracy:.4f}" if chief else ""
        print(f"Epoch {epoch + 1}/{args.epochs} - {time.perf_counter() - epoch_started[0]:.1f}s - "
              f"train loss {train_loss:.4f}{evaluated}", flush=True)
        epoch_started[0] = time.perf_counter()

    if chief:
        preload()  # MLflow imports while the model trains; outputs/model is an MLflow model
    started = time.perf_counter()
    if cluster is None:
        model, loss, accuracy = train_single(tf, keras, args, data, on_epoch)
    else:
        model, loss, accuracy = train_multi_worker(tf, keras, args, data, on_epoch, chief)
    fit_seconds = time.perf_counter() - started
    if not chief:
        print("Not the chief: the chief logs the final metrics and writes outputs/.", flush=True)
        return 0
    tracker.metrics({"Final test loss": loss, "Final test accuracy": accuracy})
    print(f"Final test loss: {loss:.4f}\nFinal test accuracy: {accuracy:.4f}\nFit seconds: {fit_seconds:.2f}", flush=True)

    model_dir = OUTPUTS / "model"
    as_mlflow = save_model(model, model_dir, data[2][:5])
    plot = OUTPUTS / "training.png"
    save_plot(history, plot)
    tracker.artifact(plot)
    tracker.close()
    print(f"Model saved to {model_dir}" + (" (an MLflow model holding model.keras)" if as_mlflow
                                           else "/model.keras (MLflow is not installed)"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
