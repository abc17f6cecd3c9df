"""End to end on real MNIST (../shared/data/mnist): the local backend, 2 epochs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the model_check helper

from kerasjob import download_model, submit_training

from model_check import check_model

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_two_epochs_on_real_mnist_reach_95_percent_and_the_model_scores_it(shared_mnist, tmp_path):
    result = submit_training(data=shared_mnist, hyperparameters={"epochs": 2}, show_output=False)
    assert result.metrics["Final test accuracy"] >= 0.95
    folder = download_model(result, tmp_path / "model")
    accuracy = check_model(folder / "model.keras", shared_mnist)["accuracy"]
    assert accuracy >= 0.95
    assert abs(accuracy - result.metrics["Final test accuracy"]) < 1e-3


def test_two_workers_on_real_mnist_register_one_model_that_reaches_95_percent(shared_mnist, tmp_path):
    from kerasjob import TensorflowDistribution

    result = submit_training(data=shared_mnist, hyperparameters={"epochs": 2},
                             distribution=TensorflowDistribution(worker_count=2), show_output=False)
    assert result.workers == 2
    folder = download_model(result, tmp_path / "model")
    assert check_model(folder / "model.keras", shared_mnist)["accuracy"] >= 0.95
