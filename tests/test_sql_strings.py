"""Where a placeholder sits in SQL decides whether it could be a bound parameter (OSD301).

The cases are the shapes read in real repositories (bench/realworld): identifiers interpolated
into SQL are common and cannot be bound; only values can."""

from __future__ import annotations

import pytest

from otel_sqla_doctor.static.sql_strings import FRAGMENT, IDENTIFIER, UNKNOWN, VALUE, format_fields, percent_fields, position


def _split(template: str) -> tuple[str, str]:
    before, _, after = template.partition("{}")
    return before, after


@pytest.mark.parametrize(
    "template, expected",
    [
        ("SELECT * FROM users WHERE id = {}", VALUE),
        ("SELECT * FROM users WHERE name = '{}'", VALUE),
        ("SELECT * FROM items WHERE title LIKE '%{}%'", VALUE),
        ("SELECT * FROM t WHERE id IN ({})", VALUE),
        ("INSERT INTO t (a, b) VALUES (:a, {})", VALUE),
        ("SELECT * FROM t LIMIT {}", VALUE),
        ("SELECT * FROM t LIMIT 10 OFFSET {}", VALUE),
        ("SELECT pg_notify('events', '{}')", VALUE),
        ("SELECT * FROM {} WHERE id = :id", IDENTIFIER),
        ('SELECT COUNT(*) FROM "{}"', IDENTIFIER),
        ('SET search_path TO "{}"', IDENTIFIER),
        ('SELECT * FROM "{}".alembic_version LIMIT 1', IDENTIFIER),
        ("SELECT * FROM {}.alembic_version", IDENTIFIER),
        ("SELECT t.{} FROM t", IDENTIFIER),
        ("DELETE FROM t WHERE {} = ANY(:ids)", IDENTIFIER),
        ("SELECT * FROM t WHERE {} = :value", IDENTIFIER),
        ("SELECT *, {} <=> :emb AS d FROM items", IDENTIFIER),
        ("SELECT * FROM t ORDER BY {}", IDENTIFIER),
        ("SELECT * FROM t ORDER BY created {}", IDENTIFIER),
        ("SELECT * FROM t WHERE a {}", FRAGMENT),
        ("UPDATE t SET ? {}", FRAGMENT),
        ("SELECT * FROM t WHERE a = 1 {}", FRAGMENT),
        ("SELECT * FROM t WHERE id = CAST({} AS int)", VALUE),
        ("SELECT * FROM t WHERE lower(name) = lower({})", VALUE),
        ("SELECT max({}) FROM t", IDENTIFIER),
        ("SELECT * FROM t WHERE id = {}::int", VALUE),
        ("SELECT * FROM a JOIN b ON a.id = {}.id", IDENTIFIER),
        ("SELECT {} FROM t", IDENTIFIER),
        ("SELECT a, {} FROM t", IDENTIFIER),
        ("INSERT INTO t ({}) VALUES (:a)", IDENTIFIER),
        ("UPDATE {} SET a = :a", IDENTIFIER),
        ("SELECT * FROM t WHERE a = :{}", IDENTIFIER),
        ("SELECT * FROM t WHERE {}", FRAGMENT),
        ("SELECT * FROM t WHERE a = 1 AND {}", FRAGMENT),
        ("EXPLAIN ANALYZE {}", FRAGMENT),
        ("{}", FRAGMENT),
        ("UPDATE t SET {} WHERE id = :id", FRAGMENT),
        ("WITH v AS (\n  {}\n), f AS (?) SELECT * FROM v", FRAGMENT),
        ("SELECT * FROM t WHERE EXISTS ({})", FRAGMENT),
        ("SELECT * FROM t WHERE lower({}) LIKE :search", IDENTIFIER),
        ("SELECT CAST(x AS int) FROM t WHERE id = CAST({} AS int)", VALUE),
        ("SELECT id FROM ?\n    {}\n    ORDER BY id", FRAGMENT),
    ],
)
def test_position(template, expected):
    assert position(*_split(template)) == expected


def test_other_placeholders_show_as_question_marks():
    fields = format_fields("SELECT * FROM {table} WHERE id = {}")
    assert fields == [("table", "SELECT * FROM ", " WHERE id = ?"), ("", "SELECT * FROM ? WHERE id = ", "")]
    assert [position(b, a) for _, b, a in fields] == [IDENTIFIER, VALUE]


def test_percent_fields():
    fields = percent_fields("SELECT * FROM %s WHERE name = '%s' AND pct = 100%%")
    assert [(k, position(b, a)) for k, b, a in fields] == [("0", IDENTIFIER), ("1", VALUE)]
    named = percent_fields("SELECT * FROM t WHERE id = %(id)s")
    assert [(k, position(b, a)) for k, b, a in named] == [("id", VALUE)]
