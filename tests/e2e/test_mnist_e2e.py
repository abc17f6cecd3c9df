"""End to end on real MNIST (../shared/data/mnist): the local backend, 2 epochs."""

from __future__ import annotations

import pytest

from kerasjob import download_model, submit_training

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_two_epochs_on_real_mnist_reach_95_percent_and_the_model_scores_it(shared_mnist, tmp_path):
    result = submit_training(data=shared_mnist, hyperparameters={"epochs": 2}, show_output=False)
    assert result.metrics["Final test accuracy"] >= 0.95
    folder = download_model(result, tmp_path / "model")

    import keras
    import numpy as np

    from kerasjob.training.mnist_data import load_mnist

    _, _, x_test, y_test = load_mnist(shared_mnist)
    model = keras.saving.load_model(folder / "model.keras")
    accuracy = float(np.mean(model.predict(x_test, verbose=0, batch_size=2000).argmax(axis=1) == y_test))
    assert accuracy >= 0.95
    assert abs(accuracy - result.metrics["Final test accuracy"]) < 1e-3
