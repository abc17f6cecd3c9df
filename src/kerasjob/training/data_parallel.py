"""Every device of a node on JAX: the fused epoch, data parallel over all local devices.

Azure ML's GPU VMs carry 1-8 GPUs (``Standard_NC48ads_A100_v4`` 2, ``Standard_ND96amsr_A100_v4`` 8). On JAX,
when the node has more than one device, ``use_all_devices`` sets Keras's ``keras.distribution.DataParallel``
over all of them before the model is built (its variables are then replicated on every device), and
``DataParallelTrainer`` runs the fused epoch (``fused_epoch.py``'s JAX program, unchanged) with:

- the data replicated on every device once (MNIST is 190 MB in float32; a data set that does not fit each device
  does not suit the fused epoch anyway);
- each step's batch of sample indices sharded along the batch axis (``with_sharding_constraint`` on the mesh's
  ``batch`` axis), so each device gathers and trains on its own shard of the batch; XLA's SPMD partitioner then
  sums the gradients across the devices (an all-reduce) and every device applies the same update to its replica.

Batch size: ``--batch-size`` is the batch *per device*; the global batch is ``batch_size x devices``, as with
TensorFlow's workers (``multi_worker.py``), and the learning rate is left as given. One step on N devices is
then the same arithmetic as one step of the global batch on one device (tests/test_data_parallel.py checks the
weights against that, and that both devices end with identical weights).

Several nodes (``jax.distributed.initialize``) are not built: see ``keras_mnist.py``'s refusal.

Standard library at import; Keras and JAX inside the functions (the job's folder runs without kerasjob).

Example:
    >>> devices = use_all_devices(keras)  # doctest: +SKIP  (before the model is built)
    >>> trainer = DataParallelTrainer(model, (x, y, None), (x_val, y_val, None), batch_size=50, seed=1,
    ...                               shuffle=True, devices=devices)                  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mypy reads the siblings as the package modules they also are
    from kerasjob.training.fused_epoch import (FitTrainer, FusedTrainer, Trainer, Triple, _JaxTrainer, _nbytes,
                                               class_weight_to_sample_weight, fallback_reason, split_validation)
else:  # at run time, sibling helpers: this folder is the job's whole source directory (no kerasjob installed)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fused_epoch import (FitTrainer, FusedTrainer, Trainer, Triple, _JaxTrainer, _nbytes,
                             class_weight_to_sample_weight, fallback_reason, split_validation)

__all__ = ["BATCH_AXIS", "DataParallelTrainer", "make_data_parallel_trainer", "use_all_devices"]

#: The mesh axis ``keras.distribution.DataParallel`` names.
BATCH_AXIS = "batch"


def use_all_devices(keras: Any) -> int:
    """On JAX with several local devices, ``keras.distribution.DataParallel`` over all of them (set for this
    process, before any model is built); the number of devices the job trains on (1: nothing changed)."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    devices = jax.local_devices()
    if len(devices) < 2:
        return 1
    names = [f"{device.platform}:{device.id}" for device in devices]
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=names))
    return len(devices)


class DataParallelTrainer(_JaxTrainer):
    """The fused JAX epoch over ``devices`` local devices: ``batch_size`` per device, replicated weights."""

    def __init__(self, model: Any, train: Triple, validation: Triple | None, batch_size: int, seed: int | None,
                 shuffle: bool, devices: int) -> None:
        import keras

        distribution = keras.distribution.distribution()
        if distribution is None or len(distribution.device_mesh.devices.flatten()) != devices:
            raise ValueError("call use_all_devices(keras) before the model is built")
        self.mesh = distribution.device_mesh.backend_mesh
        self.devices = devices
        self.per_device_batch = batch_size
        super().__init__(model, train, validation, batch_size * devices, seed, shuffle)

    def _place(self, data: tuple[Any, ...]) -> tuple[Any, ...]:
        """Every array on every device: each gathers its own shard of every batch from its own copy."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        replicated = NamedSharding(self.mesh, PartitionSpec())
        return tuple(jax.device_put(part, replicated) for part in data)

    def _batches(self, order: Any, batch_size: int) -> tuple[Any, Any]:  # type: ignore[override]
        """The batches of sample indices, each row split across the devices along the batch axis."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        full, last = FusedTrainer._batches(order, batch_size)
        if full.shape[1] % self.devices == 0:
            full = jax.lax.with_sharding_constraint(full, NamedSharding(self.mesh, PartitionSpec(None, BATCH_AXIS)))
        return full, last


def make_data_parallel_trainer(model: Any, x: Any, y: Any, *, sample_weight: Any, class_weight: dict[int, float] | None,
                               validation: Triple | None, validation_split: float, batch_size: int, seed: int | None,
                               shuffle: bool, devices: int, log: Any = print) -> Trainer:
    """``fused_epoch.make_trainer`` over ``devices`` devices (``use_all_devices`` called before the model was
    built): the fused epoch data parallel, else Keras's ``fit``, which shards its batches over the same
    ``DataParallel`` distribution itself. ``batch_size`` is per device."""
    if class_weight is not None and sample_weight is not None:
        raise ValueError("class_weight and sample_weight cannot be given together (as in Keras's fit)")
    train: Triple = (x, y, sample_weight)
    held_out = validation
    if held_out is None and validation_split:
        train, held_out = split_validation(train, validation_split)
    if class_weight is not None:
        train = (train[0], train[1], class_weight_to_sample_weight(train[1], class_weight))
    reason = fallback_reason(model, _nbytes(*train, *(held_out or ())))
    if reason is None:
        try:
            trainer = DataParallelTrainer(model, train, held_out, batch_size, seed, shuffle, devices)
            log(f"Data parallel over {devices} devices: global batch {batch_size * devices} ({batch_size} per "
                "device)")
            return trainer
        except Exception as exc:  # noqa: BLE001 -- any failure to build the program: fit still trains the model
            reason = f"the training step does not compile into one program ({type(exc).__name__}: {exc})"
            model.reset_metrics()
    log(f"The fused epoch cannot train this model: {reason}. Training with Keras's fit over {devices} devices "
        f"(global batch {batch_size * devices}) instead.")
    return FitTrainer(model, train, held_out, batch_size * devices, seed, shuffle)
