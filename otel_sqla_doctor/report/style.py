"""Terminal styling shared by the text reports: colour only on a terminal, and never with NO_COLOR;
and `shorten`, the one way a message quotes code or SQL on one line."""

from __future__ import annotations

import os
import sys
from typing import TextIO

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36", "bold": "1", "dim": "2"}


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour when writing to a terminal, unless NO_COLOR is set (https://no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    """Wraps text in ANSI codes when enabled; a no-op otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


# Marks in the style of flutter doctor: one per check or finding.
MARKS = {"pass": "[✓]", "warn": "[!]", "fail": "[✗]", "skip": "[-]", "error": "[✗]", "warning": "[!]", "info": "[i]"}
MARK_STYLES = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim", "error": "red", "warning": "yellow", "info": "cyan"}


def shorten(text: str, limit: int = 120) -> str:
    """`text` on one line (runs of whitespace become one space), cut to `limit` characters with `…`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
