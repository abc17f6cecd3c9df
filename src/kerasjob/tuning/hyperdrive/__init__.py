"""Moved to ``kerasjob.backends.azureml.sweep``.

This old name stays an alias for one release: the same module object, so ``monkeypatch.setattr`` on either
reaches the code. A folder rather than a file, so that git follows the old file to its new place.
"""

import sys

from ...backends.azureml import sweep as _moved

__all__ = list(_moved.__all__)

sys.modules[__name__] = _moved
