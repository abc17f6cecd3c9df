"""What ``keras_mnist.py`` accepts and what it logs: one declaration, read by
the script's argument parser and by kerasjob's preflight (standard library only).

Example:
    >>> HYPERPARAMETERS["batch_size"].default
    50
    >>> OPTIONS["mixed_precision"].parse("false")
    False
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATA_FOLDER_FLAG", "DEFAULT_KERAS_BACKEND", "EPOCH_METRICS", "FINAL_METRICS", "HYPERPARAMETERS",
           "KERAS_BACKENDS", "KERAS_BACKEND_FLAG", "METRICS", "OPTIONS", "TEST_METRICS", "TRAIN_METRICS",
           "Hyperparameter", "Option", "flag_for"]


@dataclass(frozen=True)
class Hyperparameter:
    """One ``--flag`` of the training script: its type, default and lower bound."""

    type: type
    default: int | float
    minimum: float
    help: str
    exclusive_minimum: bool = False


def flag_for(name: str) -> str:
    """``batch_size`` -> ``--batch-size``: the script's spelling of a hyperparameter."""
    return "--" + name.replace("_", "-")


#: The seed walkthrough's hyperparameters, plus ``epochs`` (its sample hard-codes 20).
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "batch_size": Hyperparameter(int, 50, 1, "mini-batch size"),
    "first_layer_neurons": Hyperparameter(int, 300, 1, "units in the first hidden layer"),
    "second_layer_neurons": Hyperparameter(int, 100, 1, "units in the second hidden layer"),
    "learning_rate": Hyperparameter(float, 0.001, 0.0, "RMSprop learning rate", exclusive_minimum=True),
    "epochs": Hyperparameter(int, 20, 1, "passes over the training set"),
}


@dataclass(frozen=True)
class Option:
    """A ``--flag`` of the training script that is set, not tuned: passed only when given.

    Its value always follows the flag (``--mixed-precision true``), as every
    backend passes ``--name value``; ``parse`` reads that text back.
    """

    type: type
    help: str
    minimum: int | None = None

    def parse(self, text: str) -> int | bool:
        """The flag's text as a value: ``"3"`` -> 3; ``"true"``/``"false"`` (any case, or 1/0) for a bool."""
        if self.type is not bool:
            return int(text)
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if text.lower() not in words:
            raise ValueError(f"expected true or false, got {text!r}")
        return words[text.lower()]


#: The packaged script's other flags: given through ``hyperparameters`` like the others (``tune``'s fixed
#: values too), but sent only when set, since their defaults are the script's own (no seed, float32).
OPTIONS: dict[str, Option] = {
    "seed": Option(int, "seed for the weights and the shuffling (default: a fresh random start)", minimum=0),
    "mixed_precision": Option(bool, "compute in float16 on a GPU (default false; no gain on a CPU)"),
}

#: The Keras backends the packaged script trains on; the flag sets ``KERAS_BACKEND`` before Keras loads.
KERAS_BACKENDS = ("tensorflow", "jax")
DEFAULT_KERAS_BACKEND = "tensorflow"
KERAS_BACKEND_FLAG = "--keras-backend"

#: Metrics logged once per epoch on the test set (HyperDrive's primary metric is ``Accuracy``) ...
TEST_METRICS = ("Loss", "Accuracy")
#: ... and on the training set, averaged over the epoch's batches as Keras's ``fit`` reports them.
TRAIN_METRICS = ("Train loss", "Train accuracy")
EPOCH_METRICS = TEST_METRICS + TRAIN_METRICS
#: Metrics logged once, after training.
FINAL_METRICS = ("Final test loss", "Final test accuracy")
METRICS = EPOCH_METRICS + FINAL_METRICS

#: The ``--flag`` through which the data folder reaches the script.
DATA_FOLDER_FLAG = "--data-folder"
