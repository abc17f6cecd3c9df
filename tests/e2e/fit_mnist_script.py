"""Run as a script (its __main__ defines the custom layer): a conv net with a layer of the caller's own trains on
real MNIST through kerasjob.fit on the local backend; prints one JSON line of figures."""

from __future__ import annotations

import json
import sys
import time

import keras
import mlflow
import numpy as np

import kerasjob
from kerasjob.tracking import tracking_uri
from kerasjob.training.mnist_data import read_idx


class Rescale(keras.layers.Layer):
    """Pixels 0-255 -> 0-1: defined in __main__, so it travels pickled by value."""

    def call(self, inputs):  # type: ignore[no-untyped-def]
        return inputs / 255.0


def digits(folder: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(f"{folder}/{prefix}-images-idx3-ubyte.gz").reshape(-1, 28, 28, 1).astype("float32")
    return images, read_idx(f"{folder}/{prefix}-labels-idx1-ubyte.gz").astype("int64")


def main(folder: str) -> None:
    x_train, y_train = digits(folder, "train")
    x_test, y_test = digits(folder, "t10k")
    inputs = keras.Input((28, 28, 1), name="digits")
    hidden = keras.layers.Conv2D(16, 3, activation="relu")(Rescale()(inputs))
    hidden = keras.layers.Flatten()(keras.layers.MaxPooling2D()(hidden))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden), name="mnist-convnet")
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    result = kerasjob.fit(model, x_train, y_train, epochs=2, batch_size=128, validation_data=(x_test, y_test),
                          show_output=False)
    seconds = time.perf_counter() - started
    trained = result.load_model()
    loaded_accuracy = float((trained.predict(x_test, verbose=0).argmax(axis=1) == y_test).mean())
    mlflow.set_tracking_uri(tracking_uri())  # kerasjob's local MLflow store ($KERASJOB_HOME/mlflow.db)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{result.model_name}/{result.model_version}")
    served = np.asarray(pyfunc.predict(x_test[:1000]))
    print(json.dumps({"val_accuracy": result.history["val_accuracy"][-1], "metric": result.metrics["val_accuracy"],
                      "load_model_accuracy": loaded_accuracy, "pyfunc_shape": list(served.shape),
                      "pyfunc_accuracy": float((served.argmax(axis=1) == y_test[:1000]).mean()),
                      "model": f"{result.model_name}:{result.model_version}", "champion": result.champion,
                      "history": result.history, "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main(sys.argv[1])
