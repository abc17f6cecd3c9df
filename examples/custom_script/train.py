"""A training script of your own, run by kerasjob: a small Keras regression on a CSV file.

Nothing here is MNIST: kerasjob passes ``--data-folder`` (any folder) and, unchanged, whatever follows
``--`` on its command line. It logs to the MLflow run kerasjob opened for it (``MLFLOW_RUN_ID``), names the
metric ``kerasjob runs list`` shows (the tag ``kerasjob.primary_metric``), and writes the trained model, with
its signature and an input example, to ``outputs/model``, which kerasjob registers.

    kerasjob submit --source-dir examples/custom_script --entry-script train.py \\
        --data-folder examples/custom_data --experiment regression --model-name regression \\
        -- --units 16 --epochs 20
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", required=True, help="a folder holding data.csv (columns x1, x2, y)")
    parser.add_argument("--units", type=int, default=16, help="units of the hidden layer")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    print(f"Arguments: {vars(args)}", flush=True)
    import numpy as np

    table = np.loadtxt(Path(args.data_folder) / "data.csv", delimiter=",", skiprows=1, dtype="float32")
    features, target = table[:, :2], table[:, 2]

    import keras
    import mlflow

    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(args.units, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="mse")
    with mlflow.start_run():  # resumes the run kerasjob created (MLFLOW_RUN_ID)
        mlflow.log_params(vars(args))
        mlflow.set_tag("kerasjob.primary_metric", "final_val_mse")  # the METRIC column of kerasjob runs list
        history = model.fit(features, target, epochs=args.epochs, batch_size=32, validation_split=0.2, verbose=0)
        for epoch, (loss, val_loss) in enumerate(zip(history.history["loss"], history.history["val_loss"])):
            mlflow.log_metrics({"loss": loss, "val_loss": val_loss}, step=epoch)
        mlflow.log_metric("final_val_mse", history.history["val_loss"][-1])
        print(f"Final validation MSE: {history.history['val_loss'][-1]:.4f}", flush=True)
        os.makedirs("outputs/model", exist_ok=True)  # MLflow's Keras 3 flavour writes the example before the folder
        example = features[:5]
        signature = mlflow.models.infer_signature(example, model.predict(example, verbose=0))
        mlflow.keras.save_model(model, "outputs/model", signature=signature, input_example=example)


if __name__ == "__main__":
    main()
