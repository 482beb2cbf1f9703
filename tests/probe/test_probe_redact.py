"""Password masking: URLs in every spelling, and known secrets scrubbed from any text."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_sqla_doctor.redact import Redactor, mask_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql+asyncpg://app:s3cret@db:5432/shop", "postgresql+asyncpg://app:***@db:5432/shop"),
        ("mysql+aiomysql://root@127.0.0.1:3306/test", "mysql+aiomysql://root@127.0.0.1:3306/test"),
        ("postgresql://app:p@ss@word@db/shop", "postgresql://app:***@db/shop"),  # unencoded "@"
        ("error: 'postgresql://app:pw@db/x' failed", "error: 'postgresql://app:***@db/x' failed"),
        ("postgresql://db/shop?user=app&password=pw", "postgresql://db/shop?user=app&password=***"),
        ("postgresql://db:5432/shop", "postgresql://db:5432/shop"),
        ("two: a://u:x@h/d b://v:y@k/e", "two: a://u:***@h/d b://v:***@k/e"),
    ],
)
def test_mask_url(text, expected):
    assert mask_url(text) == expected


def test_redactor_scrubs_every_spelling_of_a_known_password():
    redactor = Redactor()
    redactor.add_url("postgresql+asyncpg://app:p%40ss%2Fw%3Ard@db/shop")

    message = "auth failed for 'p@ss/w:rd' (sent p%40ss%2Fw%3Ard, p%40ss/w%3Ard, p%40ss%2fw%3ard, p%40ss%2Fw%3Ard)"
    scrubbed = redactor.text(message)

    assert "p@ss" not in scrubbed and "p%40ss" not in scrubbed
    assert scrubbed.startswith("auth failed for '***'")


# Passwords with every URL-special character; the URL carries them percent-encoded, as it must.
passwords = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=4, max_size=24).filter(
    lambda s: s.strip() == s and any(c.isalnum() for c in s)
)


@settings(max_examples=200, deadline=None)
@given(password=passwords, user=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True))
def test_password_never_survives_masking_or_scrubbing(password, user):
    url = f"postgresql+asyncpg://{user}:{quote(password, safe='')}@db.example:5432/shop"
    redactor = Redactor()
    redactor.add_url(url)

    driver_message = f"FATAL: password {password!r} for {user} rejected; url={url}; raw={password}"
    # Compared whole: a password may also be a piece of the scheme or host ("sql+"), which stay.
    assert mask_url(url) == f"postgresql+asyncpg://{user}:***@db.example:5432/shop"
    for shown in (redactor.text(url), redactor.text(driver_message)):
        assert quote(password, safe="") not in shown
        assert password not in shown


def test_a_short_password_is_scrubbed_as_a_token_without_shredding_words():
    redactor = Redactor()
    redactor.add_url("mysql+aiomysql://root:ab@db/test")

    assert redactor.text("database ab rejected 'ab' (ab)") == "database *** rejected '***' (***)"
