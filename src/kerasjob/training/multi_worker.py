"""Multi-worker data-parallel training for ``keras_mnist.py``, driven by ``TF_CONFIG``.

Azure ML (``TensorflowConfiguration`` / ``TensorFlowDistribution``) and
kerasjob's local rehearsal set ``TF_CONFIG`` on every worker. Keras 3's
``model.fit`` fails under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585: "Attempt to convert a value (PerReplica ...)"), so the
workers train with a compiled custom step run through ``strategy.run``; the
Keras optimizer all-reduces the gradients, so every worker applies the same
update and the weights stay identical.

Batch size: ``--batch-size`` is the batch *per worker*; the global batch is
``batch_size x workers`` and the learning rate is left as given (the convention
of TensorFlow's multi-worker guide). Each worker reads its own shard of the
training set; all run the same number of steps per epoch, so no worker waits
forever on a collective that the others never reach.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["STEPS_PER_CALL", "MultiWorkerTrainer", "cluster_from_environment", "is_chief", "weights_digest",
           "worker_name"]

STEPS_PER_CALL = 50  # several steps per call into TF, as in single-worker training


def cluster_from_environment() -> dict[str, Any] | None:
    """The parsed ``TF_CONFIG`` when it names more than one worker, else None.

    An empty ``"ps"`` entry (Azure ML sets one; TF >= 2.13 refuses it) is removed
    from the environment before TensorFlow reads it.

        >>> os.environ.pop("TF_CONFIG", None) and None
        >>> cluster_from_environment() is None
        True
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    config = json.loads(raw)
    cluster = config.get("cluster", {})
    if "ps" in cluster and not cluster["ps"]:
        del cluster["ps"]
        os.environ["TF_CONFIG"] = json.dumps(config)
    if len(cluster.get("worker", [])) + len(cluster.get("chief", [])) <= 1:
        return None
    return config


def is_chief(config: dict[str, Any]) -> bool:
    """The chief logs metrics and writes outputs: task ``chief``, else worker 0."""
    task = config.get("task", {})
    if config["cluster"].get("chief"):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def worker_name(config: dict[str, Any]) -> str:
    task = config.get("task", {})
    return f"{task.get('type', 'worker')} {task.get('index', 0)}"


def weights_digest(model: Any) -> str:
    """sha256 of every weight, to show that all workers ended with the same model."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


class MultiWorkerTrainer:
    """Trains ``model_builder(keras, args)`` data-parallel across the workers of ``TF_CONFIG``."""

    def __init__(self, tf: Any, keras: Any, args: argparse.Namespace, data: tuple[Any, Any, Any, Any],
                 model_builder: Callable[[Any, argparse.Namespace], Any]) -> None:
        self.tf = tf
        self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
        self.workers = self.strategy.num_replicas_in_sync
        self.global_batch = args.batch_size * self.workers
        x_train, y_train, _, _ = data
        self.steps_per_epoch = math.ceil(len(x_train) / self.global_batch)
        self.train = self.strategy.distribute_datasets_from_function(
            lambda context: self._shard(context, x_train, y_train, args.seed))
        with self.strategy.scope():
            self.model = model_builder(keras, args)
        self._train_steps = self._compile_train_steps(keras)
        self._evaluate_batch = self._compile_evaluate(keras)

    def _shard(self, context: Any, x_train: Any, y_train: Any, seed: int | None) -> Any:
        tf = self.tf
        return (
            tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .shard(context.num_input_pipelines, context.input_pipeline_id)  # each worker reads its own part
            .cache()
            .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
            .repeat()  # steps are counted, so uneven shards never stall a collective
            .batch(context.get_per_replica_batch_size(self.global_batch))
            .prefetch(tf.data.AUTOTUNE)
        )

    def _compile_train_steps(self, keras: Any) -> Any:
        tf, strategy, model = self.tf, self.strategy, self.model
        global_batch = self.global_batch

        def one_step(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                probabilities = model(x, training=True)
                per_sample = keras.losses.sparse_categorical_crossentropy(y, probabilities)
                loss = tf.nn.compute_average_loss(per_sample, global_batch_size=global_batch)
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # all-reduces across workers
            # Train accuracy from the predictions the step already made: this worker's share of the global batch.
            hits = tf.equal(tf.argmax(probabilities, axis=-1), tf.cast(y, tf.int64))
            return tf.stack([loss, tf.reduce_sum(tf.cast(hits, tf.float32)) / global_batch])  # one reduce for both

        @tf.function
        def train_steps(iterator: Iterator[Any], steps: Any) -> Any:
            total = tf.zeros([2])
            for _ in tf.range(steps):  # a graph loop: no Python per step
                per_replica = strategy.run(one_step, args=next(iterator))
                total += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            return total / tf.cast(steps, tf.float32)  # [mean train loss, mean train accuracy]

        return train_steps

    def _compile_evaluate(self, keras: Any) -> Any:
        tf, model = self.tf, self.model

        @tf.function
        def evaluate_batch(x: Any, y: Any) -> tuple[Any, Any]:
            probabilities = model(x, training=False)
            labels = tf.cast(y, tf.int64)
            loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probabilities))
            hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probabilities, axis=-1), labels), tf.float32))
            return loss, hits

        return evaluate_batch

    def train_epoch(self, iterator: Iterator[Any]) -> tuple[float, float]:
        """Runs one epoch's steps; returns the mean training loss and accuracy (the same on every worker)."""
        loss_sum = accuracy_sum = 0.0
        remaining = self.steps_per_epoch
        while remaining:
            steps = min(STEPS_PER_CALL, remaining)
            loss, accuracy = self._train_steps(iterator, self.tf.constant(steps)).numpy()
            loss_sum, accuracy_sum = loss_sum + float(loss) * steps, accuracy_sum + float(accuracy) * steps
            remaining -= steps
        return loss_sum / self.steps_per_epoch, accuracy_sum / self.steps_per_epoch

    def evaluate(self, test: Any) -> tuple[float, float]:
        """Test loss and accuracy, computed locally on this worker (no collective ops)."""
        total_loss = correct = count = 0.0
        for x, y in test:
            loss_sum, correct_sum = self._evaluate_batch(x, y)
            total_loss, correct, count = total_loss + float(loss_sum), correct + float(correct_sum), count + len(y)
        return total_loss / count, correct / count
