"""The data that travels: arrays, dicts of arrays, a DataFrame, ``.npz`` files -> one content-addressed folder.

``package_data`` checks the data against the model (``model_package.ModelSummary``) before anything is
written, then writes it once under ``$KERASJOB_HOME/data/<sha256>/``: ``train/`` holds the training shards
(``data.npz`` for in-memory data: keys ``x`` or ``x.<input>``, ``x_columns`` for a DataFrame, ``y`` or
``y.<output>``, ``sample_weight``), ``validation/`` the validation data when given. The same content gives the
same folder (and on Azure the same data asset version), so unchanged data is never written or uploaded twice.
It is never part of the code snapshot: it reaches the trainer as the job's data input (``--data-folder``).

Example:
    >>> import numpy as np
    >>> summary = ModelSummary("m", {"x": ((4,), "float32")}, {"y": ((3,), "float32")},
    ...                        "sparse_categorical_crossentropy", ("accuracy",))
    >>> package_data(summary, np.full((5, 4), np.nan), np.zeros(5))
    Traceback (most recent call last):
    ...
    kerasjob.errors.ValidationError: Invalid `x`: expected finite numbers (no NaN or inf). It holds 20 NaN or inf values, the first at row 0. Received: x=array of shape (5, 4), dtype float64
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from .errors import ValidationError
from .model_package import ModelSummary

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AZUREML_PREFIX", "DataPackage", "Described", "PreparedData", "data_digest", "iter_shards", "package_data",
           "prepare_data"]

AZUREML_PREFIX = "azureml:"
TRAIN_DIR = "train"
VALIDATION_DIR = "validation"
_SPARSE = ("sparse_categorical_crossentropy", "sparse_categorical_accuracy")
_CATEGORICAL = ("categorical_crossentropy", "categorical_focal_crossentropy", "kl_divergence", "kld")
_BINARY = ("binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge")


@dataclass(frozen=True)
class Described:
    """An array as a message shows it (never its values)."""

    array: Any

    def __repr__(self) -> str:
        return f"array of shape {tuple(self.array.shape)}, dtype {self.array.dtype}"


@dataclass(frozen=True)
class DataPackage:
    """The job's data: a local folder (``train/`` and maybe ``validation/``) or ``azureml:NAME[:VERSION]``."""

    data: str | Path
    columns: tuple[str, ...] = ()
    rows: int | None = None
    validation: bool = False


# --- turning what the caller gave into named arrays ------------------------------------------------------------


def _as_array(value: Any, argument: str) -> "np.ndarray":
    import numpy as np

    try:
        if hasattr(value, "to_numpy"):  # pandas DataFrame / Series
            array = value.to_numpy()
        else:
            array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - whatever numpy refuses
        raise ValidationError(argument, "a NumPy array (or something numpy.asarray takes)", value) from exc
    if array.dtype == object or array.dtype.kind in "USVMm" or array.ndim == 0:
        raise ValidationError(argument, "numbers (a numeric or bool array with a batch axis)", Described(array),
                              hint="Encode text and categories as numbers before training.")
    if array.dtype.kind == "b":
        array = array.astype("float32")
    return array


def _named(value: Any, names: list[str], argument: str, prefix: str) -> dict[str, "np.ndarray"]:
    """``value`` as npz keys: ``prefix`` for one array, ``prefix.<name>`` for each of a dict (checked against
    the model's ``names``)."""
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - set(names))
        missing = sorted(set(names) - set(map(str, value)))
        if unknown or missing:
            raise ValidationError(argument, f"a dict with the model's {prefix == 'x' and 'inputs' or 'outputs'} "
                                  f"as keys ({', '.join(names)})", sorted(map(str, value)),
                                  hint=f"Missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'}.")
        return {f"{prefix}.{name}": _as_array(value[name], f"{argument}[{name!r}]") for name in names}
    if isinstance(value, (list, tuple)) and len(names) > 1 and len(value) == len(names):
        return {f"{prefix}.{name}": _as_array(part, f"{argument}[{i}]") for i, (name, part) in
                enumerate(zip(names, value))}
    if len(names) > 1:
        raise ValidationError(argument, f"a dict of {len(names)} arrays, one per model "
                              f"{'input' if prefix == 'x' else 'output'} ({', '.join(names)})", type(value).__name__)
    return {prefix: _as_array(value, argument)}


def _spec_name(key: str, names: list[str]) -> str:
    return key.split(".", 1)[1] if "." in key else names[0]


