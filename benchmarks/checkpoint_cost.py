"""What checkpointing costs per epoch on the seed job (keras_mnist.py's model, data and fused epoch).

    python benchmarks/checkpoint_cost.py [--keras-backend tensorflow|jax] [--data-folder ../shared/data/mnist]
                                         [--epochs 4] [--repeats 1]

In one interpreter per backend it trains the seed MLP (784-300-100-10, RMSprop, batch 50) on real MNIST through
``keras_mnist.train_single`` twice, alternating: without checkpoints, and with one written after every epoch
(``checkpoint.train_epochs``: weights + optimizer state as an .npz, fsync, rename, the newest two kept). It
prints the seconds per epoch of each (the first epoch, which compiles, left out), their ratio (target <= 1.05x),
and the time the checkpoint writes themselves took, measured around them, as a share of an epoch: that share is
the cost without the noise of a shared CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "kerasjob" / "training"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-backend", choices=("tensorflow", "jax"), default="tensorflow")
    parser.add_argument("--data-folder", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.keras_backend
    import keras

    import checkpoint
    import keras_mnist
    from mnist_data import load_mnist

    data = load_mnist(args.data_folder)
    namespace = argparse.Namespace(first_layer_neurons=300, second_layer_neurons=100, learning_rate=0.001,
                                   batch_size=50, epochs=args.epochs, seed=1)
    writes: list[float] = []
    save = checkpoint.save_checkpoint

    def timed_save(*a, **k):  # the checkpoint write itself: trainer.state() is read before, timed below too
        started = time.perf_counter()
        try:
            return save(*a, **k)
        finally:
            writes.append(time.perf_counter() - started)

    checkpoint.save_checkpoint = timed_save
    per_epoch: dict[str, list[float]] = {"none": [], "checkpoint": []}
    state_reads: list[float] = []
    for _ in range(args.repeats):
        for arm in per_epoch:
            stamps: list[float] = []
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                keras_mnist.train_single(keras, namespace, data, on_epoch=lambda e, m: stamps.append(time.perf_counter()),
                                         checkpoint_dir=Path(folder) / "checkpoints" if arm == "checkpoint" else None)
                if arm == "checkpoint":
                    size = sum(p.stat().st_size for p in (Path(folder) / "checkpoints").glob("*.npz")) / 2
            times = [b - a for a, b in zip([started, *stamps], stamps)][1:]  # the first epoch compiles
            per_epoch[arm].append(statistics.median(times))
            print(f"  {arm:10s} {per_epoch[arm][-1]:.3f} s per epoch", flush=True)
    # trainer.state() (the device -> host copy) happens outside save_checkpoint: time it once on its own.
    from fused_epoch import make_trainer

    trainer = make_trainer(keras_mnist.build_model(keras, namespace), data[0], data[1], batch_size=50, seed=1)
    for _ in range(3):
        started = time.perf_counter()
        trainer.state()
        state_reads.append(time.perf_counter() - started)
    none, with_checkpoint = statistics.median(per_epoch["none"]), statistics.median(per_epoch["checkpoint"])
    write = statistics.median(writes) + statistics.median(state_reads)
    result = {"backend": args.keras_backend, "epoch_seconds_none": none, "epoch_seconds_checkpoint": with_checkpoint,
              "ratio": with_checkpoint / none, "checkpoint_write_seconds": write, "write_share": write / none,
              "checkpoint_bytes": size}
    print(f"\nKeras backend {args.keras_backend}, {os.cpu_count()} CPUs, seed MLP on MNIST, {args.epochs} epochs "
          f"(first left out), median of {args.repeats}:")
    print(f"  per epoch: {none:.3f} s without, {with_checkpoint:.3f} s with checkpoints -> {result['ratio']:.3f}x")
    print(f"  the checkpoint itself ({size / 1e6:.1f} MB): {write * 1000:.1f} ms = {result['write_share']:.1%} "
          f"of an epoch -> {1 + result['write_share']:.3f}x")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
