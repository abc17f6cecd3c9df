"""Train the seed walkthrough's MNIST classifier (784-300-100-10 MLP, RMSprop).

Runs unchanged in an Azure ML run, under kerasjob's local backend, and alone:

    python keras_mnist.py --data-folder DIR [--epochs 20 --batch-size 50 --keras-backend jax ...]

Trains on TensorFlow or JAX (``--keras-backend``; it sets ``KERAS_BACKEND``
before Keras loads), one compiled program per epoch (``fused_epoch.py``), or
on TensorFlow across the workers that ``TF_CONFIG`` names (``multi_worker.py``).
Logs ``Loss`` and ``Accuracy`` on the test set and ``Train loss`` / ``Train
accuracy`` every epoch, then ``Final test loss`` / ``Final test accuracy``,
through MLflow when a tracking URI is set (Azure ML and kerasjob set one) and
always on stdout. Writes the model to ``./outputs/model/`` (an MLflow model
holding ``model.keras``) and a plot to ``./outputs/training.png``. On JAX
nothing imports TensorFlow, which need not be installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # mypy reads the siblings as the package modules they also are
    from kerasjob.training.contract import (DATA_FOLDER_FLAG, DEFAULT_KERAS_BACKEND, EPOCH_METRICS, HYPERPARAMETERS,
                                            KERAS_BACKEND_FLAG, KERAS_BACKENDS, OPTIONS, flag_for)
    from kerasjob.training.checkpoint import DEFAULT_CHECKPOINT_DIR, checkpoint_dir_from, train_epochs
    from kerasjob.training.compile_cache import CACHE_ENV, COMPILE_CACHE_FLAG, CompileCounter, enable_compile_cache
    from kerasjob.training.data_parallel import DataParallelTrainer, use_all_devices
    from kerasjob.training.fused_epoch import Trainer, make_trainer
    from kerasjob.training.mlflow_model import (mnist_signature, preload, save_model, saved_message,
                                                without_tensorflow_import)
    from kerasjob.training.mnist_data import MnistFormatError, load_mnist
    from kerasjob.training.multi_worker import (MultiWorkerTrainer, cluster_from_environment, is_chief,
                                                weights_digest, worker_name)
    from kerasjob.training.tracking import Tracker, save_history_plot, tracking_configured
else:  # at run time, sibling helpers: this folder is the job's whole source directory (no kerasjob installed)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from contract import (DATA_FOLDER_FLAG, DEFAULT_KERAS_BACKEND, EPOCH_METRICS, HYPERPARAMETERS, KERAS_BACKEND_FLAG,
                          KERAS_BACKENDS, OPTIONS, flag_for)
    from checkpoint import DEFAULT_CHECKPOINT_DIR, checkpoint_dir_from, train_epochs
    from compile_cache import CACHE_ENV, COMPILE_CACHE_FLAG, CompileCounter, enable_compile_cache
    from data_parallel import DataParallelTrainer, use_all_devices
    from fused_epoch import Trainer, make_trainer
    from mlflow_model import mnist_signature, preload, save_model, saved_message, without_tensorflow_import
    from mnist_data import MnistFormatError, load_mnist
    from multi_worker import MultiWorkerTrainer, cluster_from_environment, is_chief, weights_digest, worker_name
    from tracking import Tracker, save_history_plot, tracking_configured

__all__ = ["EpochMetrics", "Tracker", "build_model", "build_test_dataset", "default_keras_backend", "main", "parse_args",
           "save_plot", "tracking_configured", "train_multi_worker", "train_single"]

#: What ``load_mnist`` returns: ``(x_train, y_train, x_test, y_test)``.
Data = tuple[Any, Any, Any, Any]


class EpochMetrics(NamedTuple):
    """What one epoch reports: train loss and accuracy (over the epoch, as ``fit``), then the test set's."""

    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float

    @classmethod
    def from_logs(cls, logs: dict[str, float]) -> EpochMetrics:
        """From Keras's epoch logs (the test set is the validation data)."""
        nan = float("nan")
        return cls(logs.get("loss", nan), logs.get("accuracy", nan), logs.get("val_loss", nan),
                   logs.get("val_accuracy", nan))

    def named(self) -> dict[str, float]:
        """Under the names the script logs (``EPOCH_METRICS``)."""
        return {"Loss": self.test_loss, "Accuracy": self.test_accuracy, "Train loss": self.train_loss,
                "Train accuracy": self.train_accuracy}


