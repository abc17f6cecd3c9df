"""A whole training epoch as one compiled program: how ``keras_mnist.py`` trains in one process.

With a small model and batch 50, the device waits on the host far more than it
computes: Keras's ``fit`` goes back to Python every ``steps_per_execution``
steps and feeds batches from a pipeline. Here one compiled program runs a
whole epoch -- shuffle, every training step, the test-set evaluation -- on data
placed on the device once, so the host makes one call per epoch. On JAX it is
``jax.jit`` over a ``lax.scan`` with the weights and the optimizer state as
carry (``model.stateless_call``, ``optimizer.stateless_apply``); on TensorFlow
an XLA-compiled ``tf.function`` whose loop updates the variables in place.

The maths is ``fit``'s: the model's own loss and optimizer, a new order every
epoch, a smaller last batch when the batch size does not divide the training
set, and train loss and accuracy averaged over the epoch's samples as ``fit``
reports them (each batch's, before its update). tests/test_keras_backends.py
checks an epoch against ``fit`` on the same order.

Standard library, Keras and the backend only (the job's folder runs without
kerasjob); the backend is whatever Keras was imported with.

Example:
    >>> trainer = fused_trainer(model, (x_train, y_train, x_test, y_test), batch_size=50, seed=1)  # doctest: +SKIP
    >>> trainer.train_epoch(0)                                                                     # doctest: +SKIP
    EpochMetrics(train_loss=0.2196, train_accuracy=0.9342, test_loss=0.1048, test_accuracy=0.9668)
    >>> trainer.write_back()  # the model's variables now hold the trained values                 # doctest: +SKIP
"""

from __future__ import annotations

import abc
import random
from typing import Any, NamedTuple

__all__ = ["EpochMetrics", "FusedTrainer", "epoch_order", "fused_trainer"]

Data = tuple[Any, Any, Any, Any]


class EpochMetrics(NamedTuple):
    """What one epoch reports: train loss and accuracy (over the epoch, as ``fit``), then the test set's."""

    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float


def epoch_order(seed: int, epoch: Any, size: int) -> Any:
    """The order in which ``epoch`` visits the ``size`` training samples: a permutation drawn from ``seed``.

    Drawn outside the compiled epoch (XLA's TensorFlow random kernels differ from the eager ones), on the
    device, and handed to it: the same call reproduces an epoch's order anywhere.

        >>> import numpy as np
        >>> sorted(np.asarray(epoch_order(1, 0, 5)).tolist())  # doctest: +SKIP
        [0, 1, 2, 3, 4]
    """
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.random.permutation(jax.random.fold_in(jax.random.key(seed), epoch), size)
    import tensorflow as tf

    return tf.random.experimental.stateless_shuffle(tf.range(size), seed=[seed, epoch])


