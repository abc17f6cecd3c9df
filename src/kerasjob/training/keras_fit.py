"""Train any compiled Keras model on ``.npz`` data: kerasjob's packaged generic trainer (``kerasjob.fit``'s job).

Runs unchanged in an Azure ML run (v1 or v2), under kerasjob's local backend, and alone:

    python keras_fit.py --model m.keras --data d.npz [--validation-data v.npz] [--epochs 1 --batch-size 32 ...]

The model is a ``.keras`` file (a compiled model) or, with ``--builder``, a
cloudpickle of ``fn(hyperparameters) -> compiled keras.Model`` receiving every
other ``--name value`` pair; ``--custom-objects`` is a cloudpickle of
``{name: object}`` registered before the model loads. The data is an ``.npz``
file or a folder of ``.npz`` shards: ``x`` (or ``x.<input>``), ``y`` (or
``y.<output>``), optionally ``sample_weight`` and ``x_columns``.

Trains with ``fused_epoch.py`` (one compiled program per epoch; Keras's
``fit`` where that cannot serve the model, said in the log), checkpoints every
epoch into ``--checkpoint-dir`` and resumes from the newest checkpoint. Logs
each epoch's metrics under Keras's names (``loss``, ``accuracy``,
``val_loss``, ...) through MLflow or kerasjob's supervisor and on stdout;
writes ``outputs/history.json``, ``outputs/model/`` (an MLflow model with a
signature and an input example inferred from the data) and
``outputs/training.png``. Standard library, NumPy and Keras (+ MLflow when
installed, cloudpickle when a pickle travels); the folder needs no kerasjob.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mypy reads the siblings as the package modules they also are
    from kerasjob.training.checkpoint import DEFAULT_CHECKPOINT_DIR, checkpoint_dir_from, train_epochs
    from kerasjob.training.compile_cache import (CACHE_ENV, COMPILE_CACHE_FLAG, CompileCounter, enable_compile_cache,
                                                 keras_backend_in_use)
    from kerasjob.training.contract import KERAS_BACKENDS
    from kerasjob.training.data_parallel import make_data_parallel_trainer, use_all_devices
    from kerasjob.training.fused_epoch import make_trainer
    from kerasjob.training.mlflow_model import preload, save_model, saved_message, without_tensorflow_import
    from kerasjob.training.tracking import Tracker, save_history_plot, write_json
else:  # at run time, sibling helpers: this folder is the job's whole source directory (no kerasjob installed)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from checkpoint import DEFAULT_CHECKPOINT_DIR, checkpoint_dir_from, train_epochs
    from compile_cache import CACHE_ENV, COMPILE_CACHE_FLAG, CompileCounter, enable_compile_cache, keras_backend_in_use
    from contract import KERAS_BACKENDS
    from data_parallel import make_data_parallel_trainer, use_all_devices
    from fused_epoch import make_trainer
    from mlflow_model import preload, save_model, saved_message, without_tensorflow_import
    from tracking import Tracker, save_history_plot, write_json

__all__ = ["Data", "load_data", "load_model", "main", "parse_args", "parse_value", "resolve"]

OUTPUTS = Path("outputs")


class Data:
    """What a data path holds: ``x`` and ``y`` (arrays, or dicts of them by input/output name), the sample
    weights (or None) and the column names of a table (or None)."""

    def __init__(self, x: Any, y: Any, sample_weight: Any, columns: list[str] | None) -> None:
        self.x, self.y, self.sample_weight, self.columns = x, y, sample_weight, columns

    def __len__(self) -> int:
        first = next(iter(self.x.values())) if isinstance(self.x, dict) else self.x
        return len(first)


def parse_value(text: str) -> Any:
    """A hyperparameter's text as a value: int, float, bool (``true``/``false``), else the text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _boolean(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected true or false. Received: {text}")
    return words[text.lower()]


def _class_weight(text: str) -> dict[int, float]:
    try:
        return {int(key): float(value) for key, value in json.loads(text).items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f'expected a JSON object such as {{"0": 1.0, "1": 2.5}}. '
                                         f"Received: {text}") from exc


