"""Every exception class agbm defines, in one place, under one base class.

The rule: every fault of a user's file or environment (data, checkpoints, configuration
files, output folders, missing extras, a run that diverged) raises an `AgbmError` subclass
naming the file at fault. A plain `ValueError` is only for a bad argument given in code (or
a bad command-line option, which reaches the library as one). `agbm` commands print both
as one line, never as a traceback; library users catch `AgbmError` for the former.
Messages name the library's parameters in backticks (`coverage`); the CLI spells those as
its flags (--coverage). What the library goes on without is an `AgbmWarning`.
"""

from __future__ import annotations

import pickle
import warnings

#: Messages of libraries that only point at the exception they chain (rasterio's "Read
#: failed. See previous exception for details."): the cause says more.
_POINTS_BACK = ("see previous exception", "see above")


def reason(exc: BaseException, limit: int = 200) -> str:
    """A foreign exception's message on one line, cut to `limit` characters (its type's name
    when it has none): what a one-line error quotes of the library that failed. A message
    that only refers to the exception it chains is replaced by that cause's."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        text = " ".join(str(exc).split())
        cause = exc.__cause__ or exc.__context__
        if cause is None or (text and not any(p in text.lower() for p in _POINTS_BACK)):
            return text[:limit] or type(exc).__name__
        exc = cause
    return type(exc).__name__


class AgbmWarning(UserWarning):
    """What agbm tells its user it could not do as asked, and goes on without (bounds a
    calibration cannot give, plots left out); `agbm` commands show each as one line."""


def warn(message: str) -> None:
    """Tell the user, as an `AgbmWarning`, what the library goes on without; the `agbm`
    commands show it as one line naming their flags (library users filter or log it)."""
    warnings.warn(message, AgbmWarning, stacklevel=3)


class AgbmError(Exception):
    """Base of the errors agbm raises for a user's files or environment."""


class DataError(AgbmError):
    """A data set file or directory is missing, unreadable or not what the layout promises."""


class CheckpointError(AgbmError):
    """A checkpoint is missing, unreadable, of another program, or does not fit its model."""


class UnsafePickleError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint names something no checkpoint needs; nothing in it was run."""


class PretrainedWeightsError(AgbmError, RuntimeError):
    """Encoder weights were asked for but cannot be had (no network, missing or bad file)."""


class DependencyError(AgbmError, ImportError):
    """An optional library is not installed; the message names the `pip install` for it."""


class ConfigError(AgbmError):
    """A settings file, or a value in it, that cannot be used; the message names the key."""


class OutputError(AgbmError):
    """An output cannot be written: a read-only folder, a directory where a file goes, one
    of the command's own inputs, or a folder that holds the results of other settings."""


class RunBusyError(AgbmError):
    """Another live process holds the run folder."""


class DivergedError(AgbmError):
    """Training produced a loss or validation score that is not finite."""


class TileError(AgbmError):
    """A region tile's work failed (after its retries); the message names the tile and the
    cause, so that a tile that needed it says which neighbour failed and why."""
