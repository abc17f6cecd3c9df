"""What both packaged trainers report, and how: metrics to kerasjob's supervisor or MLflow, the plot, JSON files.

Standard library at import time (matplotlib is imported by ``save_history_plot``).

Example:
    >>> tracker = Tracker(chief=True)                 # doctest: +SKIP
    >>> tracker.metrics({"loss": 0.25}, step=0)       # doctest: +SKIP
    >>> save_history_plot({"loss": [0.3, 0.2], "val_loss": [0.35, 0.3]}, Path("outputs/training.png"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["Tracker", "save_history_plot", "tracking_configured", "write_json"]


def tracking_configured() -> bool:
    """Whether MLflow tracking is set up for this process (Azure ML and kerasjob set one)."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_RUN_ID"))


class Tracker:
    """Reports metrics: to kerasjob's local supervisor, else to MLflow when tracking is set up; always to stdout.

    Under kerasjob's local backend ``KERASJOB_METRICS_FILE`` names a file that
    the supervisor forwards to the MLflow run, so this process need not import
    MLflow (two seconds saved on every run); it also uploads ``outputs/``.
    """

    def __init__(self, chief: bool):
        self.mlflow: Any = None
        self.metrics_file = os.environ.get("KERASJOB_METRICS_FILE") if chief else None
        if chief and not self.metrics_file and tracking_configured():
            import mlflow

            self.mlflow = mlflow
            mlflow.start_run()  # resumes MLFLOW_RUN_ID when the launcher created the run

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        if self.metrics_file:
            record = {"metrics": values, "step": step, "timestamp": int(time.time() * 1000)}
            with open(self.metrics_file, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(record) + "\n")
        elif self.mlflow is not None:
            self.mlflow.log_metrics(values, step=step)

    def params(self, values: dict[str, object]) -> None:
        """The hyperparameters, as MLflow params: how a sweep reads back what each trial received
        (Azure ML's run-history records don't carry a job's inputs). The local supervisor logs them itself."""
        if self.mlflow is not None:
            self.mlflow.log_params(values)

    def artifact(self, path: Path) -> None:
        if self.mlflow is not None:
            self.mlflow.log_artifact(str(path))

    def close(self, *artifacts: Path) -> None:
        """Upload ``artifacts`` (when MLflow is the channel), then end the run."""
        for path in artifacts:
            self.artifact(path)
        if self.mlflow is not None:
            self.mlflow.end_run()


def write_json(value: Any, path: Path) -> None:
    """Write ``value`` as JSON under a temporary name, then rename it into place (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(partial, path)


#: Up to this many epochs, each has its tick; beyond, matplotlib picks whole numbers.
_EACH_EPOCH_TICKED = 12


def save_history_plot(history: dict[str, list[Any]], path: Path, title: str = "Training",
                      labels: tuple[str, str] = ("train", "validation"),
                      names: tuple[str, ...] | None = None) -> None:
    """One panel per metric, train (dashed) and ``val_`` (solid), with markers and integer epoch ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    shown = [name for name in (names or tuple(history)) if not name.startswith("val_")
             and history.get(name) and all(isinstance(v, (int, float)) for v in history[name])]
    shown = shown or [name[4:] for name in history if name.startswith("val_")]
    figure, axes = plt.subplots(1, max(len(shown), 1), figsize=(4.5 * max(len(shown), 1), 3.6), squeeze=False)
    epochs = max((len(values) for values in history.values() if isinstance(values, list)), default=0)
    for axis, name in zip(axes[0], shown):
        if f"val_{name}" in history:
            values = history[f"val_{name}"]
            axis.plot(range(1, len(values) + 1), values, "o-", label=labels[1])
        if history.get(name):
            axis.plot(range(1, len(history[name]) + 1), history[name], "s--", label=labels[0])
        axis.set_xlabel("epoch")
        if epochs <= _EACH_EPOCH_TICKED:  # MaxNLocator(integer=True) gives 0.945 ... 1.065 for one epoch
            axis.set_xticks(range(1, epochs + 1))
        else:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlim(0.5, max(epochs, 1) + 0.5)  # epochs count from 1: no tick at 0
        axis.set_title(name)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
