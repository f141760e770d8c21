"""Keep TensorFlow's start-up log lines off the terminal and out of notebooks, unless asked for.

TensorFlow prints about nine C++ log lines when it loads (oneDNN, CUDA stubs, CPU instructions, a
red-looking ``failed call to cuInit`` on machines without a GPU). None is something a scientist can
act on, and a one-line user error drowned in them reads as a crash. ``TF_CPP_MIN_LOG_LEVEL`` hides
the lines printed after TensorFlow has started, but since TensorFlow 2.19 not those printed while its
libraries load (tensorflow/tensorflow#100442), so that import runs with the process's stderr file
descriptor parked in a temporary file, replayed only if the import fails.

``import tomoseg_nb`` sets this up (``install``); a ``TF_CPP_MIN_LOG_LEVEL`` the user set is kept and
decides (0 shows everything). ``verbose()`` (``tomoseg-nb --verbose``) brings every line back.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LOG_LEVEL = "3"  # C++ info, warning and error lines off; Python exceptions still raise
VERBOSE_VARIABLE = "TOMOSEG_NB_VERBOSE"


def is_quiet() -> bool:
    """Whether TensorFlow's C++ lines are to be hidden: not verbose, and a log level above 0."""
    if os.environ.get(VERBOSE_VARIABLE, "0") not in ("", "0"):
        return False
    return os.environ.get(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL).strip() not in ("", "0")


def verbose() -> None:
    """Show every TensorFlow log line again; takes effect only if TensorFlow is not loaded yet."""
    os.environ[VERBOSE_VARIABLE] = "1"
    os.environ[LOG_LEVEL_VARIABLE] = "0"


@contextmanager
def parked_stderr() -> Iterator[None]:
    """Send what is written to file descriptor 2 (C++ code included) to a temporary file.

    If the body raises, what was written is replayed on stderr, so a broken installation still
    explains itself.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            parked.seek(0)
            sys.stderr.write(parked.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader with stderr parked, then steps out of the module's records."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            with parked_stderr():
                self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, but hands out a loader that parks stderr while it loads."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow" or not is_quiet():
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Default the C++ log level to quiet and park stderr while TensorFlow loads; idempotent."""
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL)
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
