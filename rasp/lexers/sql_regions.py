"""A fast pass over a SQL statement that finds only its quoted literals and comments.

The injection detector needs full tokens only where a user input landed; everywhere else it
needs to know whether a position is inside a literal or comment. This pass matches the same
literal and comment syntax as :mod:`rasp.lexers.sql` (the same sub-patterns) and lets the
regular expression engine skip everything else at C speed, so a typical statement costs one
match per literal.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rasp.lexers import sql as _lexer
from rasp.lexers.sql import Dialect, TokenKind

__all__ = ["Regions", "scan"]


class Regions(NamedTuple):
    """Parallel lists, sorted by start; positions not covered are plain SQL code."""

    starts: list[int]
    ends: list[int]
    kinds: list[TokenKind]
    closed: list[bool]


# Where a literal or comment may start: one character class, which the engine scans for
# fastest; a "-", "/" or "$" that starts nothing sends the scan to the exact pattern below,
# which skips runs of them (a "-----" run, say) in one call instead of one step each.
_MAYBE = {
    Dialect.GENERIC: re.compile(r"['\"`/-]"),
    Dialect.SQLITE: re.compile(r"['\"`\[/-]"),
    Dialect.POSTGRESQL: re.compile(r"['\"$/-]"),
    Dialect.MYSQL: re.compile(r"['\"`#/-]"),
}
_SURE_CHARS = {
    Dialect.GENERIC: "'\"`",
    Dialect.SQLITE: "'\"`[",
    Dialect.POSTGRESQL: "'\"",
    Dialect.MYSQL: "'\"`#",
}
_SPECIAL = {
    Dialect.GENERIC: re.compile(r"['\"`]|--|/\*"),
    Dialect.SQLITE: re.compile(r"['\"`\[]|--|/\*"),
    Dialect.POSTGRESQL: re.compile(
        r"['\"]|--|/\*|\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$"
    ),
    Dialect.MYSQL: re.compile(r"['\"`#]|--(?:[\x00-\x20\x7f]|$)|/\*"),
}
_DELIMITED = {
    dialect: re.compile(pattern, re.DOTALL)
    for dialect, pattern in {
        Dialect.GENERIC: "|".join(
            (
                _lexer._LINE_COMMENT,
                _lexer._BLOCK_COMMENT,
                _lexer._quoted("string", "'", "'"),
                _lexer._DQ_IDENT,
                _lexer._BACKTICK_IDENT,
            )
        ),
        Dialect.SQLITE: "|".join(
            (
                _lexer._LINE_COMMENT,
                _lexer._BLOCK_COMMENT,
                _lexer._quoted("string", "'", "'"),
                _lexer._DQ_IDENT,
                _lexer._BACKTICK_IDENT,
                r"(?P<qident3>\[[^\]]*(?P<qident3_close>\])?)",
            )
        ),
        Dialect.POSTGRESQL: "|".join(
            (
                _lexer._PG_LINE_COMMENT,
                _lexer._BLOCK_COMMENT,
                _lexer._PG_DOLLAR,
                _lexer._quoted("estring", "[Ee]'", "'", backslash=True),
                _lexer._quoted("string", "(?:[Uu]&)?'", "'"),
                _lexer._quoted("qident", '(?:[Uu]&)?"', '"'),
            )
        ),
        Dialect.MYSQL: "|".join(
            (
                _lexer._MYSQL_LINE_COMMENT,
                _lexer._BLOCK_COMMENT,
                _lexer._quoted("string", "'", "'", backslash=True),
                _lexer._quoted("dqstring", '"', '"', backslash=True),
                _lexer._BACKTICK_IDENT,
            )
        ),
    }.items()
}


def scan(sql: str, dialect: Dialect) -> Regions:
    """The literal and comment regions of ``sql``."""
    maybe = _MAYBE[dialect].search
    search = _SPECIAL[dialect].search
    sure = _SURE_CHARS[dialect]
    match = _DELIMITED[dialect].match
    closers = _lexer._CLOSERS
    kinds = _lexer._GROUP_KINDS
    postgres = dialect is Dialect.POSTGRESQL
    long_comments = postgres or dialect is Dialect.MYSQL
    regions = Regions([], [], [], [])
    starts, ends, region_kinds, closed_flags = regions
    pos = 0
    while True:
        found = maybe(sql, pos)
        if found is None:
            break
        if found.group() not in sure:
            found = search(sql, found.start())
            if found is None:
                break
        at = found.start()
        if postgres and at:
            at = _postgres_start(sql, at)
            if at < 0:  # "$" inside an identifier such as a$b
                pos = found.start() + 1
                continue
        m = match(sql, at)
        if m is None:
            pos = found.start() + 1
            continue
        group = m.lastgroup
        assert group is not None
        end = m.end()
        closer = closers.get(group)
        closed = closer is None or m.group(closer) is not None
        if closed and long_comments and group == "block_comment":
            nested_end = _lexer.block_comment_end(sql, at, end, dialect)
            if nested_end != end:
                closed = nested_end > 0
                end = nested_end if closed else len(sql)
        starts.append(at)
        ends.append(end)
        region_kinds.append(kinds[group])
        closed_flags.append(closed)
        pos = end
    return regions


def _postgres_start(sql: str, at: int) -> int:
    """Step back over an E or U& prefix; -1 for a "$" that continues an identifier.

    Prefixes count only at the start of a word, as in the full lexer, where a word swallows
    the "E" of nameE'x' and the "$" of a$b$ (but a number does not: 1$b$ starts a quote).
    """
    char = sql[at]
    before = sql[at - 1]
    if char == "$":
        if before.isdigit() and before.isascii():
            # Digits continue an identifier (a1$b$) or are a number (1$b$). Each run of
            # digits is walked once: the scan moves past it whatever the answer.
            start = at - 1
            while start > 0 and "0" <= sql[start - 1] <= "9":
                start -= 1
            return -1 if start > 0 and _is_ident_char(sql[start - 1]) else at
        return -1 if _is_ident_char(before) else at
    if char == "'" and before in "Ee" and not _in_word(sql, at - 1):
        return at - 1
    if before == "&" and at >= 2 and sql[at - 2] in "Uu" and not _in_word(sql, at - 2):
        return at - 2
    return at


def _in_word(sql: str, at: int) -> bool:
    return at > 0 and _is_ident_char(sql[at - 1])


def _is_ident_char(char: str) -> bool:
    # PostgreSQL identifiers: ASCII letters, digits, "_" and "$", and any non-ASCII character.
    return char.isalnum() or char in "_$" or char >= "\x80"
