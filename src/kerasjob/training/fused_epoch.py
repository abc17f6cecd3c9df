"""A whole training epoch as one compiled program, for any compiled Keras model: how both packaged trainers train.

With a small model the device waits on the host far more than it computes:
Keras's ``fit`` goes back to Python every ``steps_per_execution`` steps and
feeds batches from a pipeline. Here one compiled program runs a whole epoch --
every training step, then the validation set -- on data placed on the device
once, so the host makes one call per epoch. On JAX it is ``jax.jit`` over a
``lax.scan`` of the model's own stateless ``train_step`` (weights, optimizer
and metric state as the carry); on TensorFlow a ``tf.function`` whose graph
loop calls ``train_step``, updating the variables in place: XLA-compiled,
except for a model with convolutions on a CPU, whose epoch runs as a
TensorFlow graph (TensorFlow's own oneDNN convolution kernels are several
times faster there than XLA's CPU convolutions; see :func:`tensorflow_xla`).

The maths is ``fit``'s because the steps are Keras's own: the compiled loss
(any Keras or custom loss, loss weights, regularization), the optimizer (loss
scaling included), every compiled metric, sample weights (``class_weight``
becomes per-sample weights as ``fit`` makes them), single or multiple inputs
and outputs (arrays, lists or dicts), a new order every epoch (or none with
``shuffle=False``), a smaller last batch when the batch size does not divide
the data, and metrics accumulated over the epoch under Keras's names
(``loss``, ``accuracy``, ``val_loss``, ...). tests/test_generic_trainer.py checks
epochs against ``fit`` on the same order.

Where one program cannot serve a model (``run_eagerly``, a stateful layer, data
too large for the device, a model whose step does not compile), ``make_trainer``
returns a ``FitTrainer``: Keras's ``fit`` with ``steps_per_execution`` and
``jit_compile``, one epoch per call on the same order; ``fallback_reason`` says why.

Standard library, NumPy, Keras and the backend only (the job's folder runs
without kerasjob); the backend is whatever Keras was imported with.

Example:
    >>> trainer = make_trainer(model, x, y, validation=(x_val, y_val), batch_size=50, seed=1)  # doctest: +SKIP
    >>> trainer.train_epoch(0)                                                                   # doctest: +SKIP
    {'accuracy': 0.9342, 'loss': 0.2196, 'val_accuracy': 0.9668, 'val_loss': 0.1048}
    >>> trainer.write_back()  # the model's variables now hold the trained values               # doctest: +SKIP
"""

from __future__ import annotations

import abc
import math
import os
import random
from typing import Any

__all__ = ["FitTrainer", "FusedTrainer", "Trainer", "class_weight_to_sample_weight", "epoch_order",
           "fallback_reason", "make_trainer", "num_samples", "split_validation", "take", "tensorflow_xla"]

#: ``(x, y, sample_weight)``: x and y an array or a list/dict of arrays; sample_weight an array or None.
Triple = tuple[Any, Any, Any]
#: Validation batches hold at least this many samples: evaluation results do not depend on the batch size,
#: and a few large batches evaluate faster than many small ones.
VALIDATION_BATCH = 2048
#: ``steps_per_execution`` of the ``fit`` fallback.
FIT_STEPS_PER_EXECUTION = 100
#: The fused loop keeps the data on the device; above this share of the device's memory it falls back to fit.
DEVICE_MEMORY_SHARE = 0.5


def epoch_order(seed: int, epoch: Any, size: int) -> Any:
    """The order in which ``epoch`` visits the ``size`` training samples: a permutation drawn from ``seed``.

    Drawn outside the compiled epoch (XLA's TensorFlow random kernels differ from the eager ones), on the
    device, and handed to it: the same call reproduces an epoch's order anywhere (a resumed run too).

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


def num_samples(structure: Any) -> int:
    """The number of samples in an array, or in a list/dict of arrays (their first dimension)."""
    import keras

    return int(len(keras.tree.flatten(structure)[0]))


def take(structure: Any, indices: Any) -> Any:
    """The samples at ``indices`` of an array or a list/dict of arrays (None stays None)."""
    import keras

    return None if structure is None else keras.tree.map_structure(lambda array: array[indices], structure)


def split_validation(data: Triple, fraction: float) -> tuple[Triple, Triple]:
    """``fit``'s ``validation_split``: the last ``fraction`` of the samples, before any shuffling, validate."""
    size = num_samples(data[0])
    split_at = int(math.floor(size * (1.0 - fraction)))
    if split_at in (0, size):
        raise ValueError(f"validation_split={fraction} leaves no sample to train on or to validate with "
                         f"({size} samples)")
    return (tuple(take(part, slice(0, split_at)) for part in data),
            tuple(take(part, slice(split_at, None)) for part in data))


