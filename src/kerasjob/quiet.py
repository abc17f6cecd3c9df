"""TensorFlow's, CUDA's and gRPC's start-up chatter kept out of what kerasjob shows.

TensorFlow writes some lines from C++ before its logging is set up ("All log messages before
absl::InitializeLog() is called are written to STDERR", oneDNN, "Could not find cuda drivers", "failed call to
cuInit"), which no environment variable silences. So kerasjob does both: the child processes it starts get the
variables that silence what can be silenced (``quiet_environment``), and the log lines it shows pass through
``is_framework_noise`` (the run's log file keeps every line).

Example:
    >>> is_framework_noise("I0000 00:00:1796396997.63 4894 cudart_stub.cc:31] Could not find cuda drivers")
    True
    >>> is_framework_noise("Epoch 1/2 - 4.6s - Loss 1.9573 - Accuracy 0.2600")
    False
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Callable, Iterator, Mapping

__all__ = ["QUIET_ENVIRONMENT", "is_framework_noise", "quiet_environment", "quiet_native_stderr", "without_noise"]

#: What silences TensorFlow's C++ logging after start-up (3: errors too) and gRPC's (multi-worker runs).
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "2"}

#: An absl/glog C++ log line: ``I0000 00:00:1796396997.633759    4894 port.cc:153] ...``. Informational and
#: warning lines are noise; error lines only from the sources known to say nothing wrong on a CPU machine.
_CPP_LINE = re.compile(r"^(?P<level>[IWEF])\d{4} [\d:.]+\s+\d+ (?P<source>[\w.]+):\d+\]")
_HARMLESS_ERRORS = ("cuda_platform.cc", "cuda_executor.cc", "cuda_dnn.cc", "cuda_fft.cc", "cuda_blas.cc",
                    "cuda_diagnostics.cc", "gpu_device.cc")
_NOISE_TEXT = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
               "To enable the following instructions:", "This TensorFlow binary is optimized to use available CPU",
               "oneDNN custom operations are on", "Unable to register cuDNN factory",
               "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
               "computation placer already registered")


#: The prefix a multi-worker local run puts before each worker's lines (``backends.local.supervisor``).
_WORKER_PREFIX = re.compile(r"^\[worker \d+\] ")


def is_framework_noise(line: str) -> bool:
    """True for a line of TensorFlow's, XLA's, CUDA's or gRPC's start-up chatter, not the job's own output
    (also behind a multi-worker run's ``[worker N]`` prefix).

    Example:
        >>> is_framework_noise("[worker 1] I0000 00:00:1796402823.10 14685 cudart_stub.cc:31] Could not find cuda")
        True
    """
    text = _WORKER_PREFIX.sub("", line.strip())
    match = _CPP_LINE.match(text)
    if match is not None:
        return match["level"] in "IW" or match["source"] in _HARMLESS_ERRORS
    return any(text.startswith(noise) or noise in text[:160] for noise in _NOISE_TEXT)


def without_noise(sink: Callable[[str], object]) -> Callable[[str], None]:
    """``sink``, passed only the lines that are not framework noise."""

    def filtered(line: str) -> None:
        if not is_framework_noise(line):
            sink(line)

    return filtered


def quiet_environment(environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """``QUIET_ENVIRONMENT`` under ``environment`` (default ``os.environ``): a value the user set wins."""
    given = os.environ if environment is None else environment
    return {name: given.get(name, value) for name, value in QUIET_ENVIRONMENT.items()}


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Inside: what anything (C++ included) writes to file descriptor 2 is held back; on leaving, the lines that
    are not framework noise are written to stderr. Also sets ``QUIET_ENVIRONMENT`` (a value the user set wins)
    for a TensorFlow loaded inside.

    Example:
        >>> with quiet_native_stderr():
        ...     import math  # import tensorflow here: its start-up lines never reach the terminal
    """
    added = {name: value for name, value in QUIET_ENVIRONMENT.items() if name not in os.environ}
    os.environ.update(added)  # read by TensorFlow as it loads; taken back after, as found
    try:
        with _held_stderr():
            yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _held_stderr() -> Iterator[None]:
    """File descriptor 2 (where C++ writes, whatever ``sys.stderr`` is) into a temporary file; on leaving, its
    lines that are not noise go back to it."""
    try:
        os.fstat(2)
    except OSError:  # no descriptor 2 at all
        yield
        return
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode("utf-8", "replace").splitlines()
                    if not is_framework_noise(line)]
            if kept:
                os.write(2, ("\n".join(kept) + "\n").encode())
