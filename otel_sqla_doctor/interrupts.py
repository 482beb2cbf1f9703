"""Ctrl-C handling: one line on stderr and exit code 130, whatever the doctor was doing.

The first Ctrl-C raises `KeyboardInterrupt` as usual, and also sets a flag, because native code
(libcst's parser calls back into Python to build nodes) can swallow the exception: the scan checks
the flag between files. A second Ctrl-C ends the process at once. Reports are written atomically,
so neither leaves a partial output file behind.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import suppress as _suppress

EXIT_CODE = 130
MESSAGE = "doctor: interrupted"

_requested = False


def install() -> None:
    """Take over SIGINT for the command-line process (never done for library use)."""
    with _suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGINT, _on_sigint)


def _on_sigint(signum, frame) -> None:
    global _requested
    if _requested:
        os.write(2, (MESSAGE + "\n").encode())
        os._exit(EXIT_CODE)
    _requested = True
    raise KeyboardInterrupt


def requested() -> bool:
    return _requested


def check() -> None:
    """Raise `KeyboardInterrupt` if Ctrl-C was pressed while native code held the exception."""
    if _requested:
        raise KeyboardInterrupt


def exit_interrupted() -> None:
    with _suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # already leaving: one message only
    print(MESSAGE, file=sys.stderr, flush=True)
    sys.exit(EXIT_CODE)


def ignore_in_worker() -> None:
    """Pool workers leave Ctrl-C to the parent, which cancels the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
