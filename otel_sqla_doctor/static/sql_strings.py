"""Where a placeholder sits in a SQL template: in a value's place, an identifier's, or a fragment's.

Only a value can become a bound parameter. `f"SELECT * FROM {table} WHERE id = {user_id}"` has
one identifier (`table`: an allow-list or quoting is the remedy, and a table name is fixed per
deployment) and one value (`user_id`: a new `db.statement` per user, and an injection). Real code
interpolates identifiers far more often than values: schema names into `SET search_path`, table
names from metadata, column lists joined from a dict's keys with `:name` placeholders after them.

`position(before, after)` reads the literal SQL around the placeholder (other placeholders of
the same template appear in `before`/`after` as `?`) and answers:

- "value": inside a quoted string literal, or after a comparison, `IN (`, `VALUES (`, `LIMIT`, ...;
- "identifier": double-quoted or backticked, qualified (`{schema}.t`, `t.{col}`), after `FROM`,
  `JOIN`, `INTO`, `UPDATE`, `ORDER BY`, in a select list, or on the left of a comparison whose
  right side is already a bound parameter (`{col} = :value`);
- "fragment": where a clause or a whole statement goes (`WHERE {conditions}`, `EXPLAIN {stmt}`,
  the template is nothing but the placeholder): what it holds decides, and is looked at on its own;
- "unknown": none of these.
"""

from __future__ import annotations

import re
import string
from typing import Iterator, Optional

VALUE, IDENTIFIER, FRAGMENT, UNKNOWN = "value", "identifier", "fragment", "unknown"

# A bound parameter in any paramstyle: `:name`, `$1`, `%s`, `%(name)s`, `?`.
_BIND = r"(?::\w+|\$\d+|%s|%\(\w+\)s|\?(?!\?))"
_BOUND_RIGHT_SIDE = re.compile(
    rf"^(?:=|==|<>|!=|<=|>=|<|>|\bLIKE\b|\bILIKE\b|\bIN\b|\bIS\b|@>|<@|&&|~)\s*(?:\(\s*|ANY\s*\(\s*|ALL\s*\(\s*)?{_BIND}",
    re.IGNORECASE,
)
_IDENTIFIER_AFTER = re.compile(r"^(?:\.(?!\d)|\((?!\s*\))|\bIS\s+(?:NOT\s+)?NULL\b|\bASC\b|\bDESC\b|\bNULLS\b)", re.IGNORECASE)
_VALUE_BEFORE = re.compile(
    r"(?:=|==|<>|!=|<=|>=|<|>|\+|-|\*|/|\|\||\bLIKE|\bILIKE|\bLIMIT|\bOFFSET|\bBETWEEN|\bTHEN|\bELSE"
    r"|\bINTERVAL|\bIN\s*\(|\bANY\s*\(|\bVALUES\s*\(|\bDEFAULT|\bNOTIFY\s+\w+\s*,)\s*$",
    re.IGNORECASE,
)
_IDENTIFIER_BEFORE = re.compile(
    r"(?:\bFROM|\bJOIN|\bINTO|\bUPDATE|\bTABLE|\bEXISTS|\bSCHEMA|\bINDEX|\bVIEW|\bSEQUENCE|\bTYPE|\bDATABASE"
    r"|\bONLY|\bAS|\bBY|\bSELECT|\bDISTINCT|\bRETURNING|\bUSING|\bTO|\bCOLUMN|\bCONSTRAINT|\bTRIGGER"
    r"|\bFUNCTION|\bEXTENSION|\bROLE|\bUSER|\bLISTEN|\bUNLISTEN|\bNOTIFY|\bCHANNEL|\bEXCEPT|\bUNION|\bINTERSECT)\s*$",
    re.IGNORECASE,
)
_FRAGMENT_BEFORE = re.compile(
    r"(?:\bWHERE|\bAND|\bOR|\bNOT|\bHAVING|\bON|\bSET|\bEXPLAIN(?:\s+ANALY[SZ]E)?(?:\s*\([^)]*\))?|\bWITH|\bCASE|\bWHEN|\bFILTER\s*\(\s*WHERE)\s*$",
    re.IGNORECASE,
)
# For a placeholder after a comma, the keyword that opened the list decides.
_LIST_OPENER = re.compile(
    r"\b(SELECT|BY|RETURNING|DISTINCT|VALUES|IN|INTO|SET|ANY)\b|\(",
    re.IGNORECASE,
)