def _split_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1). Received: {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1. Received: {text}")
    return value


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The trainer's own flags, and every other ``--name value`` pair as a hyperparameter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="a .keras file holding a compiled model")
    model.add_argument("--builder", help="a cloudpickle of fn(hyperparameters: dict) -> compiled keras.Model")
    parser.add_argument("--custom-objects", help="a cloudpickle of {name: object}, registered before the model loads")
    parser.add_argument("--data", required=True, help="an .npz file, or a folder of .npz shards")
    parser.add_argument("--validation-data", help="validation data, in the same form as --data")
    parser.add_argument("--epochs", type=_positive, default=1)
    parser.add_argument("--batch-size", type=_positive, default=32)
    parser.add_argument("--validation-split", type=_split_fraction, default=0.0)
    parser.add_argument("--shuffle", type=_boolean, default=True)
    parser.add_argument("--class-weight", type=_class_weight, default=None, help='JSON, e.g. \'{"0": 1.0, "1": 2.5}\'')
    parser.add_argument("--seed", type=int, default=None, help="seed for the weights and the shuffling")
    parser.add_argument("--keras-backend", choices=KERAS_BACKENDS, default=os.environ.get("KERAS_BACKEND"))
    parser.add_argument("--checkpoint-dir", default=DEFAULT_CHECKPOINT_DIR,
                        help=f"checkpoints, one per epoch, resumed from (default {DEFAULT_CHECKPOINT_DIR}; "
                             "'none': no checkpoints)")
    parser.add_argument(COMPILE_CACHE_FLAG, default=None,
                        help=f"folder of the persistent compilation cache, or 'none' (default: {CACHE_ENV}, else "
                             "$KERASJOB_CACHE_DIR/compile or ~/.cache/kerasjob/compile)")
    parser.add_argument("--fused", type=_boolean, default=True,
                        help="train one compiled program per epoch where the model allows (default true)")
    args, rest = parser.parse_known_args(argv)
    for name in ("model", "builder", "custom_objects"):
        if getattr(args, name):
            setattr(args, name, resolve(getattr(args, name)))
    hyperparameters: dict[str, Any] = {}
    index = 0
    while index < len(rest):
        flag = rest[index]
        if not flag.startswith("--") or len(flag) == 2:
            parser.error(f"expected --name value pairs after the trainer's own flags. Received: {flag}")
        name, _, inline = flag[2:].partition("=")
        if inline or "=" in flag:
            value, index = inline, index + 1
        elif index + 1 < len(rest):
            value, index = rest[index + 1], index + 2
        else:
            parser.error(f"--{name} needs a value")
        hyperparameters[name.replace("-", "_")] = parse_value(value)
    return args, hyperparameters


def _shards(path: Path) -> list[Path]:
    if path.is_dir():
        shards = sorted(path.rglob("*.npz"))
        if not shards:
            raise ValueError(f"{path} holds no .npz file")
        return shards
    if not path.is_file():
        raise ValueError(f"{path} is neither an .npz file nor a folder of them")
    return [path]


def load_data(path: str | os.PathLike[str]) -> Data:
    """The arrays of an ``.npz`` file, or of every shard under a folder (sorted, concatenated)."""
    import numpy as np

    parts: dict[str, list[Any]] = {}
    columns: list[str] | None = None
    for shard in _shards(Path(path)):
        with np.load(shard, allow_pickle=False) as stored:
            keys = set(stored.files)
            if parts and keys - {"x_columns"} != set(parts):
                raise ValueError(f"shard {shard} holds {sorted(keys)}, the first held {sorted(parts)}")
            for key in sorted(keys):
                if key == "x_columns":
                    columns = [str(name) for name in stored[key]]
                else:
                    parts.setdefault(key, []).append(stored[key])
    arrays = {key: values[0] if len(values) == 1 else np.concatenate(values) for key, values in parts.items()}

    def structure(prefix: str) -> Any:
        if prefix in arrays:
            return arrays[prefix]
        named = {key[len(prefix) + 1:]: array for key, array in arrays.items() if key.startswith(prefix + ".")}
        return named or None

    x = structure("x")
    if x is None:
        raise ValueError(f"{path} holds no x (keys: {sorted(arrays)})")
    return Data(x, structure("y"), arrays.get("sample_weight"), columns)


def _load_pickle(path: str) -> Any:
    import cloudpickle

    with open(path, "rb") as stream:
        return cloudpickle.load(stream)


def resolve(path: str) -> str:
    """``path`` as given when it exists, else beside this script (a job's files sit in its source folder)."""
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), path)
    return beside if not os.path.exists(path) and not os.path.isabs(path) and os.path.exists(beside) else path


def load_model(keras: Any, args: argparse.Namespace, hyperparameters: dict[str, Any]) -> Any:
    """The compiled model: the ``.keras`` file, or what the builder makes of the hyperparameters."""
    custom_objects: dict[str, Any] = {}
    if args.custom_objects:
        custom_objects = dict(_load_pickle(args.custom_objects))
        keras.saving.get_custom_objects().update(custom_objects)
    if args.model:
        with warnings.catch_warnings():  # a compiled, never-trained model's optimizer has no variables yet
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = keras.saving.load_model(args.model, custom_objects=custom_objects or None)
    else:
        model = _load_pickle(args.builder)(dict(hyperparameters))
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise ValueError("the model is not compiled (call model.compile(optimizer=..., loss=...) first)")
    return model


def _model_inputs(model: Any, x: Any) -> Any:
    """``x`` as the model takes it: a dict of named inputs becomes a list where the model's inputs are a list."""
    if not isinstance(x, dict):
        return x
    names = [getattr(tensor, "name", None) for tensor in getattr(model, "inputs", None) or []]
    structure = getattr(model, "_inputs_struct", None)
    if isinstance(structure, (list, tuple)) and names and set(names) == set(x):
        return [x[name] for name in names]
    return x


