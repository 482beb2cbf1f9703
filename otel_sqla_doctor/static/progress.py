"""The progress line of a long scan."""

from __future__ import annotations

import os
import sys

class Progress:
    """`scanning N/M files` on stderr, redrawn in place with \\r.

    Only on a terminal, never when the CI environment variable is set (CI logs keep every \\r), and
    only once the scan has run for DELAY seconds: short scans print nothing extra."""

    DELAY = 1.0
    INTERVAL = 0.1

    def __init__(self, total: int, stream=None) -> None:
        import time

        self._clock = time.monotonic
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.running = 0
        self.start = self._clock()
        self.last = 0.0
        self.width = 0
        try:
            tty = bool(self.stream.isatty())
        except (AttributeError, ValueError, OSError):
            tty = False
        self.enabled = total > 0 and tty and not os.environ.get("CI")

    def tick(self, done: int = 1, pending: int = 0) -> None:
        self.done += done
        self.running = self.running + pending if pending else 0
        if not self.enabled:
            return
        now = self._clock()
        if now - self.start < self.DELAY or now - self.last < self.INTERVAL:
            return
        self.last = now
        text = f"scanning {min(self.done + self.running, self.total)}/{self.total} files"
        self._write("\r" + text.ljust(self.width))
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            self._write("\r" + " " * self.width + "\r")
            self.width = 0

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
