"""``kerasjob.fit(model, x, y, ...)``: your own compiled Keras model, trained anywhere, as ``keras.Model.fit`` reads.

The model travels as a ``.keras`` file (custom objects of the caller's ``__main__`` pickled by value), the data
as a content-addressed ``.npz`` folder (a data asset on Azure); kerasjob's packaged trainer (``keras_fit.py``)
trains it with the fused epoch loop, logs every compiled metric per epoch under Keras's names, writes an MLflow
model with a signature inferred from the data and registers it. The result carries Keras's ``history`` and
``load_model()`` gives the trained model back.

Example:
    >>> result = kerasjob.fit(model, x_train, y_train, epochs=2, batch_size=128,
    ...                       validation_data=(x_test, y_test))            # doctest: +SKIP
    >>> result.history["val_accuracy"][-1] > 0.97                           # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from .errors import ValidationError

__all__ = ["fit", "fit_hyperparameters"]


def fit_hyperparameters(*, batch_size: int = 32, epochs: int = 1, validation_split: float = 0.0, shuffle: bool = True,
                        class_weight: Mapping[Any, float] | None = None, seed: int | None = None
                        ) -> dict[str, Any]:
    """``fit``'s options as the trainer's flags (``--epochs 2 --batch-size 128 ...``); ``class_weight`` as JSON.

    Example:
        >>> fit_hyperparameters(epochs=2, class_weight={0: 1.0, 1: 2.5})["class_weight"]
        '{"0": 1.0, "1": 2.5}'
    """
    options: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size}
    if validation_split:
        options["validation_split"] = validation_split
    if shuffle is not True:
        options["shuffle"] = shuffle
    if class_weight is not None:
        if not isinstance(class_weight, Mapping) or not class_weight:
            raise ValidationError("class_weight", "a dict of class index -> weight, e.g. {0: 1.0, 1: 2.5}",
                                  class_weight)
        weights = {}
        for key, value in class_weight.items():
            if isinstance(key, bool) or not isinstance(key, int) and not (isinstance(key, str) and key.isdigit()):
                raise ValidationError("class_weight", "integer class indices as keys", key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValidationError(f"class_weight[{key!r}]", "a finite weight >= 0", value)
            weights[str(int(key))] = float(value)
        options["class_weight"] = json.dumps(weights)
    if seed is not None:
        options["seed"] = seed
    return options


def fit(model: Any, x: Any = None, y: Any = None, *, batch_size: int = 32, epochs: int = 1,
        validation_data: Any = None, validation_split: float = 0.0, shuffle: bool = True,
        class_weight: Mapping[Any, float] | None = None, sample_weight: Any = None, seed: int | None = None,
        hyperparameters: Mapping[str, Any] | None = None, **job: Any) -> Any:
    """Train ``model`` on ``x`` and ``y`` as ``model.fit`` would, on any backend; register it; return the result.

    Args:
        model: a compiled ``keras.Model``, a path to a ``.keras`` file, or a builder
            ``fn(hyperparameters: dict) -> compiled keras.Model`` (called with ``hyperparameters``).
        x, y: arrays, dicts of arrays (multi-input/-output models), a pandas DataFrame / Series, an ``.npz``
            file or a folder of ``.npz`` shards (holding ``x`` and ``y``), or ``"azureml:NAME[:VERSION]"``.
        batch_size, epochs, validation_data, validation_split, shuffle, class_weight, sample_weight:
            as ``keras.Model.fit`` takes them. seed: for the weights' shuffling (optional).
        hyperparameters: a builder's values (and logged as the run's params).
        job: ``submit_training``'s options and any ``TrainingJob`` field: ``backend``, ``workspace_config``,
            ``ml_client``, ``compute``, ``model_name``, ``experiment`` (both default to the model's name),
            ``keras_backend``, ``wait`` (default True), ``dry_run``, ``show_output``, ...

    Returns:
        A ``TrainingResult`` with ``history`` and ``load_model()``; a ``JobRun`` with ``wait=False``; a
        ``SubmissionPlan`` with ``dry_run=True``.

    Raises:
        ValidationError: bad model or data (shape, dtype, labels vs loss, lengths, NaN, not compiled, can't
            travel), before anything starts.
        TrainingFailed: the run did not complete.

    Example:
        >>> fit("missing.keras", [[1.0]], [0])
        Traceback (most recent call last):
        ...
        kerasjob.errors.ValidationError: Invalid `model`: expected a compiled keras.Model, a path to an existing .keras file, or a builder fn(hyperparameters) -> compiled keras.Model. Received: model='missing.keras'
    """
    from .run import submit_training

    if model is None:
        raise ValidationError("model", "a compiled keras.Model, a path to a .keras file, or a builder", model)
    if "job" in job:
        raise ValidationError("job", "no TrainingJob (fit builds its own from the model and data)", job["job"])
    options = fit_hyperparameters(batch_size=batch_size, epochs=epochs, validation_split=validation_split,
                                  shuffle=shuffle, class_weight=class_weight, seed=seed)
    if hyperparameters is not None and not isinstance(hyperparameters, Mapping):
        raise ValidationError("hyperparameters", "a mapping of names to str, int, float or bool", hyperparameters)
    values = {**(hyperparameters or {}), **options}
    return submit_training(model=model, x=x, y=y, validation_data=validation_data, sample_weight=sample_weight,
                           hyperparameters=values, **job)