class FusedTrainer(abc.ABC):
    """Trains a compiled Keras model one compiled epoch at a time; build it with ``fused_trainer``.

    ``model`` must be compiled (its optimizer and loss are used as they are);
    ``data`` is ``(x_train, y_train, x_test, y_test)`` with integer class labels.
    ``seed`` fixes the shuffling (None: a fresh random order).
    """

    def __init__(self, model: Any, data: Data, batch_size: int, seed: int | None) -> None:
        import keras

        self.model = model
        self.optimizer = model.optimizer
        self.optimizer.build(model.trainable_variables)  # fit builds it on its first step; the program needs it now
        self.per_sample_loss = keras.losses.get(model.loss)
        self.batch_size = batch_size
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.train_size = len(data[0])
        # Data placed on the device once: no host-to-device copy in any step or epoch.
        self.x_train, self.y_train, self.x_test, self.y_test = self._place(data)

    @abc.abstractmethod
    def _place(self, data: Data) -> Data:
        """The four arrays, on the device the backend computes on."""

    @abc.abstractmethod
    def _run_epoch(self, order: Any) -> Any:
        """The compiled epoch over the samples in ``order``: ``[train loss, train accuracy, test loss, test accuracy]``."""

    def train_epoch(self, epoch: int) -> EpochMetrics:
        """Train one epoch (in the order ``epoch_order(seed, epoch, n)``), then evaluate on the test set."""
        import numpy as np

        metrics = self._run_epoch(epoch_order(self.seed, epoch, self.train_size))
        return EpochMetrics(*(float(value) for value in np.asarray(metrics)))  # one copy to the host per epoch

    def write_back(self) -> None:
        """Make the Keras model hold the trained values (to save it); a no-op where training updated it in place."""

    # --- the maths both backends share (keras.ops, traced into the compiled epoch) -----------------------

    def _batches(self, order: Any) -> tuple[Any, Any]:
        """The epoch's full batches as rows of sample indices, and the smaller last batch (empty if none)."""
        import keras

        steps = self.train_size // self.batch_size
        full = keras.ops.reshape(order[: steps * self.batch_size], (steps, self.batch_size))
        return full, order[steps * self.batch_size:]

    def _loss(self, y: Any, probabilities: Any) -> Any:
        import keras

        return keras.ops.mean(self.per_sample_loss(y, probabilities))  # fit's "sum over batch size" reduction

    def _scaled(self, loss: Any) -> Any:
        # Under mixed precision the optimizer is a LossScaleOptimizer: scale the loss as Keras's trainers do
        # (keras/src/backend/{jax,tensorflow}/trainer.py); a plain optimizer returns the loss unchanged.
        return self.optimizer.scale_loss(loss)

    @staticmethod
    def _hits(y: Any, probabilities: Any) -> Any:
        import keras

        return keras.ops.sum(keras.ops.cast(keras.ops.equal(keras.ops.argmax(probabilities, axis=-1), y), "float32"))

    def _summary(self, loss_sum: Any, hits: Any, test_probabilities: Any, y_test: Any) -> Any:
        import keras

        return keras.ops.stack([loss_sum / self.train_size, hits / self.train_size,
                                self._loss(y_test, test_probabilities),
                                self._hits(y_test, test_probabilities) / len(y_test)])


class _JaxTrainer(FusedTrainer):
    """``jax.jit`` over a ``lax.scan``: the weights, other variables and optimizer state are the scan's carry."""

    def __init__(self, model: Any, data: Data, batch_size: int, seed: int | None) -> None:
        import jax

        super().__init__(model, data, batch_size, seed)
        # Copies: the state is donated to each epoch's program, and the model's own buffers must outlive it.
        self.state = tuple([jax.numpy.array(v.value, copy=True) for v in variables]
                           for variables in (model.trainable_variables, model.non_trainable_variables,
                                             self.optimizer.variables))
        # Donating the state lets XLA update the weights in place instead of allocating new ones each epoch.
        self._program = jax.jit(self._epoch_program, donate_argnums=0)
        self._compiled: Any = None

    def _place(self, data: Data) -> Data:
        import jax

        x_train, y_train, x_test, y_test = data
        return (jax.device_put(x_train), jax.device_put(y_train.astype("int32")), jax.device_put(x_test),
                jax.device_put(y_test.astype("int32")))

    def _loss_and_aux(self, trainable: list[Any], non_trainable: list[Any], optimizer_values: list[Any],
                      x: Any, y: Any) -> tuple[Any, tuple[Any, Any, list[Any]]]:
        import keras

        probabilities, non_trainable = self.model.stateless_call(trainable, non_trainable, x, training=True)
        loss = self._loss(y, probabilities)
        with keras.StatelessScope(state_mapping=list(zip(self.optimizer.variables, optimizer_values))):
            scaled = self._scaled(loss)
        return scaled, (loss, probabilities, non_trainable)

    def _train_step(self, x_train: Any, y_train: Any, state: tuple[list[Any], ...],
                    indices: Any) -> tuple[tuple[list[Any], ...], Any]:
        """One optimizer step on the samples at ``indices``: the new state, and the batch's loss sum and hits."""
        import jax
        import keras

        trainable, non_trainable, optimizer_values = state
        # The batch is gathered on the device from the resident arrays: no shuffled copy of the data set.
        x, y = x_train[indices], y_train[indices]
        gradient = jax.value_and_grad(self._loss_and_aux, has_aux=True)
        (_, (loss, probabilities, non_trainable)), grads = gradient(trainable, non_trainable, optimizer_values, x, y)
        trainable, optimizer_values = self.optimizer.stateless_apply(optimizer_values, grads, trainable)
        return (trainable, non_trainable, optimizer_values), keras.ops.stack(
            [loss * indices.shape[0], self._hits(y, probabilities)])

    def _epoch_program(self, state: tuple[list[Any], ...], data: Data,
                       order: Any) -> tuple[tuple[list[Any], ...], Any]:
        import functools

        import jax

        # The data arrive as arguments, not as attributes the program closes over: a closed-over array
        # would be baked into the program as a 190 MB constant (slow to compile, held twice).
        x_train, y_train, x_test, y_test = data
        step = functools.partial(self._train_step, x_train, y_train)
        full, last = self._batches(order)
        # lax.scan: the steps as one loop inside the program, compiled once whatever the step count.
        state, sums = jax.lax.scan(step, state, full)
        loss_sum, hits = sums.sum(axis=0)
        if last.shape[0]:  # fit's smaller last batch: one more step on the samples left over
            state, (last_loss_sum, last_hits) = step(state, last)
            loss_sum, hits = loss_sum + last_loss_sum, hits + last_hits
        test_probabilities, _ = self.model.stateless_call(state[0], state[1], x_test, training=False)
        return state, self._summary(loss_sum, hits, test_probabilities, y_test)

    def _run_epoch(self, order: Any) -> Any:
        data = (self.x_train, self.y_train, self.x_test, self.y_test)
        if self._compiled is None:
            # Compiled once, ahead of time, and called directly: through jax.jit, the second epoch (whose
            # state comes out of the first, placed differently) would trigger a second compilation.
            self._compiled = self._program.lower(self.state, data, order).compile()
        self.state, metrics = self._compiled(self.state, data, order)
        return metrics

    def write_back(self) -> None:
        for variables, values in zip((self.model.trainable_variables, self.model.non_trainable_variables,
                                      self.optimizer.variables), self.state):
            for variable, value in zip(variables, values):
                variable.assign(value)


