"""Keeping passwords out of everything the doctor prints.

Two tools, used by every output path:

* `mask_url` hides the password of a database URL (`postgresql://u:***@host/db`), also in
  strings that are not valid URLs, because the text a user typed is what error messages echo.
* `Redactor` remembers the secrets seen so far (the password of the DSN, decoded and as typed)
  and scrubs them out of arbitrary text: driver exception messages, tracebacks, reports. It also
  removes the URL-encoded and repr-escaped spellings, since drivers and SQLAlchemy print either.

Masking too much is harmless; masking too little leaks a credential, so the rules are greedy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
SHORT_SECRET = 4

# scheme://user:password@host... : the password runs to the LAST "@" of the authority, because
# users paste unencoded "@" into passwords and SQLAlchemy then splits the URL differently. One
# slash is enough: a URL given where a path was expected comes back as `scheme:/user:pw@host`.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*:/{1,2}[^:/?#@\s]*:)(?P<password>[^\s]*)(?P<at>@)(?=[^@\s]*(?:\s|$))"
)
# Credentials carried as query parameters (`?password=...`), which some drivers accept.
_QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|secret|token)=)(?P<value>[^&;\s]*)", re.IGNORECASE)


def mask_url(text: str) -> str:
    """Replace every URL password (and `password=` query value) in `text` with `***`."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}" if m["password"] else m[0], text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}" if m["value"] else m[0], masked)


def url_passwords(text: str) -> list[str]:
    """The passwords a URL-like string carries, as typed and decoded, for `Redactor.add`."""
    found: list[str] = []
    for match in _URL_PASSWORD.finditer(text):
        raw = match["password"]
        found += [raw, unquote(raw)]
        # SQLAlchemy stops the password at the first "@" and reads the rest as the host: scrub
        # every piece, so "unknown host 'Tail@db'" cannot show the tail either.
        if "@" in raw:
            for piece in raw.split("@"):
                found += [piece, unquote(piece)]
    for match in _QUERY_SECRET.finditer(text):
        found += [match["value"], unquote(match["value"])]
    return [secret for secret in found if secret]


def _spellings(secret: str) -> set[str]:
    """The ways a secret shows up in messages: as is, URL-encoded (both styles), repr-escaped."""
    spellings = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), repr(secret)[1:-1]}
    spellings |= {s.lower() for s in spellings if "%" in s}  # %2f as well as %2F
    return {s for s in spellings if s}


@dataclass
class Redactor:
    """Scrubs known secrets out of text. Add every password the moment it is known."""

    secrets: set[str] = field(default_factory=set)

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if secret:
                self.secrets |= _spellings(secret)

    def add_url(self, url: str) -> None:
        """Remember the password(s) a URL string carries."""
        self.add(*url_passwords(url))

    def text(self, text: str | None) -> str | None:
        """`text` with every known secret replaced and any URL password masked."""
        if text is None:
            return None
        # Longest first, so a secret that contains another one is removed whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= SHORT_SECRET:
                text = text.replace(secret, MASK)
            else:
                # A very short password is scrubbed as a whole token only, or it would shred
                # every word that happens to contain its letters.
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, text)
        return mask_url(text)
