"""Exceptions that carry a one-line message meant for the user.

The CLI turns every :class:`NormscaleError` into ``exit code 2`` and its
message, with no traceback.
"""


class NormscaleError(Exception):
    """Bad input or an unusable file: the message says what and how to fix it."""


class ParameterError(NormscaleError, ValueError):
    """A parameter value outside its declared constraint."""


class DataError(NormscaleError):
    """A missing, corrupt or truncated data file (the message names the file)."""