class _TensorflowTrainer(FusedTrainer):
    """An XLA-compiled ``tf.function`` per epoch; its loop updates the Keras variables in place."""

    def __init__(self, model: Any, data: Data, batch_size: int, seed: int | None) -> None:
        import tensorflow as tf

        super().__init__(model, data, batch_size, seed)
        # jit_compile: XLA fuses each step's small kernels and compiles the loop, so no op runs alone.
        self._program = tf.function(self._epoch_program, jit_compile=True)

    def _place(self, data: Data) -> Data:
        import tensorflow as tf

        device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
        x_train, y_train, x_test, y_test = data
        with tf.device(device):
            return (tf.identity(x_train), tf.identity(y_train.astype("int32")), tf.identity(x_test),
                    tf.identity(y_test.astype("int32")))

    def _train_step(self, indices: Any) -> Any:
        import keras
        import tensorflow as tf

        x, y = tf.gather(self.x_train, indices), tf.gather(self.y_train, indices)
        with tf.GradientTape() as tape:
            probabilities = self.model(x, training=True)
            loss = self._loss(y, probabilities)
            scaled = self._scaled(loss)
        grads = tape.gradient(scaled, self.model.trainable_variables)
        self.optimizer.apply(grads, self.model.trainable_variables)
        return keras.ops.stack([loss * tf.cast(tf.shape(indices)[0], loss.dtype), self._hits(y, probabilities)])

    def _epoch_program(self, order: Any) -> Any:
        import tensorflow as tf

        full, last = self._batches(order)
        sums = tf.zeros([2])
        for step in tf.range(tf.shape(full)[0]):  # a graph loop (AutoGraph): one compiled loop, no Python per step
            sums += self._train_step(full[step])
        if last.shape[0]:  # fit's smaller last batch: one more step on the samples left over
            sums += self._train_step(last)
        return self._summary(sums[0], sums[1], self.model(self.x_test, training=False), self.y_test)

    def _run_epoch(self, order: Any) -> Any:
        return self._program(order)


def fused_trainer(model: Any, data: Data, batch_size: int, seed: int | None) -> FusedTrainer:
    """The fused trainer for the backend Keras runs on (``"jax"`` or ``"tensorflow"``)."""
    import keras

    trainers: dict[str, type[FusedTrainer]] = {"jax": _JaxTrainer, "tensorflow": _TensorflowTrainer}
    backend = keras.backend.backend()
    if backend not in trainers:
        raise ValueError(f"fused_epoch.py trains on {' or '.join(trainers)}, not on Keras's {backend!r} backend")
    return trainers[backend](model, data, batch_size, seed)
