"""SQL injection: did a user input change the structure of a statement?

An input is harmless while each place it lands in the statement lies inside one token (a
string literal, a number, an identifier, a comment the app wrote). It is an injection when
an occurrence breaks out of a literal or comment, opens one, adds a comment, or spans several
tokens among which are operators, parentheses, semicolons, literals or clause keywords.
Spans of plain identifiers, numbers, commas and dots (``name DESC``, ``1,2,3``) change
nothing an attacker can use and are let through, which keeps sort columns and id lists quiet.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from urllib.parse import unquote_plus

from rasp.detectors import AttackKind, Finding
from rasp.lexers.sql import Dialect, Token, TokenKind, tokenize

__all__ = ["detect", "redact"]

MIN_INPUT_LENGTH = 2

# Keywords that give an attacker something: new clauses, boolean logic, statements, delays.
# Sort words (ASC, DESC, NULLS FIRST/LAST) and literal words (NULL, TRUE) are not here on
# purpose: an input of plain identifiers and those words cannot change what a query does.
STRUCTURAL_KEYWORDS = frozenset(
    """
    UNION SELECT INSERT UPDATE DELETE DROP ALTER CREATE TRUNCATE REPLACE MERGE UPSERT EXEC
    EXECUTE CALL DECLARE SET GRANT REVOKE ATTACH DETACH PRAGMA VACUUM COPY LOAD INTO OUTFILE
    DUMPFILE FROM WHERE HAVING GROUP ORDER BY LIMIT OFFSET FETCH JOIN OR AND XOR NOT IS LIKE
    ILIKE GLOB REGEXP RLIKE MATCH SIMILAR SOUNDS BETWEEN IN EXISTS ANY ALL SOME CASE WHEN THEN
    ELSE END DIV MOD WAITFOR DELAY SHUTDOWN PROCEDURE RETURNING WITH VALUES TABLE DATABASE
    BEGIN COMMIT ROLLBACK SAVEPOINT LOCK UNLOCK HANDLER PREPARE DEALLOCATE DO SHOW DESCRIBE
    EXPLAIN USE ESCAPE INTERSECT EXCEPT MINUS
    """.split()
)

# An input made only of word characters lies inside one run of word characters wherever it
# is found, and such a run is never split into tokens that an attacker could use.
_WORD_ONLY = re.compile(r"\w+")
_QUOTED = (TokenKind.STRING, TokenKind.QUOTED_IDENTIFIER)
_DELIMITED = (TokenKind.STRING, TokenKind.QUOTED_IDENTIFIER, TokenKind.COMMENT)
_INERT_PUNCTUATION = frozenset(",.")
_SIGNS = frozenset("+-")


def detect(
    query: str, user_input: str, *, dialect: Dialect | str = Dialect.GENERIC
) -> Finding | None:
    """Return a finding when ``user_input`` changed the structure of ``query``, else ``None``.

    ``dialect`` is one of ``generic``, ``sqlite``, ``postgresql``, ``mysql`` (aliases:
    ``postgres``, ``mariadb``). Never raises on any ``str`` or ``bytes`` arguments.
    """
    query_text = _as_text(query)
    needle_source = _as_text(user_input)
    if query_text is None or needle_source is None or len(needle_source) < MIN_INPUT_LENGTH:
        return None
    try:
        dialect = Dialect.parse(dialect)
    except (ValueError, AttributeError):
        dialect = Dialect.GENERIC
    tokens: list[Token] | None = None
    starts: list[int] = []
    for needle in needles(needle_source):
        if needle not in query_text or _WORD_ONLY.fullmatch(needle):
            continue
        if tokens is None:
            tokens = tokenize(query_text, dialect)
            starts = [t.start for t in tokens]
        finding = _scan(query_text, needle, tokens, starts)
        if finding is not None:
            return finding
    return None


def redact(query: str, dialect: Dialect | str = Dialect.GENERIC) -> str:
    """The statement with every string and number literal replaced by ``?``."""
    parts: list[str] = []
    for token in tokenize(query, dialect):
        if token.kind in (TokenKind.STRING, TokenKind.NUMBER):
            parts.append("?")
        else:
            parts.append(query[token.start : token.end])
    return "".join(parts)


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return None


def needles(user_input: str) -> list[str]:
    """The input, then the forms apps commonly turn it into before building SQL."""
    needles = [user_input]
    if "'" in user_input:
        needles.append(user_input.replace("'", "''"))
        needles.append(user_input.replace("'", "\\'"))
    if "%" in user_input or "+" in user_input:
        decoded = unquote_plus(user_input)
        if decoded != user_input and len(decoded) >= MIN_INPUT_LENGTH:
            needles.append(decoded)
    return needles


def _scan(query: str, needle: str, tokens: list[Token], starts: list[int]) -> Finding | None:
    # Non-overlapping occurrences keep the total work linear in the statement's length.
    find = query.find
    width = len(needle)
    position = find(needle)
    while position >= 0:
        end = position + width
        reason = _judge(query, position, end, tokens, starts)
        if reason is not None:
            return Finding(AttackKind.SQL_INJECTION, reason, position, end, needle)
        position = find(needle, end)
    return None


def _judge(query: str, start: int, end: int, tokens: list[Token], starts: list[int]) -> str | None:
    first = bisect_right(starts, start) - 1
    last = bisect_right(starts, end - 1) - 1
    head = tokens[first]
    if first == last:
        return _judge_inside(query, start, end, head)
    if head.kind in _DELIMITED and start > head.start:
        return "breaks out of a comment" if head.kind is TokenKind.COMMENT else (
            "breaks out of a quoted literal"
        )
    tail = tokens[last]
    if tail.kind in _DELIMITED and end < tail.end:
        return "opens a comment" if tail.kind is TokenKind.COMMENT else "opens a quoted literal"
    index = first
    if head.kind is TokenKind.OPERATOR and query[head.start : head.end] in _SIGNS:
        # A leading sign belongs to the number after it: "-1" is one value, not an operator.
        following = tokens[first + 1]
        if following.kind is TokenKind.NUMBER:
            index += 1
    while index <= last:
        token = tokens[index]
        index += 1
        kind = token.kind
        if kind is TokenKind.WHITESPACE or kind is TokenKind.NUMBER:
            continue
        if kind is TokenKind.WORD:
            if query[token.start : token.end].upper() in STRUCTURAL_KEYWORDS:
                return "adds an SQL keyword"
            continue
        if kind is TokenKind.PUNCTUATION:
            if query[token.start : token.end] in _INERT_PUNCTUATION:
                continue
            return "adds punctuation"
        if kind is TokenKind.COMMENT:
            return "adds a comment"
        if kind in _QUOTED:
            return "adds a quoted literal"
        if kind is TokenKind.OPERATOR:
            return "adds an operator"
        if kind is TokenKind.PLACEHOLDER:
            continue
        return "adds a stray character"
    return None


def _judge_inside(query: str, start: int, end: int, token: Token) -> str | None:
    """The occurrence lies within one token: harmless unless it supplied the delimiters."""
    kind = token.kind
    if kind is TokenKind.COMMENT:
        if token.start >= start:
            return "adds a comment"
        if token.closed and token.end == end:
            return "closes a comment"
        return None
    if kind in _QUOTED:
        if token.start == start:
            if not token.closed:
                return "opens a quoted literal that never closes"
            if token.end > end:
                return "opens a quoted literal"
            return None  # the input is one whole literal
        if token.closed and token.end == end:
            return "closes a quoted literal"
    return None