#: ``on_epoch(epoch, metrics)``; a worker that is not the chief reports NaN test metrics.
EpochCallback = Callable[[int, EpochMetrics], None]

OUTPUTS = Path("outputs")
EVAL_BATCH_SIZE = 2000  # evaluation only: its batch size does not change what is learned


def default_keras_backend() -> str:
    """``KERAS_BACKEND`` when set; else kerasjob's default backend if installed; else another one that is.

    So ``python keras_mnist.py`` runs as it stands on a machine with TensorFlow, and on one with JAX alone.
    """
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    preferred = (DEFAULT_KERAS_BACKEND, *(name for name in KERAS_BACKENDS if name != DEFAULT_KERAS_BACKEND))
    return next((name for name in preferred if importlib.util.find_spec(name)), DEFAULT_KERAS_BACKEND)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(DATA_FOLDER_FLAG, dest="data_folder", required=True,
                        help="folder holding the four MNIST IDX files (.gz or not), searched recursively")
    for name, spec in HYPERPARAMETERS.items():
        parser.add_argument(flag_for(name), dest=name, type=spec.type, default=spec.default, help=spec.help)
    for name, option in OPTIONS.items():
        if option.type is bool:  # a bare --mixed-precision still means true; kerasjob sends "--mixed-precision false"
            parser.add_argument(flag_for(name), dest=name, type=option.parse, nargs="?", const=True, default=False,
                                help=option.help)
        else:
            parser.add_argument(flag_for(name), dest=name, type=option.parse, default=None, help=option.help)
    parser.add_argument("--checkpoint-dir", dest="checkpoint_dir", default=DEFAULT_CHECKPOINT_DIR,
                        help=f"where a checkpoint is written after every epoch and resumed from "
                             f"(default {DEFAULT_CHECKPOINT_DIR}; 'none': no checkpoints)")
    parser.add_argument(COMPILE_CACHE_FLAG, dest="compile_cache", default=None,
                        help=f"folder of the persistent compilation cache, or 'none' (default: {CACHE_ENV}, else "
                             "$KERASJOB_CACHE_DIR/compile or ~/.cache/kerasjob/compile)")
    parser.add_argument(KERAS_BACKEND_FLAG, dest="keras_backend", default=default_keras_backend(),
                        help=f"{' or '.join(KERAS_BACKENDS)} (default: KERAS_BACKEND, else {DEFAULT_KERAS_BACKEND} "
                             "if installed)")
    args = parser.parse_args(argv)
    for name, spec in HYPERPARAMETERS.items():
        value = getattr(args, name)
        too_small = value <= spec.minimum if spec.exclusive_minimum else value < spec.minimum
        if too_small:
            parser.error(f"{flag_for(name)} must be {'>' if spec.exclusive_minimum else '>='} "
                         f"{spec.minimum}. Received: {value}")
    for name, option in OPTIONS.items():
        value = getattr(args, name)
        if option.minimum is not None and value is not None and value < option.minimum:
            parser.error(f"{flag_for(name)} must be >= {option.minimum}. Received: {value}")
    if args.keras_backend not in KERAS_BACKENDS:
        parser.error(f"{KERAS_BACKEND_FLAG} must be one of {', '.join(KERAS_BACKENDS)}. "
                     f"Received: {args.keras_backend}")
    return args


def build_test_dataset(tf: Any, data: Data) -> Any:
    """The test set as a ``tf.data`` pipeline, for the multi-worker evaluation."""
    _, _, x_test, y_test = data
    return tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(EVAL_BATCH_SIZE).cache().prefetch(tf.data.AUTOTUNE)


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
    )
    return model