# --- the checks (item 7) ----------------------------------------------------------------------------------------


def _check_finite(array: "np.ndarray", argument: str) -> None:
    import numpy as np

    if array.dtype.kind != "f":
        return
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count:
        first = int(np.argwhere(bad.reshape(len(array), -1).any(axis=1))[0][0]) if array.ndim else 0
        raise ValidationError(argument, "finite numbers (no NaN or inf)", Described(array),
                              hint=f"It holds {count} NaN or inf values, the first at row {first}.")


def _check_shape(array_shape: tuple[int, ...], spec: tuple[tuple[int | None, ...], str], argument: str,
                 what: str, array: Any) -> None:
    shape, _dtype = spec
    given = tuple(array_shape[1:])
    if len(given) != len(shape) or any(want is not None and want != got for want, got in zip(shape, given)):
        expected = "(n, " + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValidationError(argument, f"an array of shape {expected} for {what}", array,
                              hint=f"It has shape {tuple(array_shape)}."
                                   + (" Reshape it (e.g. x.reshape(-1, ...)) to the model's input."
                                      if shape else ""))


def _check_y(y: "np.ndarray", spec: tuple[tuple[int | None, ...], str], loss: str, argument: str) -> None:
    import numpy as np

    shape, _ = spec
    classes = shape[-1] if shape else None
    name = loss.lower()
    if name in _SPARSE:
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise ValidationError(argument, f"integer class labels of shape (n,) for the loss {loss!r}", Described(y),
                                  hint="One-hot labels go with 'categorical_crossentropy'; "
                                       "or pass labels = y.argmax(axis=1).")
        if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
            raise ValidationError(argument, f"integer class labels for the loss {loss!r}", Described(y),
                                  hint="It holds fractional values.")
        if classes is not None and y.size and (y.min() < 0 or y.max() >= classes):
            raise ValidationError(argument, f"class labels in 0..{classes - 1} (the model has {classes} outputs)",
                                  Described(y), hint=f"They range over {y.min():g}..{y.max():g}.")
    elif name in _CATEGORICAL:
        if y.ndim != 2 or (classes is not None and y.shape[1] != classes):
            raise ValidationError(argument, f"one-hot labels of shape (n, {classes}) for the loss {loss!r}",
                                  Described(y), hint="Integer labels go with 'sparse_categorical_crossentropy'; or "
                                                     "pass keras.utils.to_categorical(y).")
    else:
        if name in _BINARY and y.size and (y.min() < 0 or y.max() > 1):
            raise ValidationError(argument, f"labels in [0, 1] for the loss {loss!r}", Described(y),
                                  hint=f"They range over {y.min():g}..{y.max():g}.")
        if loss and y.ndim >= 1:
            want = int(np.prod([s for s in shape if s is not None])) if shape else 1
            got = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
            if None not in shape and want != got:
                raise ValidationError(argument, f"targets of shape (n, {', '.join(map(str, shape)) or '1'}) "
                                      f"(the model's output)", Described(y))


def _check_arrays(arrays: dict[str, "np.ndarray"], summary: ModelSummary, names: dict[str, str]) -> int:
    """Every check of one split; returns its number of rows. ``names``: npz key -> the argument it came from."""
    lengths = {key: len(array) for key, array in arrays.items()}
    first_key = next(iter(arrays))
    rows = lengths[first_key]
    for key, length in lengths.items():
        if length != rows:
            raise ValidationError(names[key], f"{rows} rows, as {names[first_key]} has", Described(arrays[key]),
                                  hint=f"It has {length}; x, y and sample_weight need one row per example.")
    inputs, outputs = list(summary.inputs), list(summary.outputs)
    for key, array in arrays.items():
        _check_finite(array, names[key])
        if key == "x" or key.startswith("x."):
            spec_name = _spec_name(key, inputs)
            _check_shape(array.shape, summary.inputs[spec_name], names[key], f"the model's input {spec_name!r}",
                         Described(array))
        elif key == "y" or key.startswith("y."):
            spec_name = _spec_name(key, outputs)
            _check_y(array, summary.outputs[spec_name], summary.loss, names[key])
        elif key == "sample_weight" and (array.ndim != 1 or (array.size and array.min() < 0)):
            raise ValidationError(names[key], "one weight >= 0 per example, shape (n,)", Described(array))
    if rows == 0:
        raise ValidationError(names[first_key], "at least one example", Described(arrays[first_key]))
    return rows


