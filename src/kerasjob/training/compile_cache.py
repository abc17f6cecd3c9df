"""Compile once per shape: the persistent compilation caches of JAX and of TensorFlow's XLA, for both trainers.

On a GPU most of a small job is compilation (issue 23: on an H200, 7 s of the
seed job's 13.5 s were its first epoch). Both trainers call ``enable_compile_cache`` before
Keras loads, so each compiled program is written to a folder once and read
back by every later process that runs the same program: the next run, every
trial of a sweep after the first, a restarted run, a later Azure ML job.

Where the folder is (``cache_root``):

- ``--compile-cache DIR`` (the trainers' flag), else ``KERASJOB_COMPILE_CACHE``
  when set: kerasjob's local backend passes
  ``$KERASJOB_CACHE_DIR/compile`` (``~/.cache/kerasjob/compile`` on Linux);
  on Azure ML it is a read-write mount of ``kerasjob/compile-cache/`` on the
  workspace's default datastore, which outlives the job; ``none`` turns it off;
- else, for a script run by hand, ``$KERASJOB_CACHE_DIR/compile`` or
  ``$XDG_CACHE_HOME/kerasjob/compile`` (``~/.cache/kerasjob/compile``).

Inside it, one sub-folder per Keras version, backend and version, and machine
(``keras-3.15.1/jax-0.10.2/3f2a9c81d0e4/``). A stale entry is never used: JAX's
own key (``jax/_src/cache_key.py``, ``get``) hashes the program itself (every
shape and dtype is in it), the jaxlib version, the platform and its version
(CUDA), the XLA flags, the compile options and the device kind; the Keras
version is a sub-folder. TensorFlow's equivalent exists (``TF_XLA_FLAGS=
--tf_xla_persistent_cache_directory=DIR``, a flag of
``tensorflow/compiler/jit/flags.cc``): it keeps the executables of
``jit_compile`` functions keyed by the compilation signature (the function's
graph, its argument shapes and dtypes) and the device type (``XLA_GPU_JIT``),
but not the TensorFlow version, the GPU model or the CPU's instruction set;
so the last folder is the machine: a digest of the CPU model and flags and of
the NVIDIA GPUs' models (``/proc/driver/nvidia/gpus``), for both backends (an
XLA:CPU executable built for another CPU could stop on an illegal instruction).

Clearing it: ``rm -rf ~/.cache/kerasjob/compile`` (or the folder the plan
names); turning it off: ``TrainingJob(compile_cache=False)``, or
``KERASJOB_COMPILE_CACHE=none`` for a script. Standard library only: the job's
folder runs without kerasjob.

Example:
    >>> enable_compile_cache("jax", {"KERASJOB_COMPILE_CACHE": "none"}) is None
    True
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "COMPILE_CACHE_FLAG", "OFF", "CompileCounter", "cache_root", "enable_compile_cache", "folder_for",
           "keras_backend_in_use", "machine_digest", "shown_path"]

logger = logging.getLogger(__name__)

#: The environment variable that names the cache folder (or ``none``) for a training process.
CACHE_ENV = "KERASJOB_COMPILE_CACHE"
#: The trainers' flag that sets it (Azure ML passes its mount of the datastore folder this way).
COMPILE_CACHE_FLAG = "--compile-cache"
#: Its value when the cache is off.
OFF = "none"
#: JAX's events, through ``jax.monitoring`` (``jax/_src/compiler.py``, ``compile_or_get_cached``): a program read
#: from the cache, and one compiled and written to it.
HIT_EVENT = "/jax/compilation_cache/cache_hits"
MISS_EVENT = "/jax/compilation_cache/cache_misses"


def shown_path(path: Path | str, environ: Mapping[str, str] | None = None) -> str:
    """``path`` as the log and the plan show it, without the machine's own folders (a notebook's outputs are
    read elsewhere): under ``$KERASJOB_CACHE_DIR``, ``$KERASJOB_COMPILE_CACHE`` or the home folder it says so,
    and ``os.path.expanduser(os.path.expandvars(shown))`` gives the path back; elsewhere (an Azure ML mount) it
    is the path itself.

        >>> shown_path("/tmp/kc/compile/keras-3.15.1", {"KERASJOB_CACHE_DIR": "/tmp/kc"})
        '$KERASJOB_CACHE_DIR/compile/keras-3.15.1'
        >>> shown_path(Path.home() / ".cache" / "kerasjob" / "compile", {})
        '~/.cache/kerasjob/compile'
    """
    given = os.environ if environ is None else environ
    target = Path(path)
    prefixes = [(f"${name}", given.get(name, "")) for name in ("KERASJOB_CACHE_DIR", CACHE_ENV)]
    for shown, folder in [*prefixes, ("~", str(Path.home()))]:
        if folder and folder != OFF and target.is_relative_to(Path(folder).expanduser()):
            inside = target.relative_to(Path(folder).expanduser())
            return shown if inside == Path(".") else f"{shown}/{inside.as_posix()}"
    return str(path)


def cache_root(environ: dict[str, str] | None = None) -> Path | None:
    """The cache folder for this process, or None when it is off (``KERASJOB_COMPILE_CACHE=none``).

        >>> str(cache_root({"KERASJOB_COMPILE_CACHE": "/tmp/cc"}))
        '/tmp/cc'
        >>> str(cache_root({"KERASJOB_CACHE_DIR": "/tmp/kc"}))
        '/tmp/kc/compile'
    """
    environ = dict(os.environ) if environ is None else environ
    configured = environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured.strip().lower() in (OFF, "", "off", "false", "0") else Path(configured).expanduser()
    base = environ.get("KERASJOB_CACHE_DIR") or os.path.join(
        environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "kerasjob")
    return Path(base).expanduser() / "compile"


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return "unknown"


def machine_digest() -> str:
    """What makes a compiled program fit this machine, beyond what the caches' own keys hold: the CPU's model and
    flags, and each NVIDIA GPU's model, as a short digest (read from ``/proc``; the architecture elsewhere)."""
    parts = [platform.machine()]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags", "Features")):
                parts.append(line)
                if line.startswith(("flags", "Features")):
                    break  # the first processor's; they are alike
    except OSError:
        parts.append(platform.processor())
    for information in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            parts += [line for line in information.read_text().splitlines() if line.startswith("Model")]
        except OSError:
            pass
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def folder_for(root: Path, backend: str) -> Path:
    """The sub-folder of ``root`` for this Keras version, ``backend`` and its version, and this machine:
    ``keras-3.15.1/jax-0.10.2/3f2a9c81d0e4``."""
    version = _version("jaxlib") if backend == "jax" else _version("tensorflow", "tensorflow-cpu", "tf-nightly")
    return root / f"keras-{_version('keras')}" / f"{backend}-{version}" / machine_digest()


