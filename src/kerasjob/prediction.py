"""``predict(model, images)``: the trained model's digits for a few images, in one call.

The model is a ``TrainingResult``, a folder (an MLflow model, or one holding
``model.keras``) or a model of the local MLflow registry: ``"NAME"`` (its
``champion``, else its latest version), ``"NAME@ALIAS"``, ``"NAME:VERSION"`` or
``"models:/NAME/VERSION"`` (``local_runs.resolve_model``). Images are a NumPy array (N x 784 or N x 28 x 28; uint8 0-255
or float 0-1), PNG files (28 x 28, grayscale or not), or an IDX images file.
Everything about the images is checked before the model is loaded, and the
model is loaded once per call.

Example:
    >>> prediction = predict("models:/keras-mnist/1", "t10k-images-idx3-ubyte.gz")   # doctest: +SKIP
    >>> prediction.digits[:5]                                                      # doctest: +SKIP
    [7, 2, 1, 0, 4]
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

from .errors import ValidationError
from .optional import PREDICT
from .quiet import quiet_native_stderr

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .run import TrainingResult

__all__ = ["Images", "Prediction", "load_images", "model_location", "predict"]

SIDE = 28
PIXELS = SIDE * SIDE
Images = Union["NDArray[Any]", str, os.PathLike[str], Sequence[Union[str, os.PathLike[str]]]]


@dataclass(frozen=True)
class Prediction:
    """The predicted digit of each image, and the ten probabilities behind it."""

    digits: list[int]
    probabilities: list[list[float]]

    def accuracy(self, labels: Sequence[int]) -> float:
        """The share of ``labels`` predicted right."""
        if len(labels) != len(self.digits):
            raise ValidationError("labels", f"{len(self.digits)} labels, one per image", f"{len(labels)} labels")
        return sum(int(digit == int(label)) for digit, label in zip(self.digits, labels)) / max(len(labels), 1)

    def to_dict(self) -> dict[str, Any]:
        return {"digits": self.digits, "probabilities": self.probabilities}


def _from_array(array: NDArray[Any], received: object) -> NDArray[np.float32]:
    import numpy as np

    if array.ndim in (1, 2) and array.shape[-1] == PIXELS:
        flat = array.reshape(-1, PIXELS)
    elif array.ndim in (2, 3) and array.shape[-2:] == (SIDE, SIDE):
        flat = array.reshape(-1, PIXELS)
    else:
        raise ValidationError("images", f"an array of N x {PIXELS} or N x {SIDE} x {SIDE} pixels", received,
                              hint=f"Its shape is {tuple(array.shape)}.")
    if len(flat) == 0:
        raise ValidationError("images", "at least one image", received)
    if flat.dtype == np.uint8:
        return (flat / np.float32(255)).astype(np.float32)
    if not np.issubdtype(flat.dtype, np.floating) and not np.issubdtype(flat.dtype, np.integer):
        raise ValidationError("images", "uint8 pixels 0-255 or float pixels 0-1", received,
                              hint=f"Its dtype is {flat.dtype}.")
    low, high = float(flat.min()), float(flat.max())
    if np.issubdtype(flat.dtype, np.integer) or low < 0.0 or high > 1.0:
        if np.issubdtype(flat.dtype, np.integer) and 0 <= low and high <= 255:
            return (flat / np.float32(255)).astype(np.float32)
        raise ValidationError("images", "uint8 pixels 0-255 or float pixels 0-1", received,
                              hint=f"Its values run from {low:g} to {high:g}.")
    return flat.astype(np.float32)


def _read_png(path: Path) -> NDArray[Any]:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
    except (OSError, UnidentifiedImageError) as error:
        raise ValidationError("images", "PNG files, an IDX images file or an array", str(path),
                              hint=f"It could not be read as an image ({error}).") from None
    if gray.shape != (SIDE, SIDE):
        raise ValidationError("images", f"{SIDE} x {SIDE} pixel images, as MNIST's", str(path),
                              hint=f"It is {gray.shape[1]} x {gray.shape[0]}.")
    return gray


def load_images(images: Images) -> NDArray[np.float32]:
    """``images`` in any accepted form as float32 N x 784 in [0, 1] (``ValidationError`` otherwise)."""
    import numpy as np

    from .training.mnist_data import MnistFormatError, read_idx

    if isinstance(images, np.ndarray):
        return _from_array(images, f"array of shape {images.shape}")
    paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    if not paths or not all(isinstance(path, (str, os.PathLike)) for path in paths):
        raise ValidationError("images", "a NumPy array, PNG paths or an IDX images file", images)
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if missing:
        raise ValidationError("images", "existing PNG or IDX files", missing)
    first = Path(paths[0])
    if len(paths) == 1 and not first.suffix.lower() == ".png":
        try:
            array = read_idx(first)
        except MnistFormatError as error:
            raise ValidationError("images", "PNG files or an IDX images file (N x 28 x 28)", str(first),
                                  hint=str(error)) from None
        return _from_array(array, str(first))
    return _from_array(np.stack([_read_png(Path(path)) for path in paths]), [str(path) for path in paths])


def model_location(model: object) -> tuple[str, str | None]:
    """``(uri or folder, tracking URI)`` for ``mlflow.pyfunc.load_model``; checked, nothing loaded.

    A registry reference resolves to one version (``models:/NAME/VERSION``), so that what
    is served or predicted with is named exactly.
    """
    from .backends import JobRun
    from .run import TrainingResult, model_registry_of

    if isinstance(model, TrainingResult):
        location = model_registry_of(model.run).model_uri(model.model_name, model.model_version)
        return location if location is not None else (_downloaded(model.run), None)
    if isinstance(model, JobRun):
        return _downloaded(model), None
    if isinstance(model, os.PathLike) or isinstance(model, str) and Path(model).is_dir():
        if not Path(model).is_dir():
            raise ValidationError("model", "an existing model folder", str(model))
        return str(model), None
    if isinstance(model, str) and not model.startswith("models:/") and (os.sep in model or model.startswith(".")):
        from .local_runs import REFERENCE_FORMS

        raise ValidationError("model", f"an existing model folder (there is none at {str(Path(model).absolute())!r})"
                                       f" or a registered model: {REFERENCE_FORMS}", model)
    if isinstance(model, str):
        from . import tracking
        from .local_runs import resolve_model

        chosen = resolve_model(model)
        return f"models:/{chosen.name}/{chosen.version}", tracking.tracking_uri()
    from .local_runs import REFERENCE_FORMS

    raise ValidationError("model", f"a TrainingResult, a model folder or a registered model: {REFERENCE_FORMS}",
                          model)


def _downloaded(run: Any) -> str:
    from .run import download_model

    folder = Path(tempfile.mkdtemp(prefix="kerasjob-model-")) / "model"
    return str(download_model(run, folder))


def _load(uri: str, tracking_uri: str | None) -> Any:
    """A callable from float32 N x 784 to N x 10 probabilities: MLflow's pyfunc, or Keras for a bare model.keras."""
    folder = Path(uri)
    if folder.is_dir() and not (folder / "MLmodel").is_file():
        if not (folder / "model.keras").is_file():
            raise ValidationError("model", "a folder holding an MLflow model (MLmodel) or model.keras", uri)
        import keras

        keras_model = keras.saving.load_model(folder / "model.keras")
        return lambda x: keras_model.predict(x, verbose=0, batch_size=2000)
    import mlflow
    from mlflow.exceptions import MlflowException

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ValidationError("model", "a registered model version or an MLflow model folder", uri,
                              hint=str(error).splitlines()[0]) from None
    try:
        raw = pyfunc.get_raw_model()
    except NotImplementedError:
        raw = None
    keras = sys.modules.get("keras")  # loaded by MLflow's Keras flavour, if that is the model's
    if keras is not None and isinstance(raw, keras.Model):
        # MLflow's Keras flavour calls model.predict(x) with Keras's progress bar on stdout: call it quietly
        return lambda x: raw.predict(x, verbose=0, batch_size=2000)
    return pyfunc.predict


def predict(model: TrainingResult | str | os.PathLike[str], images: Images) -> Prediction:
    """The digits ``model`` sees in ``images``, with their probabilities (see the module docstring)."""
    import numpy as np

    PREDICT.require()
    pixels = load_images(images)
    uri, tracking_uri = model_location(model)
    with quiet_native_stderr():  # TensorFlow's start-up lines, written from C++ as the model loads
        probabilities = np.asarray(_load(uri, tracking_uri)(pixels), dtype=np.float64)
    return Prediction(digits=probabilities.argmax(axis=1).astype(int).tolist(),
                      probabilities=np.round(probabilities, 6).tolist())