def class_weight_to_sample_weight(y: Any, class_weight: dict[int, float]) -> Any:
    """Per-sample weights from ``{class: weight}``, as ``fit`` makes them (one-hot labels by their argmax;
    a class not named weighs 1)."""
    import keras
    import numpy as np

    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else np.squeeze(labels, axis=-1)
    labels = np.round(labels).astype("int64")
    lookup = np.ones(max(int(labels.max(initial=0)), *(int(c) for c in class_weight)) + 1,
                     dtype=keras.backend.floatx())
    for cls, weight in class_weight.items():
        lookup[int(cls)] = weight
    return lookup[labels]


def _standardize(structure: Any) -> Any:
    """Float arrays as Keras's floatx (``fit`` does the same), integer labels and ids as int32."""
    import keras
    import numpy as np

    def convert(array: Any) -> Any:
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            return array.astype(keras.backend.floatx(), copy=False)
        if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
            return array.astype("int32", copy=False)
        return array

    return None if structure is None else keras.tree.map_structure(convert, structure)


def _nbytes(*structures: Any) -> int:
    import keras

    return sum(int(getattr(leaf, "nbytes", 0)) for structure in structures if structure is not None
               for leaf in keras.tree.flatten(structure))


def _device_memory() -> int | None:
    """Bytes the fused loop may fill with data: the accelerator's memory, else the machine's."""
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"])
        else:
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                return int(tf.config.experimental.get_memory_info("GPU:0").get("peak", 0)) or None
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, RuntimeError, AttributeError):
        return None


def _has_convolutions(model: Any) -> bool:
    """Whether a layer of ``model`` is one of Keras's convolutions (Conv1D/2D/3D, transposed, separable,
    depthwise: their base classes are ``BaseConv``, ``BaseConvTranspose``, ``BaseSeparableConv``,
    ``BaseDepthwiseConv``), or a custom layer built on one."""
    return any(cls.__name__.startswith("BaseConv") or cls.__name__ in ("BaseSeparableConv", "BaseDepthwiseConv")
               for layer in model._flatten_layers() for cls in type(layer).__mro__)


def tensorflow_xla(model: Any) -> bool:
    """Whether the TensorFlow epoch program of ``model`` is XLA-compiled: yes on a GPU, and on a CPU unless the
    model has convolutions.

    Measured on a 2-core CPU (benchmarks/fused_epoch_probe.py): XLA fuses a small dense model's steps into one
    loop with no per-op cost (1.2 s per MNIST epoch of the seed MLP, against 2.7 s as a TensorFlow graph), but its
    CPU convolutions are several times slower than TensorFlow's own oneDNN kernels (the Conv2D 16 net: 74 ms per
    step of 128 under XLA, 10 ms as a TensorFlow graph). ``KERASJOB_FUSED_XLA=1`` / ``0`` forces the choice.

        >>> tensorflow_xla(model)  # doctest: +SKIP
        True
    """
    forced = os.environ.get("KERASJOB_FUSED_XLA", "").strip().lower()
    if forced in ("1", "true", "yes", "0", "false", "no"):
        return forced in ("1", "true", "yes")
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU")) or not _has_convolutions(model)


