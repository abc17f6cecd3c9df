"""What ``keras_mnist.py`` accepts and what it logs: one declaration, read by
the script's argument parser and by kerasjob's preflight (standard library only).

Example:
    >>> HYPERPARAMETERS["batch_size"].default
    50
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATA_FOLDER_FLAG", "EPOCH_METRICS", "FINAL_METRICS", "HYPERPARAMETERS", "METRICS", "Hyperparameter",
           "flag_for"]


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

#: Metrics logged once per epoch, on the test set (HyperDrive's primary metric is ``Accuracy``).
EPOCH_METRICS = ("Loss", "Accuracy")
#: Metrics logged once, after training.
FINAL_METRICS = ("Final test loss", "Final test accuracy")
METRICS = EPOCH_METRICS + FINAL_METRICS

#: The ``--flag`` through which the data folder reaches the script.
DATA_FOLDER_FLAG = "--data-folder"
