from hypothesis import given
from hypothesis import strategies as st

from otel_sqla_doctor.spans.normalize import is_transaction_control, normalize, strip_comments


def test_placeholder_styles_and_casts_give_one_shape():
    shapes = {
        normalize(sql).text
        for sql in (
            "SELECT name FROM users WHERE id = :id",
            "SELECT name FROM users WHERE id = $1::INTEGER",
            "SELECT name FROM users WHERE id = %s",
            "SELECT name FROM users WHERE id = %(id)s",
            "SELECT name FROM users WHERE id = ?",
            "SELECT name FROM users WHERE id = 42",
            "SELECT  name\nFROM users\tWHERE id = 'x'",
        )
    }
    assert shapes == {"SELECT name FROM users WHERE id = ?"}


def test_in_lists_of_any_length_collapse():
    a = normalize("SELECT * FROM t WHERE id IN ($1::INTEGER, $2::INTEGER, $3::INTEGER)")
    b = normalize("SELECT * FROM t WHERE id IN (7)")
    assert a.text == b.text == "SELECT * FROM t WHERE id IN (?)"
    assert normalize("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)").text == "INSERT INTO t (a, b) VALUES (?)"


def test_sqlcommenter_comment_is_removed():
    # the exact shape that reaches PostgreSQL with the commenter on (ground truth row 5)
    sql = (
        "SELECT current_query() /*db_driver='asyncpg',db_framework='sqlalchemy%%3A2.0.58',"
        "traceparent='00-0d139d2e48d442d3814e05461d426e22-341f64246f1dbe08-03'*/"
    )
    assert normalize(sql).text == "SELECT current_query()"
    assert normalize(sql).literals == ()
    assert strip_comments("SELECT 1 /* x */;") == "SELECT 1 ;"


def test_literals_are_kept_apart_from_placeholders():
    assert normalize("SELECT * FROM t WHERE a = 'q''s' AND b = 3.5 AND c = :c").literals == ("'q''s'", "3.5")
    assert normalize("SELECT * FROM t WHERE a = :a").literals == ()


def test_identifiers_with_digits_and_real_casts_survive():
    shape = normalize("SELECT t1.col2, x::text FROM t1 WHERE ts > $1::TIMESTAMP WITH TIME ZONE").text
    assert shape == "SELECT t1.col2, x::text FROM t1 WHERE ts > ?"


def test_transaction_control():
    for sql in ("BEGIN;", "COMMIT", "ROLLBACK;", "SAVEPOINT sa_1", ";", ""):
        assert is_transaction_control(sql)
    assert not is_transaction_control("SELECT 1")


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8), st.text(alphabet="abc' ", max_size=10))
def test_values_never_change_the_shape(numbers, word):
    literal = "'" + word.replace("'", "''") + "'"
    template = "SELECT a FROM t WHERE id IN ({}) AND name = {}"
    a = normalize(template.format(", ".join(map(str, numbers)), literal))
    b = normalize(template.format("1", "'other'"))
    assert a.text == b.text
    assert normalize(a.text).text == a.text  # idempotent