def _model_outputs(model: Any, y: Any) -> Any:
    if not isinstance(y, dict):
        return y
    names = list(getattr(model, "output_names", None) or [])
    structure = getattr(model, "_outputs_struct", None)
    if isinstance(structure, (list, tuple)) and names and set(names) == set(y):
        return [y[name] for name in names]
    return y


def _short(path: str) -> str:
    """A data path as the log shows it: its last two parts (``.../<content digest>/train``), not the machine's
    whole path (kerasjob's home, a mount point on Azure ML)."""
    parts = Path(path).parts
    return path if len(parts) <= 2 else ".../" + "/".join(parts[-2:])


def main(argv: list[str] | None = None) -> int:
    try:
        args, hyperparameters = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        data = load_data(args.data)
        validation = load_data(args.validation_data) if args.validation_data else None
    except (OSError, ValueError) as exc:
        print(f"keras_fit.py: cannot read the data: {exc}", file=sys.stderr)
        return 2
    print(f"Data: {len(data)} training samples from {_short(args.data)}"
          + (f", {len(validation)} validation samples from {_short(args.validation_data)}" if validation else ""),
          flush=True)
    if args.keras_backend:
        os.environ["KERAS_BACKEND"] = args.keras_backend  # read once, when Keras is first imported
    backend = keras_backend_in_use()
    if args.compile_cache:
        os.environ[CACHE_ENV] = args.compile_cache
    cache_folder = enable_compile_cache(backend)  # before Keras loads the backend
    import keras

    compiles = CompileCounter(cache_folder, backend)

    if args.seed is not None:
        with without_tensorflow_import(keras):  # on JAX: seeding would import TensorFlow only to seed it
            keras.utils.set_random_seed(args.seed)
    tracker = Tracker(chief=True)
    tracker.params({**hyperparameters, "epochs": args.epochs, "batch_size": args.batch_size,
                    "keras_backend": keras.backend.backend()})
    devices = use_all_devices(keras) if args.fused else 1  # JAX on several devices: before the model is built
    try:
        model = load_model(keras, args, hyperparameters)
    except (OSError, ValueError, TypeError) as exc:
        print(f"keras_fit.py: cannot load the model: {exc}", file=sys.stderr)
        return 2
    preload()  # MLflow imports while the model trains; outputs/model is an MLflow model

    x, y = _model_inputs(model, data.x), _model_outputs(model, data.y)
    validation_triple = None
    if validation is not None:
        validation_triple = (_model_inputs(model, validation.x), _model_outputs(model, validation.y),
                             validation.sample_weight)
    started = time.perf_counter()
    options = {"sample_weight": data.sample_weight, "class_weight": args.class_weight,
               "validation": validation_triple, "validation_split": args.validation_split,
               "batch_size": args.batch_size, "seed": args.seed, "shuffle": args.shuffle,
               "log": lambda line: print(line, flush=True)}
    if devices > 1:  # every device of the node, --batch-size per device
        trainer = make_data_parallel_trainer(model, x, y, devices=devices, **options)
    else:
        trainer = make_trainer(model, x, y, fused=args.fused, **options)
    epoch_started = [time.perf_counter()]

    def scalars(logs: dict[str, Any]) -> dict[str, float]:
        return {name: value for name, value in logs.items() if isinstance(value, float)}

    def show(epoch: int, logs: dict[str, Any]) -> None:
        shown = " - ".join(f"{name} {value:.4f}" for name, value in scalars(logs).items())
        print(f"Epoch {epoch + 1}/{args.epochs} - {time.perf_counter() - epoch_started[0]:.1f}s - {shown}", flush=True)
        epoch_started[0] = time.perf_counter()

    history = train_epochs(trainer, args.epochs, checkpoint_dir_from(args.checkpoint_dir),
                           lambda epoch, logs: tracker.metrics(scalars(logs), step=epoch),
                           log=lambda line: print(line, flush=True), show=show)
    trainer.write_back()
    if devices > 1:  # the signature's example batch (a few rows) need not split across the devices
        keras.distribution.set_distribution(None)
    print(f"Fit seconds: {time.perf_counter() - started:.2f} ({keras.backend.backend()}, "
          f"{'fused epoch' if trainer.fused else 'Keras fit'})", flush=True)
    print(compiles.summary(), flush=True)

    write_json(history, OUTPUTS / "history.json")
    model_dir = OUTPUTS / "model"
    as_mlflow = save_model(model, model_dir, data.x, columns=data.columns,
                           custom_objects=Path(args.custom_objects) if args.custom_objects else None)
    save_history_plot(history, OUTPUTS / "training.png", title=str(getattr(model, "name", "model")))
    tracker.close(OUTPUTS / "history.json", OUTPUTS / "training.png")
    print(saved_message(model_dir, as_mlflow), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
