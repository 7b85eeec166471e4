"""Every exception class agbm defines, in one place, under one base class.

Faults of data, weights and files raise an `AgbmError`; a bad option or argument raises a
plain `ValueError`. `agbm` commands print both as one line naming the file or option at
fault, never as a traceback; library users can catch `AgbmError` for the former.
"""

from __future__ import annotations

import pickle


def reason(exc: BaseException, limit: int = 200) -> str:
    """A foreign exception's message on one line, cut to `limit` characters (its type's name
    when it has none): what a one-line error quotes of the library that failed."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class AgbmError(Exception):
    """Base of the errors agbm raises for bad input."""


class DataError(AgbmError):
    """A data set file or directory is missing, unreadable or not what the layout promises."""


class PretrainedWeightsError(AgbmError, RuntimeError):
    """Encoder weights were asked for but cannot be had (no network, missing or bad file)."""


class UnsafePickleError(AgbmError, pickle.UnpicklingError):
    """A checkpoint names something no checkpoint needs; nothing in it was run."""