def fallback_reason(model: Any, data_bytes: int) -> str | None:
    """Why one compiled program cannot train ``model`` (None: it can)."""
    import keras

    if keras.backend.backend() not in ("jax", "tensorflow"):
        return f"Keras's {keras.backend.backend()!r} backend"
    if getattr(model, "run_eagerly", False):
        return "the model is compiled with run_eagerly=True"
    stateful = [layer.name for layer in model._flatten_layers() if getattr(layer, "stateful", False)]
    if stateful:
        return f"stateful layers keep state between batches ({', '.join(stateful)})"
    memory = _device_memory()
    if memory is not None and data_bytes > DEVICE_MEMORY_SHARE * memory:
        return f"the data ({data_bytes / 2**30:.1f} GiB) does not fit on the device ({memory / 2**30:.1f} GiB)"
    return None


class Trainer(abc.ABC):
    """Trains a compiled Keras model one epoch at a time; build one with ``make_trainer``.

    ``train`` and ``validation`` are ``(x, y, sample_weight)``; ``seed`` fixes the
    shuffling (None: a fresh random order); ``shuffle=False`` keeps the data's order.
    """

    #: Whether one compiled program runs each epoch (False: Keras's fit).
    fused = True

    def __init__(self, model: Any, train: Triple, validation: Triple | None, batch_size: int, seed: int | None,
                 shuffle: bool) -> None:
        self.model = model
        self.batch_size = batch_size
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.shuffle = shuffle
        self.train_size = num_samples(train[0])
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # fit builds it on its first step; we need it now

    def order(self, epoch: int) -> Any:
        """The samples' order in ``epoch`` (a device array)."""
        import keras

        if self.shuffle:
            return epoch_order(self.seed, epoch, self.train_size)
        return keras.ops.arange(self.train_size, dtype="int32")

    @abc.abstractmethod
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (in the order ``self.order(epoch)``), then validate: Keras's epoch logs."""

    def write_back(self) -> None:
        """Make the Keras model hold the trained values (to save it); a no-op where training updated it in place."""

    def _state_variables(self) -> list[Any]:
        optimizer = [] if self.model.optimizer is None else list(self.model.optimizer.variables)
        return [*self.model.trainable_variables, *self.model.non_trainable_variables, *optimizer]

    def state(self) -> list[Any]:
        """Everything training carries from one epoch to the next, as NumPy arrays (for a checkpoint):
        the weights, the other model variables (seed generators, batch statistics) and the optimizer's."""
        import numpy as np

        return [np.array(variable.value) for variable in self._state_variables()]

    def load_state(self, arrays: list[Any]) -> None:
        """Continue from ``state()``'s arrays (a checkpoint)."""
        variables = self._state_variables()
        if len(arrays) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)):
            raise ValueError("the checkpoint does not hold this model's variables")
        for variable, value in zip(variables, arrays):
            variable.assign(value)


