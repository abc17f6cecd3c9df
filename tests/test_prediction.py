"""``kerasjob.predict`` and ``kerasjob predict``: every accepted image form, bad input refused before the model
loads, and the predictions of a real trained model (in a child process: no TensorFlow in the test process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasjob import ValidationError, predict, submit_training
from kerasjob.prediction import load_images

from mnist_files import write_idx


def _png(path: Path, size: tuple[int, int] = (28, 28), value: int = 255) -> Path:
    from PIL import Image

    Image.new("L", size, color=value).save(path)
    return path


def test_every_image_form_becomes_float32_rows_of_784_in_0_1(tmp_path):
    digits = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    expected = digits.reshape(2, 784) / 255
    for form in (digits, digits.reshape(2, 784), (digits / 255).astype("float32")):
        pixels = load_images(form)
        assert pixels.dtype == np.float32 and pixels.shape == (2, 784)
        assert np.allclose(pixels, expected, atol=1e-6)
    idx = write_idx(tmp_path / "images-idx3-ubyte", digits)
    assert np.allclose(load_images(idx), expected, atol=1e-6)
    pngs = [_png(tmp_path / "a.png", value=0), _png(tmp_path / "b.png", value=255)]
    assert load_images(pngs).tolist() == [[0.0] * 784, [1.0] * 784]


@pytest.mark.parametrize("images, words", [
    (lambda t: np.zeros((2, 27, 27), dtype=np.uint8), "N x 784 or N x 28 x 28"),
    (lambda t: np.zeros((0, 784), dtype=np.uint8), "at least one image"),
    (lambda t: np.full((1, 784), 3.0, dtype=np.float32), "values run from 3 to 3"),
    (lambda t: np.full((1, 784), 300, dtype=np.int32), "uint8 pixels 0-255"),
    (lambda t: [_png(t / "big.png", size=(32, 32))], "It is 32 x 32"),
    (lambda t: [t / "missing.png"], "existing PNG or IDX files"),
    (lambda t: (t / "not-idx.bin").write_bytes(b"\x00\x00") and t / "not-idx.bin", "IDX images file"),
], ids=["shape", "empty", "float-range", "int-range", "png-size", "missing", "not-idx"])
def test_bad_images_are_refused_before_any_model_loads(images, words, tmp_path):
    with pytest.raises(ValidationError) as caught:
        predict("no-such-model:1", images(tmp_path))  # the model is never looked up: the images fail first
    assert caught.value.argument == "images" and words in str(caught.value)


@pytest.mark.parametrize("model, words", [
    ("keras mnist:1", "'NAME@ALIAS'"), ("models:/keras-mnist/one", "'models:/NAME/VERSION'"),
    (42, "a model folder"), ("models:/keras-mnist", "registered: none"), ("keras-mnist@champion", "registered: none"),
    (Path("no-such-folder"), "an existing model folder"),
])
def test_a_model_that_is_no_registry_reference_or_folder_is_refused(model, words):
    with pytest.raises(ValidationError) as caught:
        predict(model, np.zeros((1, 784), dtype=np.uint8))
    assert caught.value.argument == "model" and words in str(caught.value)


@pytest.mark.slow
def test_the_cli_predicts_with_a_registered_model_as_the_run_scored_it(tiny_mnist, tmp_path):
    result = submit_training(data=tiny_mnist, hyperparameters={"epochs": 2, "batch_size": 32}, show_output=False)
    command = [sys.executable, "-m", "kerasjob.cli", "predict", f"models:/keras-mnist/{result.model_version}",
               str(tiny_mnist / "t10k-images-idx3-ubyte.gz"), "--labels", str(tiny_mnist / "t10k-labels-idx1-ubyte.gz"),
               "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(answer["digits"]) == 100 and len(answer["probabilities"][0]) == 10
    assert abs(answer["accuracy"] - result.metrics["Final test accuracy"]) <= 0.001
    bad = subprocess.run([sys.executable, "-m", "kerasjob.cli", "predict", "keras-mnist:1", str(tmp_path / "x.png")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "existing PNG or IDX files" in bad.stderr


def test_an_image_model_takes_float_arrays_in_its_own_shape_as_they_are():
    """A conv net trained on 0-255 floats, N x 28 x 28 x 1, gets exactly what it was trained on; the MNIST forms
    (uint8 digits, flat 784 rows) are still read as 0-1 images."""
    import numpy as np

    from kerasjob.prediction import ModelSchema, load_inputs

    schema = ModelSchema(kind="tensor", tensors={"": ((-1, 28, 28, 1), "float32")})
    pixels = np.full((2, 28, 28, 1), 200.0, dtype=np.float32)
    assert np.array_equal(load_inputs(pixels, schema), pixels)
    digits = np.full((2, 28, 28), 255, dtype=np.uint8)
    read = load_inputs(digits, schema)
    assert read.shape == (2, 28, 28, 1) and float(read.max()) == 1.0
