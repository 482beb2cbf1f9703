"""Errors that the CLI turns into one clear line on stderr and a documented exit code."""

from __future__ import annotations


class DoctorError(Exception):
    """A problem the user can fix (bad option, bad DSN, unreadable config). Exit code 2."""

    exit_code = 2


class UsageError(DoctorError):
    """The command line or configuration is wrong."""
