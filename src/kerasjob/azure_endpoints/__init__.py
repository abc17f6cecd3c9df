"""Moved to ``kerasjob.backends._azure.endpoints``.

This old name stays an alias for one release: the same module object, so ``monkeypatch.setattr`` on either
reaches the code. A folder rather than a file, so that git follows the old file to its new place.
"""

import sys

from ..backends._azure import endpoints as _moved

__all__ = list(_moved.__all__)

sys.modules[__name__] = _moved