def _logs_to_floats(logs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    for name, value in logs.items():
        array = np.asarray(value)
        out[prefix + name] = float(array) if array.size == 1 else array.tolist()
    return out


class FusedTrainer(Trainer):
    """One compiled program per epoch over data resident on the device (the backend's subclass)."""

    def __init__(self, model: Any, train: Triple, validation: Triple | None, batch_size: int, seed: int | None,
                 shuffle: bool) -> None:
        super().__init__(model, train, validation, batch_size, seed, shuffle)
        packed = self._pack(train)
        first = slice(0, min(batch_size, self.train_size))
        # Builds the compiled loss and metrics, as fit does on its first call.
        model._symbolic_build(data_batch=tuple(take(part, first) for part in packed))
        model.reset_metrics()
        self.validation_size = 0 if validation is None else num_samples(validation[0])
        self.validation_batch = max(batch_size, min(self.validation_size, VALIDATION_BATCH))
        # Data placed on the device once: no host-to-device copy in any step or epoch.
        self.train = self._place(packed)
        self.validation = None if validation is None else self._place(self._pack(validation))

    @staticmethod
    def _pack(data: Triple) -> tuple[Any, ...]:
        """``(x, y)`` or ``(x, y, sample_weight)``, the tuple Keras's steps unpack."""
        return tuple(_standardize(part) for part in data if part is not None)

    @abc.abstractmethod
    def _place(self, data: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arrays, on the device the backend computes on."""

    @staticmethod
    def _batches(order: Any, batch_size: int) -> tuple[Any, Any]:
        """The full batches as rows of sample indices, and the smaller last batch (empty if none)."""
        import keras

        steps = order.shape[0] // batch_size
        full = keras.ops.reshape(order[: steps * batch_size], (steps, batch_size))
        return full, order[steps * batch_size:]

    def train_epoch(self, epoch: int) -> dict[str, float]:
        train_logs, validation_logs = self._run_epoch(self.order(epoch))
        logs = _logs_to_floats(train_logs)  # one copy to the host per epoch
        logs.update(_logs_to_floats(validation_logs, prefix="val_"))
        return logs

    @abc.abstractmethod
    def _run_epoch(self, order: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The compiled epoch over the samples in ``order``: the train logs, then the validation logs."""


class _JaxTrainer(FusedTrainer):
    """``jax.jit`` over a ``lax.scan`` of ``model.train_step``: weights, optimizer and metric state as the carry."""

    def __init__(self, model: Any, train: Triple, validation: Triple | None, batch_size: int, seed: int | None,
                 shuffle: bool) -> None:
        import jax

        super().__init__(model, train, validation, batch_size, seed, shuffle)
        # Copies: the state is donated to each epoch's program, and the model's own buffers must outlive it.
        self._state = tuple([jax.numpy.array(v.value, copy=True) for v in variables]
                            for variables in (model.trainable_variables, model.non_trainable_variables,
                                              model.optimizer.variables))
        self._fresh_metrics = [jax.numpy.array(v.value, copy=True) for v in model.metrics_variables]
        # Donating the state lets XLA update the weights in place instead of allocating new ones each epoch.
        # Compiled once, ahead of time, and called directly: through jax.jit, the second epoch (whose state
        # comes out of the first, placed differently) would trigger a second compilation.
        self._compiled = jax.jit(self._epoch_program, donate_argnums=0).lower(
            self._state, self._fresh_metrics, self.train, self.validation, self.order(0)).compile()

    def _place(self, data: tuple[Any, ...]) -> tuple[Any, ...]:
        import jax

        return tuple(jax.device_put(part) for part in data)

    def _results(self, metrics_values: list[Any]) -> dict[str, Any]:
        """``model.get_metrics_result()`` read from the traced metric state."""
        import keras

        with keras.StatelessScope(state_mapping=list(zip(self.model.metrics_variables, metrics_values))):
            return dict(self.model.get_metrics_result())

    def _epoch_program(self, state: tuple[list[Any], ...], fresh_metrics: list[Any], train: tuple[Any, ...],
                       validation: tuple[Any, ...] | None, order: Any) -> tuple[tuple[list[Any], ...], Any]:
        import jax

        # The data arrive as arguments, not as attributes the program closes over: a closed-over array
        # would be baked into the program as a constant (slow to compile, held twice).
        def train_step(carry: Any, indices: Any) -> tuple[Any, None]:
            # The batch is gathered on the device from the resident arrays: no shuffled copy of the data set.
            _, carry = self.model.train_step(carry, take(train, indices))
            return carry, None

        full, last = self._batches(order, self.batch_size)
        # lax.scan: the steps as one loop inside the program, compiled once whatever the step count.
        carry, _ = jax.lax.scan(train_step, (*state, fresh_metrics), full)
        if last.shape[0]:  # fit's smaller last batch: one more step on the samples left over
            carry, _ = train_step(carry, last)
        trainable, non_trainable, optimizer_values, metrics_values = carry
        train_logs = self._results(metrics_values)
        validation_logs: dict[str, Any] = {}
        if validation is not None:
            def test_step(metrics: Any, indices: Any) -> tuple[Any, None]:
                _, (_, _, metrics) = self.model.test_step((trainable, non_trainable, metrics), take(validation, indices))
                return metrics, None

            full, last = self._batches(jax.numpy.arange(self.validation_size), self.validation_batch)
            metrics_values, _ = jax.lax.scan(test_step, fresh_metrics, full)
            if last.shape[0]:
                metrics_values, _ = test_step(metrics_values, last)
            validation_logs = self._results(metrics_values)
        return (trainable, non_trainable, optimizer_values), (train_logs, validation_logs)

    def _run_epoch(self, order: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        self._state, logs = self._compiled(self._state, self._fresh_metrics, self.train, self.validation, order)
        return logs

    def _state_variables(self) -> list[Any]:
        return [*self.model.trainable_variables, *self.model.non_trainable_variables, *self.model.optimizer.variables]

    def state(self) -> list[Any]:
        import numpy as np

        return [np.array(value) for values in self._state for value in values]

    def load_state(self, arrays: list[Any]) -> None:
        import jax

        super().load_state(arrays)  # checks the shapes and sets the model's variables
        self._state = tuple([jax.numpy.array(v.value, copy=True) for v in variables]
                            for variables in (self.model.trainable_variables, self.model.non_trainable_variables,
                                              self.model.optimizer.variables))

    def write_back(self) -> None:
        for variables, values in zip((self.model.trainable_variables, self.model.non_trainable_variables,
                                      self.model.optimizer.variables), self._state):
            for variable, value in zip(variables, values):
                variable.assign(value)


class _TensorflowTrainer(FusedTrainer):
    """A ``tf.function`` per epoch whose loop calls ``model.train_step``, in place: XLA-compiled where that is
    faster (:func:`tensorflow_xla`), else a TensorFlow graph."""

    def __init__(self, model: Any, train: Triple, validation: Triple | None, batch_size: int, seed: int | None,
                 shuffle: bool) -> None:
        import tensorflow as tf

        super().__init__(model, train, validation, batch_size, seed, shuffle)
        # jit_compile: XLA fuses each step's small kernels and compiles the loop, so no op runs alone; a conv net
        # on a CPU runs faster on TensorFlow's own kernels, in the same graph loop.
        self.xla = tensorflow_xla(model)
        order = self.order(0)
        try:
            # Without AutoGraph: Keras's steps are plain traceable code (the loops here are tf.while_loop), and
            # converting their source took about half of the trace (0.5 s of CPU for the seed MLP).
            self._program = self._traced(tf.TensorSpec(order.shape, order.dtype), autograph=False)
        except Exception:  # noqa: BLE001 - a custom layer with Python control flow on tensors needs AutoGraph
            self._program = self._traced(tf.TensorSpec(order.shape, order.dtype), autograph=True)

    def _traced(self, order: Any, autograph: bool) -> Any:
        """The epoch program, traced now (errors surface here, not in the first epoch)."""
        import tensorflow as tf

        program = tf.function(self._epoch_program, jit_compile=self.xla, autograph=autograph)
        program.get_concrete_function(order)
        self._validate: Any = None
        if self.validation is not None:
            # The validation pass is a program of its own, a TensorFlow graph on a CPU: a few large batches gain
            # nothing from XLA there, and leaving them out of the XLA program cuts its compilation.
            on_cpu = not tf.config.list_logical_devices("GPU")
            self._validate = tf.function(self._validation_program, jit_compile=self.xla and not on_cpu,
                                         autograph=autograph)
            self._validate.get_concrete_function()
        return program

    def _place(self, data: tuple[Any, ...]) -> tuple[Any, ...]:
        import keras
        import tensorflow as tf

        device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
        with tf.device(device):
            return tuple(keras.tree.map_structure(tf.identity, part) for part in data)

    def _loop(self, step: Any, data: tuple[Any, ...], order: Any, batch_size: int) -> None:
        import tensorflow as tf

        full, last = self._batches(order, batch_size)

        def body(row: Any) -> Any:
            step(self._gather(data, tf.gather(full, row)))
            return row + 1

        # A graph loop: one compiled loop, no Python per step. The step's variable updates run in order through
        # the function's automatic control dependencies; its returned logs are not needed.
        tf.while_loop(lambda row: row < tf.shape(full)[0], body, [tf.constant(0)])
        if last.shape[0]:  # fit's smaller last batch: one more step on the samples left over
            step(self._gather(data, last))

    @staticmethod
    def _gather(data: tuple[Any, ...], indices: Any) -> Any:
        import keras
        import tensorflow as tf

        return keras.tree.map_structure(lambda array: tf.gather(array, indices), data)

    @staticmethod
    def _snapshot(logs: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        return {name: tf.identity(value) for name, value in logs.items()}

    def _epoch_program(self, order: Any) -> dict[str, Any]:
        """The training steps of an epoch: its train logs."""
        self.model.reset_metrics()
        self._loop(self.model.train_step, self.train, order, self.batch_size)
        return self._snapshot(self.model.get_metrics_result())

    def _validation_program(self) -> dict[str, Any]:
        """The validation pass: its logs."""
        import tensorflow as tf

        assert self.validation is not None
        self.model.reset_metrics()
        self._loop(self.model.test_step, self.validation, tf.range(self.validation_size), self.validation_batch)
        return self._snapshot(self.model.get_metrics_result())

    def _run_epoch(self, order: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        train_logs = self._program(order)
        return train_logs, ({} if self._validate is None else self._validate())


class FitTrainer(Trainer):
    """The fallback: Keras's ``fit`` with ``steps_per_execution`` and ``jit_compile``, one epoch per call, on the
    order the fused loop would use (so a resumed run continues the same way)."""

    fused = False

    def __init__(self, model: Any, train: Triple, validation: Triple | None, batch_size: int, seed: int | None,
                 shuffle: bool) -> None:
        super().__init__(model, train, validation, batch_size, seed, shuffle)
        self.train = train
        self.validation = validation
        if not getattr(model, "run_eagerly", False):
            model.steps_per_execution = FIT_STEPS_PER_EXECUTION
            model.jit_compile = True  # Keras turns it off again (with a warning) where XLA cannot compile the model

    def train_epoch(self, epoch: int) -> dict[str, float]:
        import numpy as np

        order = np.asarray(self.order(epoch))
        x, y, sample_weight = (take(part, order) for part in self.train)
        validation = None
        if self.validation is not None:
            validation = tuple(part for part in self.validation if part is not None)
        history = self.model.fit(x, y, sample_weight=sample_weight, batch_size=self.batch_size, epochs=1,
                                 shuffle=False, verbose=0, validation_data=validation,
                                 validation_batch_size=self.batch_size).history
        return _logs_to_floats({name: values[-1] for name, values in history.items()})


def make_trainer(model: Any, x: Any, y: Any, *, sample_weight: Any = None, class_weight: dict[int, float] | None = None,
                 validation: Any = None, validation_split: float = 0.0, batch_size: int = 32,
                 seed: int | None = None, shuffle: bool = True, fused: bool = True,
                 log: Any = print) -> Trainer:
    """The trainer for a compiled ``model`` and ``fit``'s data arguments: fused when it can be, else ``fit``.

    ``validation`` is ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``; ``validation_split`` is used
    only without it. ``log`` receives one line when the fused loop cannot serve the model, saying why.
    """
    if class_weight is not None:
        if sample_weight is not None:
            raise ValueError("class_weight and sample_weight cannot be given together (as in Keras's fit)")
        if len(__import__("keras").tree.flatten(y)) != 1:
            raise ValueError("class_weight needs a single output (as in Keras's fit)")
    train: Triple = (x, y, sample_weight)
    held_out: Triple | None = None
    if validation is not None:
        held_out = (validation[0], validation[1], validation[2] if len(validation) > 2 else None)
    elif validation_split:
        train, held_out = split_validation(train, validation_split)
    if class_weight is not None:
        train = (train[0], train[1], class_weight_to_sample_weight(train[1], class_weight))
    reason = "not asked for" if not fused else fallback_reason(model, _nbytes(*train, *(held_out or ())))
    if reason is None:
        import keras

        trainers: dict[str, type[FusedTrainer]] = {"jax": _JaxTrainer, "tensorflow": _TensorflowTrainer}
        try:
            return trainers[keras.backend.backend()](model, train, held_out, batch_size, seed, shuffle)
        except Exception as exc:  # noqa: BLE001 -- any failure to build the program: fit still trains the model
            reason = f"the training step does not compile into one program ({type(exc).__name__}: {exc})"
            model.reset_metrics()
    log(f"The fused epoch cannot train this model: {reason}. Training with Keras's fit "
        f"(steps_per_execution={FIT_STEPS_PER_EXECUTION}, jit_compile=True) instead.")
    return FitTrainer(model, train, held_out, batch_size, seed, shuffle)