def save_plot(history: dict[str, list[float]], path: Path) -> None:
    """Loss and accuracy per epoch, test (solid) and train (dashed); markers, so that one epoch shows."""
    save_history_plot({"Loss": history["Train loss"], "val_Loss": history["Loss"],
                       "Accuracy": history["Train accuracy"], "val_Accuracy": history["Accuracy"]},
                      path, title="MNIST", labels=("train", "test"))


def train_single(keras: Any, args: argparse.Namespace, data: Data, on_epoch: EpochCallback,
                 checkpoint_dir: Path | None = None, history: dict[str, list[float]] | None = None,
                 show: EpochCallback | None = None) -> tuple[Any, float, float]:
    """One process, on the backend Keras was loaded with: one compiled program per epoch (``fused_epoch.py``),
    resuming from the newest checkpoint in ``checkpoint_dir`` and writing one after every epoch. ``history``,
    when given, receives every epoch's metrics under the script's names, the resumed ones too; ``on_epoch`` logs
    an epoch's metrics, ``show`` prints its line once the checkpoint records them as logged."""
    x_train, y_train, x_test, y_test = data
    devices = use_all_devices(keras)  # JAX on a node with several devices: data parallel over all of them
    model = build_model(keras, args)
    trainer: Trainer
    if devices > 1:
        trainer = DataParallelTrainer(model, (x_train, y_train, None), (x_test, y_test, None), args.batch_size,
                                      args.seed, True, devices)
        print(f"Data parallel over {devices} devices: global batch {args.batch_size * devices} "
              f"({args.batch_size} per device)", flush=True)
    else:
        trainer = make_trainer(model, x_train, y_train, validation=(x_test, y_test), batch_size=args.batch_size,
                               seed=args.seed)
    logs = train_epochs(trainer, args.epochs, checkpoint_dir,
                        lambda epoch, logs: on_epoch(epoch, EpochMetrics.from_logs(logs)),
                        show=None if show is None else lambda epoch, logs: show(epoch, EpochMetrics.from_logs(logs)))
    trainer.write_back()
    epochs = [EpochMetrics.from_logs({name: values[epoch] for name, values in logs.items()})
              for epoch in range(len(logs.get("loss", [])))]
    if history is not None:
        for metrics in epochs:
            for name, value in metrics.named().items():
                history.setdefault(name, []).append(value)
    last = epochs[-1] if epochs else EpochMetrics(*(4 * [float("nan")]))
    return model, last.test_loss, last.test_accuracy


def train_multi_worker(tf: Any, keras: Any, args: argparse.Namespace, data: Data, on_epoch: EpochCallback,
                       chief: bool) -> tuple[Any, float, float]:
    """Several workers (``TF_CONFIG``, TensorFlow only): data parallel; only the chief evaluates."""
    trainer = MultiWorkerTrainer(tf, keras, args, data, build_model)
    test = build_test_dataset(tf, data)
    iterator = iter(trainer.train)
    loss = accuracy = float("nan")
    for epoch in range(args.epochs):
        train_loss, train_accuracy = trainer.train_epoch(iterator)
        if chief:
            loss, accuracy = trainer.evaluate(test)
        on_epoch(epoch, EpochMetrics(train_loss, train_accuracy, loss, accuracy))
    print(f"Workers: {trainer.workers}, global batch {trainer.global_batch}, "
          f"weights sha256 {weights_digest(trainer.model)}", flush=True)
    return trainer.model, loss, accuracy


