"""Live progress in a notebook (issue 22 item 29): ``submit_training`` and ``tune_training`` show one display,
updated in place (IPython's display handles), instead of hundreds of printed lines: the epoch, the metrics so
far, the time left, a sweep's trials, and the log folded in a ``<details>``. Outside a notebook nothing changes.

A fake ``IPython.display.display`` stands in for the notebook's front end: it records every state shown."""

from __future__ import annotations

import sys

import pytest

from kerasjob.progress import LiveProgress, in_notebook, live_progress


class FakeFrontEnd:
    """IPython's ``display(obj, display_id=True)`` and the handle's ``update(obj)``, recording each state."""

    def __init__(self) -> None:
        self.shown: list[object] = []
        self.displays = 0

    def __call__(self, view: object, display_id: bool = False) -> "FakeFrontEnd":
        assert display_id is True  # one display, updated in place
        self.displays += 1
        self.shown.append(view)
        return self

    def update(self, view: object) -> None:
        self.shown.append(view)

    @property
    def html(self) -> str:
        return self.shown[-1]._repr_html_()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_epoch_lines_become_a_progress_bar_a_metrics_table_and_the_time_left():
    front, clock = FakeFrontEnd(), Clock()
    progress = LiveProgress("Run abc", front, clock=clock)
    progress.line("MNIST: 60000 training and 10000 test images from mnist")
    progress.line("Epoch 1/4 - 4.0s - train loss 0.5000 - train accuracy 0.8500 - Loss 0.3000 - Accuracy 0.9100")
    clock.now += 6
    progress.line("Epoch 2/4 - 2.0s - train loss 0.2500 - train accuracy 0.9300 - Loss 0.2000 - Accuracy 0.9400")
    assert (progress.epoch, progress.epochs, progress.time_left()) == (2, 4, pytest.approx(6.0))
    assert progress.rows[1] == {"train loss": 0.25, "train accuracy": 0.93, "Loss": 0.2, "Accuracy": 0.94}
    page = front.html
    assert '<progress value="2" max="4"' in page and "epoch 2/4" in page and "about 6 s left" in page
    assert "<th" in page and "Accuracy" in page and "0.9400" in page
    assert "<details><summary>Log (3 lines)</summary>" in page and "MNIST: 60000" in page
    progress.close("done")
    assert "done, 6 s" in front.html and "left" not in front.html
    assert repr(front.shown[-1]).startswith("Run abc · done, 6 s · epoch 2/4 · ")
    assert front.displays == 1  # updated in place, never a second output


def test_a_sweeps_trial_lines_become_one_row_per_trial():
    front = FakeFrontEnd()
    progress = LiveProgress("Sweep of 2 trials", front)
    for line in ["trial 0 started: run r0 {'batch_size': 25}", "trial 1 started: run r1 {'batch_size': 50}",
                 "trial 0 epoch 1: Accuracy=0.9012", "trial 0 completed Accuracy=0.9012",
                 "trial 1 epoch 1: Accuracy=0.8500", "trial 1 early-terminated by Bandit(...) at Accuracy=0.8500"]:
        progress.line(line)
    assert progress.trials == {0: {"state": "completed", "epochs": 1, "metric": "Accuracy", "value": "0.9012"},
                               1: {"state": "early-terminated", "epochs": 1, "metric": "Accuracy", "value": "0.8500"}}
    assert "2 trials, 2 ended" in front.html and "early-terminated" in front.html


def test_a_long_log_keeps_its_last_lines_and_says_how_many_there_were():
    front = FakeFrontEnd()
    progress = LiveProgress("Run x", front, log_lines=3, interval=3600)
    for number in range(10):
        progress.line(f"<line {number}>")
    progress.close("failed")
    assert progress.log == ["<line 7>", "<line 8>", "<line 9>"]
    assert "Log (10 lines, the last 3 here)" in front.html and "&lt;line 9&gt;" in front.html  # escaped
    assert len(front.shown) == 3  # the first state, the first line (no update before interval), close


def test_outside_a_notebook_nothing_changes(capsys):
    assert not in_notebook()
    with live_progress("Run x") as progress:
        print("Epoch 1/1 - 1.0s - Loss 0.1000")
    assert progress is None and capsys.readouterr().out == "Epoch 1/1 - 1.0s - Loss 0.1000\n"


def test_what_is_printed_inside_feeds_the_display_and_the_outcome_is_shown(capsys):
    front = FakeFrontEnd()
    with pytest.raises(KeyboardInterrupt), live_progress("Run x", display=front) as progress:
        sys.stdout.write("Epoch 1/3 - 1.5s - Loss 0.")
        sys.stdout.write("5000\npartial")
        raise KeyboardInterrupt
    assert capsys.readouterr().out == ""
    assert progress.rows == [{"Loss": 0.5}] and progress.log[-1] == "partial"
    assert "interrupted" in front.html


@pytest.fixture
def notebook(monkeypatch) -> FakeFrontEnd:
    """A Jupyter kernel as kerasjob sees one: in_notebook() is true and IPython's display is the fake's."""
    import IPython.display

    import kerasjob.progress

    front = FakeFrontEnd()
    monkeypatch.setattr(kerasjob.progress, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", front)
    return front


@pytest.mark.slow
def test_submit_training_in_a_notebook_shows_one_live_display_and_prints_nothing(notebook, tiny_mnist, capsys):
    from kerasjob import submit_training

    result = submit_training(data=tiny_mnist, hyperparameters={"epochs": 2, "first_layer_neurons": 16,
                                                                "second_layer_neurons": 8})
    assert result.status == "completed"
    assert capsys.readouterr().out == ""  # not a line in the cell's output
    assert notebook.displays == 1 and len(notebook.shown) >= 3
    page = notebook.html
    assert f"Run {result.run_id}" in page and "done" in page and '<progress value="2" max="2"' in page
    assert "Accuracy" in page and "<details><summary>Log (" in page and "Final test accuracy" in page


@pytest.mark.slow
def test_tune_training_in_a_notebook_shows_its_trials_in_one_live_display(notebook, tiny_mnist, capsys):
    from kerasjob import Sweep, tune_training

    result = tune_training(sweep=Sweep(max_total_runs=2, max_concurrent_runs=1), data=tiny_mnist,
                           hyperparameters={"epochs": 1, "first_layer_neurons": 16, "second_layer_neurons": 8})
    assert len(result.trials) == 2 and capsys.readouterr().out == ""
    page = notebook.html
    assert "Sweep of 2 trials" in page and "2 trials, 2 ended" in page and "Accuracy=" in page
    assert notebook.displays == 1
