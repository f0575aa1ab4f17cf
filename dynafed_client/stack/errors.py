"""Exceptions and warnings raised by the local stack."""
from __future__ import annotations


class StackError(RuntimeError):
    """The local stack could not be started, inspected or stopped.

    The message is meant for a human: it names the component, what was
    expected, and (when a process is involved) the tail of its log.
    """


class StackWarning(UserWarning):
    """A component was skipped (e.g. its module is not written yet)."""