# --- npz files and folders of shards -------------------------------------------------------------------------


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], "np.dtype"]]:
    """The arrays of an ``.npz`` file, shape and dtype, read from their headers only."""
    import numpy as np

    headers = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as handle:
                version = np.lib.format.read_magic(handle)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _fortran, dtype = read(handle)
            headers[info.filename[:-4]] = (tuple(shape), dtype)
    return headers


def _shards(path: Path, argument: str) -> list[Path]:
    if path.is_file() and path.suffix == ".npz":
        return [path]
    if path.is_dir():
        shards = sorted(path.rglob("*.npz"))
        if shards:
            return shards
    raise ValidationError(argument, "an .npz file or a folder of .npz shards", str(path))


def _check_shards(shards: list[Path], summary: ModelSummary, argument: str, needs_y: bool) -> int:
    """Each shard's keys and shapes from its headers, then its values (NaN, labels), one shard in memory at a time."""
    import numpy as np

    rows = 0
    keys: set[str] | None = None
    for shard in shards:
        try:
            headers = _npz_headers(shard)
        except (OSError, zipfile.BadZipFile, ValueError) as exc:
            raise ValidationError(argument, "readable .npz files (numpy.savez)", str(shard), hint=str(exc)) from exc
        shard_keys = {k for k in headers if k.split(".")[0] in ("x", "y", "sample_weight")}
        if not any(k == "x" or k.startswith("x.") for k in shard_keys) or (
                needs_y and not any(k == "y" or k.startswith("y.") for k in shard_keys)):
            raise ValidationError(argument, ".npz files holding `x` (or `x.<input>`) and `y` (or `y.<output>`)",
                                  str(shard), hint=f"It holds {', '.join(sorted(headers)) or 'nothing'}.")
        if keys is not None and shard_keys != keys:
            raise ValidationError(argument, "shards that all hold the same arrays", str(shard),
                                  hint=f"{', '.join(sorted(shard_keys))} vs {', '.join(sorted(keys))}.")
        keys = shard_keys
        with np.load(shard, allow_pickle=False) as loaded:
            arrays = {key: loaded[key] for key in sorted(shard_keys)}
        rows += _check_arrays(arrays, summary, {key: f"{argument} ({shard.name}: {key})" for key in arrays})
    return rows


# --- content addressing and writing ---------------------------------------------------------------------------