def keras_backend_in_use(environ: dict[str, str] | None = None) -> str:
    """The backend Keras will load, read without loading it: ``KERAS_BACKEND``, else ``keras.json``'s, else
    TensorFlow (Keras's default)."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("KERAS_BACKEND"):
        return environ["KERAS_BACKEND"]
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as stream:
            return str(json.load(stream).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def enable_compile_cache(backend: str, environ: dict[str, str] | None = None) -> Path | None:
    """Turn on ``backend``'s persistent compilation cache; return its folder, or None when off or unwritable.

    Call it before Keras (and the backend) loads: TensorFlow reads ``TF_XLA_FLAGS`` once. On JAX it sets
    ``JAX_COMPILATION_CACHE_DIR``, a minimum compile time of 0 (every program is kept: the small ones add up) and
    no minimum entry size; when JAX is already imported it updates ``jax.config`` too. A cache that cannot be
    written is logged and skipped: training never fails for it.
    """
    root = cache_root(environ)
    if root is None:
        return None
    folder = folder_for(root, backend)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.warning("The compilation cache %s cannot be written (%s): compiling without it.", folder, exc)
        return None
    if backend == "jax":
        settings = {"JAX_COMPILATION_CACHE_DIR": str(folder), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
        os.environ.update(settings)
        if "jax" in sys.modules:
            import jax

            jax.config.update("jax_compilation_cache_dir", str(folder))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    elif backend == "tensorflow":
        flags = [flag for flag in os.environ.get("TF_XLA_FLAGS", "").split()
                 if not flag.startswith("--tf_xla_persistent_cache_directory=")]
        os.environ["TF_XLA_FLAGS"] = " ".join([*flags, f"--tf_xla_persistent_cache_directory={folder}"])
    return folder


def _entries(folder: Path | None) -> int:
    if folder is None:
        return 0
    try:
        return sum(1 for path in folder.rglob("*") if path.is_file())
    except OSError:
        return 0


class CompileCounter:
    """Counts what the cache gave this process: JAX's hit and miss events, and the folder's new files.

    Start it after Keras loads; ``summary()`` is the line the trainers print at the end
    (``Compile cache: DIR (jax): 7 programs read from the cache, 0 compiled and written``).
    """

    def __init__(self, folder: Path | None, backend: str) -> None:
        self.folder, self.backend = folder, backend
        self.hits = self.misses = 0
        self._before = _entries(folder)
        self._lock = threading.Lock()
        if folder is not None and backend == "jax":
            import jax.monitoring

            listener: Callable[..., None] = self._on_event
            jax.monitoring.register_event_listener(listener)

    def _on_event(self, event: str, **_: Any) -> None:
        with self._lock:
            if event == HIT_EVENT:
                self.hits += 1
            elif event == MISS_EVENT:
                self.misses += 1

    @property
    def new_entries(self) -> int:
        """Files the cache folder gained since the counter started (every cache, TensorFlow's too)."""
        return _entries(self.folder) - self._before

    def summary(self) -> str:
        if self.folder is None:
            return f"Compile cache: off ({CACHE_ENV}={OFF})"
        shown = shown_path(self.folder)
        if self.backend == "jax":
            return (f"Compile cache: {shown}: {self.hits} programs read from the cache, "
                    f"{self.misses} compiled and written")
        return f"Compile cache: {shown}: {self.new_entries} new entries"
