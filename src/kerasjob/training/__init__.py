"""The training job's own folder: ``keras_mnist.py`` and its sibling helpers (each also runs without kerasjob)."""

__all__: list[str] = []
