"""``training.png`` (issue 22 item 27): whole-number epoch ticks, also for a run of one or two epochs, where
matplotlib's ``MaxNLocator(integer=True)`` fell back to 0.945, 0.96, ... 1.065. Real matplotlib, real PNG files."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasjob.training.tracking import save_history_plot


def _ticks_as_drawn(monkeypatch, history: dict, path: Path) -> list[list[float]]:
    """The x ticks of every panel within its limits, read from the figure as it is saved."""
    from matplotlib.figure import Figure

    drawn: list[list[float]] = []
    real_savefig = Figure.savefig

    def savefig(figure, *args, **kwargs):
        for axis in figure.axes:
            low, high = axis.get_xlim()
            drawn.append([tick for tick in axis.get_xticks() if low <= tick <= high])
        return real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    save_history_plot(history, path)
    return drawn


@pytest.mark.parametrize("epochs", [1, 2, 5, 40])
def test_every_epoch_tick_is_a_whole_epoch_of_the_run(monkeypatch, tmp_path, epochs):
    history = {"loss": [1.0 / (epoch + 1) for epoch in range(epochs)],
               "val_loss": [1.1 / (epoch + 1) for epoch in range(epochs)],
               "accuracy": [0.5] * epochs}
    path = tmp_path / "training.png"
    panels = _ticks_as_drawn(monkeypatch, history, path)
    assert path.stat().st_size > 0 and len(panels) == 2  # loss and accuracy
    for ticks in panels:
        assert ticks and all(float(tick).is_integer() and 1 <= tick <= epochs for tick in ticks), ticks
        if epochs <= 5:
            assert ticks == list(range(1, epochs + 1))  # each epoch of a short run has its tick