def data_digest(splits: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 over each split's arrays (name, dtype, shape, bytes) or files (name, bytes): the data's address."""
    import numpy as np

    digest = hashlib.sha256()
    for split in sorted(splits):
        for key, value in sorted(splits[split].items()):
            digest.update(f"{split}/{key}\0".encode())
            if isinstance(value, Path):
                with open(value, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            else:
                array = np.ascontiguousarray(value)
                digest.update(f"{array.dtype.str}{array.shape}\0".encode())
                digest.update(array.tobytes() if array.size else b"")
    return digest.hexdigest()


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write(splits: Mapping[str, Mapping[str, Any]]) -> Path:
    """The content-addressed folder of ``splits`` (``train`` / ``validation``), written once and atomically."""
    import numpy as np

    from .home import kerasjob_home

    root = kerasjob_home() / "data"
    folder = root / data_digest(splits)[:24]
    if (folder / TRAIN_DIR).is_dir():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
    try:
        for split, content in splits.items():
            (staging / split).mkdir()
            files = {k: v for k, v in content.items() if isinstance(v, Path)}
            arrays = {k: v for k, v in content.items() if not isinstance(v, Path)}
            for relative, path in files.items():
                _link_or_copy(path, staging / split / relative)
            if arrays:
                np.savez(staging / split / "data.npz", **arrays)
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / TRAIN_DIR).is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _files_of(path: Path, argument: str) -> dict[str, Path]:
    shards = _shards(path, argument)
    if path.is_file():
        return {path.name: path}
    return {str(shard.relative_to(path)): shard for shard in shards}


def _split(x: Any, y: Any, sample_weight: Any, summary: ModelSummary, arguments: tuple[str, str, str]
           ) -> tuple[dict[str, Any], int, tuple[str, ...]]:
    """One split (train or validation): its npz content, rows and DataFrame column names, checked."""
    import numpy as np

    x_argument, y_argument, weight_argument = arguments
    if isinstance(x, (str, os.PathLike)):
        if y is not None:
            raise ValidationError(y_argument, f"None when {x_argument} is a file or folder (its .npz files hold y)",
                                  Described(np.asarray(y)) if hasattr(y, "shape") else y)
        path = Path(x).expanduser()
        files = _files_of(path, x_argument)
        rows = _check_shards(list(files.values()), summary, x_argument, needs_y=True)
        return dict(files), rows, ()
    if y is None:
        raise ValidationError(y_argument, f"the targets for {x_argument} (kerasjob trains supervised models)", y)
    columns: tuple[str, ...] = ()
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):
        columns = tuple(str(c) for c in x.columns)
        x = x.to_numpy(dtype="float32") if all(kind in "biuf" for kind in x.dtypes.map(lambda d: d.kind)) else x
    arrays = _named(x, list(summary.inputs), x_argument, "x")
    arrays.update(_named(y, list(summary.outputs), y_argument, "y"))
    if sample_weight is not None:
        arrays["sample_weight"] = _as_array(sample_weight, weight_argument)
    names = {key: (x_argument if key.startswith("x") else y_argument if key.startswith("y") else weight_argument)
             + (f"[{key.split('.', 1)[1]!r}]" if "." in key else "") for key in arrays}
    rows = _check_arrays(arrays, summary, names)
    if columns:
        arrays["x_columns"] = np.asarray(columns, dtype=str)
    return arrays, rows, columns


@dataclass(frozen=True)
class PreparedData:
    """Data checked against the model, not yet written: ``write()`` gives its ``DataPackage``."""

    splits: Mapping[str, Mapping[str, Any]]
    columns: tuple[str, ...] = ()
    rows: int | None = None
    registered: str | None = None

    def write(self) -> DataPackage:
        if self.registered is not None:
            return DataPackage(data=self.registered)
        return DataPackage(data=_write(self.splits), columns=self.columns, rows=self.rows,
                           validation=VALIDATION_DIR in self.splits)


def package_data(summary: ModelSummary, x: Any, y: Any = None, *, validation_data: Any = None,
                 sample_weight: Any = None) -> DataPackage:
    """``prepare_data`` then ``write``: the checked data as a content-addressed folder (see ``prepare_data``)."""
    return prepare_data(summary, x, y, validation_data=validation_data, sample_weight=sample_weight).write()


def prepare_data(summary: ModelSummary, x: Any, y: Any = None, *, validation_data: Any = None,
                 sample_weight: Any = None) -> PreparedData:
    """Check ``x``, ``y``, ``validation_data`` and ``sample_weight`` against the model, then write them once.

    ``x``: an array, a dict of arrays (one per input), a DataFrame, a path to an ``.npz`` file or a folder of
    ``.npz`` shards (then ``y`` is None: the files hold it), or ``"azureml:NAME[:VERSION]"`` (a data asset
    laid out as ``train/`` [+ ``validation/``] folders of ``.npz`` files; checked by the trainer).
    ``validation_data``: ``(x_val, y_val)``, ``(x_val, y_val, sample_weight_val)`` or a path, as ``x``.
    """
    if isinstance(x, str) and x.startswith(AZUREML_PREFIX):
        for name, value in (("y", y), ("validation_data", validation_data), ("sample_weight", sample_weight)):
            if value is not None:
                raise ValidationError(name, f"None when x is a registered data asset ({x!r} holds it)", value)
        return PreparedData(splits={}, registered=x)
    if x is None:
        raise ValidationError("x", "the training inputs: arrays, a DataFrame, an .npz file or folder, or "
                              "'azureml:NAME[:VERSION]'", x)
    train, rows, columns = _split(x, y, sample_weight, summary, ("x", "y", "sample_weight"))
    splits: dict[str, dict[str, Any]] = {TRAIN_DIR: train}
    if validation_data is not None:
        if isinstance(validation_data, (str, os.PathLike)):
            val_x, val_y, val_weight = validation_data, None, None
        elif isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
            val_x, val_y = validation_data[0], validation_data[1]
            val_weight = validation_data[2] if len(validation_data) == 3 else None
        else:
            raise ValidationError("validation_data", "a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), "
                                  "or an .npz file or folder", type(validation_data).__name__)
        splits[VALIDATION_DIR], _, _ = _split(val_x, val_y, val_weight, summary,
                                              ("validation_data[0]", "validation_data[1]", "validation_data[2]"))
    return PreparedData(splits=splits, columns=columns, rows=rows)


def iter_shards(folder: Path) -> Iterator[Path]:
    """The training shards of a packaged data folder."""
    yield from sorted((folder / TRAIN_DIR).rglob("*.npz"))
