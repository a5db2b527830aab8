"""Linear-time SQL tokenizers for the generic, SQLite, PostgreSQL and MySQL/MariaDB dialects.

Each dialect is one master regular expression of named alternatives, compiled at import and
walked with ``finditer``. Every alternative either fails within a few characters or runs to
the end of the input (an unclosed quote or comment is one token up to the end), and the last
alternative matches any single character, so the tokens always re-join to the input.

Quoted bodies use the ``(?=(?P<x>...))(?P=x)`` idiom: the look-ahead captures greedily and
the back-reference consumes exactly that, which makes the body atomic (no backtracking) on
Python versions without possessive quantifiers.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

__all__ = ["Dialect", "Token", "TokenKind", "tokenize"]


class Dialect(str, enum.Enum):
    GENERIC = "generic"
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"

    @classmethod
    def parse(cls, value: Dialect | str) -> Dialect:
        if isinstance(value, Dialect):
            return value
        try:
            return _DIALECT_ALIASES[value.lower()]
        except KeyError:
            allowed = ", ".join(d.value for d in cls)
            raise ValueError(f"unknown SQL dialect {value!r}; expected one of {allowed}") from None


_DIALECT_ALIASES = {
    "generic": Dialect.GENERIC,
    "sqlite": Dialect.SQLITE,
    "sqlite3": Dialect.SQLITE,
    "postgresql": Dialect.POSTGRESQL,
    "postgres": Dialect.POSTGRESQL,
    "pg": Dialect.POSTGRESQL,
    "mysql": Dialect.MYSQL,
    "mariadb": Dialect.MYSQL,
}


class TokenKind(enum.IntEnum):
    WHITESPACE = 0
    COMMENT = 1
    STRING = 2
    QUOTED_IDENTIFIER = 3
    NUMBER = 4
    WORD = 5
    PLACEHOLDER = 6
    OPERATOR = 7
    PUNCTUATION = 8
    OTHER = 9


class Token(NamedTuple):
    kind: TokenKind
    start: int
    end: int
    closed: bool = True
    """False for a string, quoted identifier or comment that runs to the end of the input."""


def _quoted(name: str, opening: str, quote: str, *, backslash: bool = False) -> str:
    """A quoted token whose quote doubles to escape itself (and, optionally, ``\\x`` escapes).

    The closing quote is its own group, so an unclosed token (running to end of input) is
    told apart by ``m.group(name + "_close") is None``.
    """
    q = re.escape(quote)
    if backslash:
        body = rf"[^{q}\\]*(?:(?:\\.|{q}{q})[^{q}\\]*)*\\?"
    else:
        body = rf"[^{q}]*(?:{q}{q}[^{q}]*)*"
    atomic_body = rf"(?=(?P<{name}_body>{body}))(?P={name}_body)"
    return rf"(?P<{name}>{opening}{atomic_body}(?P<{name}_close>{q})?)"


_WS = r"(?P<ws>\s+)"
_LINE_COMMENT = r"(?P<line_comment>--[^\n]*)"
# PostgreSQL ends a line comment at a carriage return too.
_PG_LINE_COMMENT = r"(?P<line_comment>--[^\n\r]*)"
# MySQL requires whitespace or a control character (DEL included) or the end of input after
# "--"; a NUL byte ends a line comment as a newline does.
_MYSQL_LINE_COMMENT = r"(?P<line_comment>(?:--(?=[\x00-\x20\x7f]|$)|\#)[^\n\x00]*)"
_BLOCK_COMMENT = (
    r"(?P<block_comment>/\*(?=(?P<block_comment_body>[^*]*(?:\*+[^*/][^*]*)*))"
    r"(?P=block_comment_body)(?:(?P<block_comment_close>\*+/)|\**))"
)
_NUMBER = r"(?P<number>0[xX][0-9A-Fa-f]+|0[bB][01]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
_WORD = r"(?P<word>[^\W\d][\w$]*)"
# PostgreSQL identifiers take any non-ASCII character (it works on bytes >= 0x80), and its
# whitespace is ASCII only: "a\u00a0$b$" and "\u20ac$b$" are identifiers, not dollar quotes.
_PG_WS = r"(?P<ws>[ \t\n\r\f]+)"
_PG_WORD = r"(?P<word>[A-Za-z_\x80-\U0010ffff][\w$\x80-\U0010ffff]*)"
_OPERATOR = (
    r"(?P<operator><=>|->>|->|::|<>|!=|<=|>=|==|\|\|/|\|\||&&|<<|>>|!!|@@|[-+*/%<>=~!&|^@#?])"
)
_PUNCT = r"(?P<punct>[(),;.\[\]{}:])"
_OTHER = r"(?P<other>.)"

# PostgreSQL dollar quotes: $$...$$ and $tag$...$tag$; unclosed ones run to the end.
_PG_DOLLAR = (
    r"(?P<dollar>\$(?P<dollar_tag>(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?)\$"
    r"(?=(?P<dollar_body>(?s:.*?)(?P<dollar_close>\$(?P=dollar_tag)\$)|(?s:.*)))"
    r"(?P=dollar_body))"
)
_SQL_STRING = _quoted("string", "'", "'")
_DQ_IDENT = _quoted("qident", '"', '"')
_BACKTICK_IDENT = _quoted("qident2", "`", "`")

_PATTERNS: dict[Dialect, str] = {
    Dialect.GENERIC: "|".join(
        (
            _WS,
            _LINE_COMMENT,
            _BLOCK_COMMENT,
            _quoted("string", "(?:[NnXxBb]|[Ee](?=')|)'", "'"),
            _DQ_IDENT,
            _BACKTICK_IDENT,
            r"(?P<placeholder>\?\d*|%\([^)\s]{1,64}\)s|%s|[:@$][A-Za-z_]\w*|\$\d+)",
            _NUMBER,
            _WORD,
            _OPERATOR,
            _PUNCT,
            _OTHER,
        )
    ),
    Dialect.SQLITE: "|".join(
        (
            _WS,
            _LINE_COMMENT,
            _BLOCK_COMMENT,
            _quoted("string", "[Xx]?'", "'"),
            _DQ_IDENT,
            _BACKTICK_IDENT,
            r"(?P<qident3>\[[^\]]*(?P<qident3_close>\])?)",
            r"(?P<placeholder>\?\d*|[:@$][A-Za-z_]\w*)",
            _NUMBER,
            _WORD,
            _OPERATOR,
            _PUNCT,
            _OTHER,
        )
    ),
    Dialect.POSTGRESQL: "|".join(
        (
            _PG_WS,
            _PG_LINE_COMMENT,
            _BLOCK_COMMENT,
            _PG_DOLLAR,
            _quoted("estring", "[Ee]'", "'", backslash=True),
            _quoted("string", "(?:[BbXxNn]|[Uu]&)?'", "'"),
            _quoted("qident", '(?:[Uu]&)?"', '"'),
            r"(?P<placeholder>\$\d+|%\([^)\s]{1,64}\)s|%s|%b|%t)",
            _NUMBER,
            _PG_WORD,
            _OPERATOR,
            _PUNCT,
            _OTHER,
        )
    ),
    Dialect.MYSQL: "|".join(
        (
            _WS,
            _MYSQL_LINE_COMMENT,
            _BLOCK_COMMENT,
            _quoted("string", "(?:_[A-Za-z0-9]+|[NnXxBb])?'", "'", backslash=True),
            _quoted("dqstring", '"', '"', backslash=True),
            _BACKTICK_IDENT,
            r"(?P<placeholder>\?|%\([^)\s]{1,64}\)s|%s)",
            _NUMBER,
            r"(?P<word>[^\W\d][\w$]*|@@?[\w$.]+)",
            _OPERATOR,
            _PUNCT,
            _OTHER,
        )
    ),
}

_GROUP_KINDS: dict[str, TokenKind] = {
    "ws": TokenKind.WHITESPACE,
    "line_comment": TokenKind.COMMENT,
    "block_comment": TokenKind.COMMENT,
    "string": TokenKind.STRING,
    "estring": TokenKind.STRING,
    "dqstring": TokenKind.STRING,
    "dollar": TokenKind.STRING,
    "qident": TokenKind.QUOTED_IDENTIFIER,
    "qident2": TokenKind.QUOTED_IDENTIFIER,
    "qident3": TokenKind.QUOTED_IDENTIFIER,
    "number": TokenKind.NUMBER,
    "word": TokenKind.WORD,
    "placeholder": TokenKind.PLACEHOLDER,
    "operator": TokenKind.OPERATOR,
    "punct": TokenKind.PUNCTUATION,
    "other": TokenKind.OTHER,
}
# Groups whose token may run unclosed to the end of input, and the group that closes them.
_CLOSERS = {
    "block_comment": "block_comment_close",
    "string": "string_close",
    "estring": "estring_close",
    "dqstring": "dqstring_close",
    "dollar": "dollar_close",
    "qident": "qident_close",
    "qident2": "qident2_close",
    "qident3": "qident3_close",
}

_COMPILED = {d: re.compile(p, re.DOTALL) for d, p in _PATTERNS.items()}
# Dialects where a block comment may run past its first "*/".
_LONG_COMMENTS = frozenset((Dialect.POSTGRESQL, Dialect.MYSQL))
_NESTED_COMMENT = re.compile(r"/\*|\*/")


def tokenize(sql: str, dialect: Dialect | str = Dialect.GENERIC) -> list[Token]:
    """Split ``sql`` into tokens; ``"".join(sql[t.start:t.end] for t in tokens) == sql``."""
    dialect = Dialect.parse(dialect)
    pattern = _COMPILED[dialect]
    kinds = _GROUP_KINDS
    closers = _CLOSERS
    tokens: list[Token] = []
    append = tokens.append
    pos = 0
    end_of_input = len(sql)
    while pos < end_of_input:
        for m in pattern.finditer(sql, pos):
            group = m.lastgroup
            assert group is not None
            start, end = m.span()
            closer = closers.get(group)
            if closer is None:
                append(Token(kinds[group], start, end))
                continue
            closed = m.group(closer) is not None
            if closed and group == "block_comment" and dialect in _LONG_COMMENTS:
                # The regex only knows the first "*/"; see block_comment_end.
                nested_end = block_comment_end(sql, start, end, dialect)
                if nested_end != end:
                    closed = nested_end > 0
                    pos = nested_end if closed else end_of_input
                    append(Token(TokenKind.COMMENT, start, pos, closed))
                    break
            append(Token(kinds[group], start, end, closed))
        else:
            break
    return tokens


def block_comment_end(sql: str, start: int, end: int, dialect: Dialect) -> int:
    """The end of the block comment at ``start`` whose first "*/" ends at ``end``.

    PostgreSQL comments nest. A MySQL executable comment (``/*! ... */``, MariaDB's
    ``/*M! ... */``) holds SQL that the server lexes, so a "*/" inside a string, a quoted
    identifier or an inner comment does not end it (the agent keeps the whole executable
    comment as one comment token). -1 when the comment never closes.
    """
    if dialect is Dialect.POSTGRESQL:
        return _postgres_comment_end(sql, start)
    if dialect is Dialect.MYSQL and sql.startswith(("/*!", "/*M!"), start):
        return _mysql_executable_comment_end(sql, start)
    return end


def _mysql_executable_comment_end(sql: str, start: int) -> int:
    # MariaDB ends the comment at a "*" that starts a token and is followed by "/"; no
    # MySQL operator token holds a "*", so the body's tokens tell exactly where that is.
    body = start + (4 if sql.startswith("/*M!", start) else 3)
    for m in _COMPILED[Dialect.MYSQL].finditer(sql, body):
        group = m.lastgroup
        assert group is not None
        closer = _CLOSERS.get(group)
        if closer is not None and m.group(closer) is None:
            return -1
        if group == "operator" and sql[m.start()] == "*" and sql.startswith("/", m.end()):
            return m.end() + 1
    return -1


def _postgres_comment_end(sql: str, start: int) -> int:
    """End of a PostgreSQL block comment, which nests; -1 when it never closes."""
    depth = 0
    for m in _NESTED_COMMENT.finditer(sql, start):
        if m.group() == "/*":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return m.end()
    return -1
