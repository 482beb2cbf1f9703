"""Console-script entry point. It handles Ctrl-C before importing the CLI, so an interrupt even
while typer and the commands are still importing ends with one line and exit code 130."""

from __future__ import annotations

import codecs
import sys
import unicodedata

from otel_sqla_doctor import interrupts

# What the reports print that a legacy encoding (cp1252, latin-1, ascii) may lack, in ASCII.
_ASCII = {
    "\u2713": "+",  # ✓ (the pass mark [✓] becomes [+])
    "\u2717": "x",  # ✗
    "\u2026": "...",
    "\u2014": "-",
    "\u2013": "-",
    "\u2192": "->",
    "\u00d7": "x",
    "\u2022": "*",
    "\u2265": ">=",
    "\u2264": "<=",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": "'",
    "\u201d": "'",
}
ERRORS = "otel-sqla-doctor-ascii"


def _ascii_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = []
    for char in exc.object[exc.start : exc.end]:
        plain = _ASCII.get(char)
        if plain is None:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii") or "?"
            # Never a quote or a backslash: the text may be inside a JSON string (--format json).
            plain = plain.replace('"', "'").replace("\\", "/")
        out.append(plain)
    return "".join(out), exc.end


def use_ascii_fallback() -> None:
    """On a stdout/stderr whose encoding cannot print the marks (PYTHONIOENCODING=cp1252, a
    legacy console), print ASCII instead of failing with UnicodeEncodeError."""
    try:
        codecs.lookup_error(ERRORS)
    except LookupError:
        codecs.register_error(ERRORS, _ascii_fallback)
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or not hasattr(stream, "reconfigure"):
            continue
        try:
            "\u2713\u2717".encode(encoding)
        except UnicodeEncodeError:
            try:
                stream.reconfigure(errors=ERRORS)
            except (ValueError, OSError, LookupError):
                pass
        except LookupError:
            pass


def main() -> None:
    interrupts.install()
    use_ascii_fallback()
    try:
        from otel_sqla_doctor.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        interrupts.exit_interrupted()