def position(before: str, after: str) -> str:
    """VALUE, IDENTIFIER, FRAGMENT or UNKNOWN for a placeholder between `before` and `after`."""
    if _inside_single_quotes(before):
        return VALUE
    b, a = before.rstrip(), after.lstrip()
    if not b.strip() and not a.strip():
        return FRAGMENT  # the whole template is the placeholder
    if (b.endswith('"') and a.startswith('"')) or (b.endswith("`") and a.startswith("`")) or (b.endswith("[") and a.startswith("]")):
        return IDENTIFIER
    if b.endswith(".") or _IDENTIFIER_AFTER.match(a) or _BOUND_RIGHT_SIDE.match(a):
        return IDENTIFIER
    if b.endswith("(") and a.startswith(")") and _BOUND_RIGHT_SIDE.match(a[1:].lstrip()):
        return IDENTIFIER  # `lower({col}) LIKE :q`: a function of a column compared with a bound value
    if (b.endswith(":") and not b.endswith("::")) or b.endswith("%(") or b.endswith("$"):
        return IDENTIFIER  # the name of a bound parameter: `:{key}`, `%({key})s`
    if _VALUE_BEFORE.search(b):
        return VALUE
    if _IDENTIFIER_BEFORE.search(b):
        return IDENTIFIER
    if not b.strip() or _FRAGMENT_BEFORE.search(b):
        return FRAGMENT
    if b.endswith(",") or b.endswith("("):
        return _list_position(b)
    clause = _clause_position(b)
    after_operand = re.search(r"[\w\"`\]?)]$", b)
    if clause == IDENTIFIER and after_operand and _CLAUSE.findall(b)[-1].upper() in ("FROM", "JOIN", "INTO", "UPDATE"):
        # `FROM t {x}`: an alias, or the JOIN/WHERE clause that follows the table: what it holds decides.
        return FRAGMENT
    if clause == UNKNOWN and after_operand:
        # Right after an operand (a name, a closing bracket, another placeholder): a value would
        # be a syntax error there, so what goes in is a clause or a keyword (`SET {cols} {where}`).
        return FRAGMENT
    return clause


_CLAUSE = re.compile(r"\b(SELECT|FROM|JOIN|INTO|UPDATE|BY|RETURNING|WHERE|HAVING|ON|SET|VALUES|LIMIT|OFFSET|AND|OR)\b", re.IGNORECASE)


def _clause_position(before: str) -> str:
    """The clause a placeholder is in, when nothing next to it tells: `ORDER BY created {dir}`,
    `FROM t {alias}` hold keywords and names; a WHERE or SET clause may hold anything."""
    clauses = _CLAUSE.findall(before)
    if not clauses:
        return UNKNOWN
    last = clauses[-1].upper()
    if last in ("SELECT", "FROM", "JOIN", "INTO", "UPDATE", "BY", "RETURNING"):
        return IDENTIFIER
    return UNKNOWN


def _inside_single_quotes(before: str) -> bool:
    # '' is an escaped quote inside a literal: it flips twice, so counting works.
    return before.count("'") % 2 == 1


def _list_position(before: str) -> str:
    depth = 0
    for match in reversed(list(_LIST_OPENER.finditer(before))):
        token = match.group(0)
        if token == "(":
            # An opening bracket with no keyword before it: a column list `INTO t (a, {b}` or a call.
            prefix = before[: match.start()].rstrip()
            if re.search(r"\b(?:VALUES|IN|ANY)\s*$", prefix, re.IGNORECASE):
                return VALUE
            if depth == 0 and re.search(r"\b(?:AS(?:\s+(?:NOT\s+)?MATERIALIZED)?|EXISTS)\s*$", prefix, re.IGNORECASE):
                return FRAGMENT  # `WITH v AS ({query})`, `EXISTS ({subquery})`: a statement goes there
            if depth == 0 and re.search(r"\bINTO\s+[\w.\"`?]+\s*$", prefix, re.IGNORECASE):
                return IDENTIFIER
            if re.search(r"\w$", prefix):
                # A function's argument: a column in a select list (`max({col})`), else a value.
                return IDENTIFIER if _clause_position(prefix) == IDENTIFIER else VALUE
            continue
        word = token.upper()
        if word in ("VALUES", "IN", "ANY"):
            return VALUE
        if word in ("SELECT", "BY", "RETURNING", "DISTINCT", "INTO"):
            return IDENTIFIER
        if word == "SET":
            return FRAGMENT
    return UNKNOWN


# -- templates: the literal text around each placeholder ------------------------------------------
def format_fields(template: str) -> Optional[list[tuple[str, str, str]]]:
    """(field name, text before, text after) for each `{}` field of a `str.format` template, with
    the other fields shown as `?`; None when the template is not a valid format string."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    pieces: list[str] = []
    fields: list[str] = []
    for literal, field, _, _ in parsed:
        pieces.append(literal)
        if field is not None:
            fields.append(field)
            pieces.append("\0")
    return _around(pieces, fields)


_PERCENT_FIELD = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdifrx]|%%")


def percent_fields(template: str) -> list[tuple[str, str, str]]:
    """(key or position, text before, text after) for each `%s`/`%(name)s` of a %-template."""
    pieces: list[str] = []
    fields: list[str] = []
    last = 0
    position_index = 0
    for match in _PERCENT_FIELD.finditer(template):
        if match.group(0) == "%%":
            continue
        pieces.append(template[last : match.start()])
        pieces.append("\0")
        fields.append(match.group(1) or str(position_index))
        position_index += match.group(1) is None
        last = match.end()
    pieces.append(template[last:])
    return _around(pieces, fields)


def _around(pieces: list[str], fields: list[str]) -> list[tuple[str, str, str]]:
    out = []
    holes = [i for i, p in enumerate(pieces) if p == "\0"]
    for field, hole in zip(fields, holes):
        before = "".join("?" if p == "\0" else p for p in pieces[:hole])
        after = "".join("?" if p == "\0" else p for p in pieces[hole + 1 :])
        out.append((field, before, after))
    return out


def split_around(parts: list[Optional[str]]) -> Iterator[tuple[int, str, str]]:
    """For a template given as literal pieces and holes (None), each hole's index and the text
    before and after it (other holes as `?`)."""
    for i, part in enumerate(parts):
        if part is None:
            before = "".join("?" if p is None else p for p in parts[:i])
            after = "".join("?" if p is None else p for p in parts[i + 1 :])
            yield i, before, after
