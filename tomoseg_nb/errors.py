"""User-facing exceptions: mistakes a user can fix, reported by the CLI as one line, no traceback.

Each subclasses the matching builtin (``ValueError``, ``FileNotFoundError``...) so callers that
catch builtins keep working, and ``TomosegError`` so the CLI can tell them from programming errors.
"""

from __future__ import annotations


class TomosegError(Exception):
    """Base class: the message says what was wrong and what to do."""


class BadInputError(TomosegError, ValueError):
    """An input file or value is malformed, inconsistent or out of range."""


class MissingInputError(TomosegError, FileNotFoundError):
    """An input file or folder does not exist."""


class OutputExistsError(TomosegError, FileExistsError):
    """An output path exists and overwriting was not asked for."""


class ProjectLockedError(TomosegError, RuntimeError):
    """Another process is writing the same annotation project."""


class CancelledError(TomosegError, RuntimeError):
    """A long operation was cancelled by the user; nothing half-written was kept."""


def first_line(error: BaseException) -> str:
    """A library error's first line (or its type's name), to quote inside a one-line message."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


class EmptyResultWarning(UserWarning):
    """An operation found nothing (no voxel above threshold, no pick); its empty output was still written."""


class TrainingCollapsedWarning(UserWarning):
    """A trained network finds none of the pixels painted on its own training tiles."""