def _short(folder: str) -> str:
    """A data folder as the log shows it: its last two parts (``.../data/mnist``), not the machine's whole path
    (a temporary checkout, a mount point on Azure ML); the run's MLflow dataset input records where it came from."""
    parts = Path(folder).parts
    return folder if len(parts) <= 2 else ".../" + "/".join(parts[-2:])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cluster = cluster_from_environment()  # before TensorFlow reads TF_CONFIG
    chief = cluster is None or is_chief(cluster)
    if cluster is not None and args.keras_backend != "tensorflow":
        print(f"keras_mnist.py: several workers (TF_CONFIG) train on TensorFlow only; "
              f"{KERAS_BACKEND_FLAG} {args.keras_backend} trains in one process, on every device of its node "
              "(several nodes on JAX, through jax.distributed.initialize, are not built: they could not be tested "
              "with local processes here).", file=sys.stderr)
        return 2
    try:
        data = load_mnist(args.data_folder)
    except MnistFormatError as exc:
        print(f"keras_mnist.py: {exc}", file=sys.stderr)
        return 2
    print(f"MNIST: {len(data[0])} training and {len(data[2])} test images from {_short(args.data_folder)}"
          + (f" ({worker_name(cluster)} of {len(cluster['cluster'].get('worker', []))} workers)" if cluster else ""),
          flush=True)

    os.environ["KERAS_BACKEND"] = args.keras_backend  # read once, when Keras is first imported
    if args.compile_cache:
        os.environ[CACHE_ENV] = args.compile_cache
    cache_folder = enable_compile_cache(args.keras_backend)  # before Keras loads the backend
    import keras

    compiles = CompileCounter(cache_folder, args.keras_backend)

    if args.seed is not None:
        with without_tensorflow_import(keras):  # on JAX: seeding would import TensorFlow only to seed it
            keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")

    tracker = Tracker(chief=chief)
    tracker.params({**{name: getattr(args, name) for name in (*HYPERPARAMETERS, *OPTIONS)},
                    "keras_backend": args.keras_backend})
    history: dict[str, list[float]] = {name: [] for name in EPOCH_METRICS}
    epoch_started = [time.perf_counter()]

    def record(epoch: int, metrics: EpochMetrics) -> None:
        if chief:
            if cluster is not None:  # train_single fills history itself, resumed epochs included
                for name, value in metrics.named().items():
                    history[name].append(value)
            tracker.metrics(metrics.named(), step=epoch)

    def show(epoch: int, metrics: EpochMetrics) -> None:
        evaluated = f" - Loss {metrics.test_loss:.4f} - Accuracy {metrics.test_accuracy:.4f}" if chief else ""
        print(f"Epoch {epoch + 1}/{args.epochs} - {time.perf_counter() - epoch_started[0]:.1f}s - "
              f"train loss {metrics.train_loss:.4f} - train accuracy {metrics.train_accuracy:.4f}{evaluated}",
              flush=True)
        epoch_started[0] = time.perf_counter()

    def on_epoch(epoch: int, metrics: EpochMetrics) -> None:
        record(epoch, metrics)
        show(epoch, metrics)

    if chief:
        preload()  # MLflow imports while the model trains; outputs/model is an MLflow model
    started = time.perf_counter()
    if cluster is None:
        model, loss, accuracy = train_single(keras, args, data, record, checkpoint_dir_from(args.checkpoint_dir),
                                             history, show)
    else:
        import tensorflow as tf

        model, loss, accuracy = train_multi_worker(tf, keras, args, data, on_epoch, chief)
    fit_seconds = time.perf_counter() - started
    if not chief:
        print("Not the chief: the chief logs the final metrics and writes outputs/.", flush=True)
        return 0
    tracker.metrics({"Final test loss": loss, "Final test accuracy": accuracy})
    print(f"Final test loss: {loss:.4f}\nFinal test accuracy: {accuracy:.4f}\nFit seconds: {fit_seconds:.2f} "
          f"({args.keras_backend})", flush=True)
    print(compiles.summary(), flush=True)

    model_dir = OUTPUTS / "model"
    as_mlflow = save_model(model, model_dir, data[2][:5], signature=mnist_signature)
    save_plot(history, OUTPUTS / "training.png")
    tracker.close(OUTPUTS / "training.png")
    print(saved_message(model_dir, as_mlflow), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
