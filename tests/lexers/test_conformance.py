"""Conformance of the SQL lexers with the real servers.

Each statement of a per-dialect corpus is a ``SELECT`` of literals, quoted aliases, comments
and quoting traps. The test reads the agent's lexer view (``tokenize``) of the statement and
derives from it, with no server knowledge, the result the server must give: the number of
columns, each column's value (the literal decoded by its dialect's escaping rules), the
aliases, or a syntax error when the lexer says a literal or comment never closes. Then it
asks the real server. A string, quoted identifier or comment boundary the lexer puts in the
wrong place changes the predicted columns or values, so every boundary is checked by the
server. The fast pass the detector uses (``sql_regions.scan``) must report exactly the same
literal and comment spans as the full lexer.

MariaDB executable comments (``/*! ... */``, ``/*M! ... */``): the server runs their body.
The agent's view is one COMMENT token from ``/*!`` to the ``*/`` that ends it for the
server, where a ``*/`` inside a string, quoted identifier or inner comment of the body does
not count. Here the body of an executed comment is lexed and spliced into the statement, so
the server checks both where the comment ends and what it runs; a comment whose version
gate skips it is dropped like any other comment. Limit (strict xfail below): a *skipped*
versioned comment is not lexed by the server, so a quote holding ``*/`` there ends it early.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from rasp.lexers.sql import Dialect, TokenKind, tokenize
from rasp.lexers.sql_regions import scan

# (column names, None where the server picks the name; values), or None: a syntax error.
Result = tuple[tuple[str | None, ...], tuple[Any, ...]]
Significant = list[tuple[TokenKind, str, str]]  # (kind, text, whitespace/comments before)

S = TokenKind.STRING
Q = TokenKind.QUOTED_IDENTIFIER
C = TokenKind.COMMENT

# --- the corpus, one list per dialect ------------------------------------------------------

POSTGRESQL = [
    # Standard strings: a quote doubles, a backslash is an ordinary character.
    "SELECT 'plain' AS a",
    "SELECT 'it''s' AS a, 'x' AS b",
    "SELECT '''' AS a, '''''' AS b",
    "SELECT '' AS a, 'z' AS b",
    "SELECT 'a\\' AS a, 'b' AS b",
    "SELECT 'a\\', 'b\\\\' AS b",
    "SELECT 'a\\'' AS a",
    "SELECT 'x\\'\n'y' AS a",
    "SELECT 'a -- not a comment' AS a, 1 AS b",
    "SELECT 'a /* not a comment' AS a, 2 AS b",
    "SELECT 'a */ b' AS a",
    "SELECT '\"q\"' AS a, '$$' AS b",
    "SELECT '$a$' AS a, '$a$' AS b",
    "SELECT 'line\nbreak' AS a",
    "SELECT 'cr\rlf\r\n' AS a",
    "SELECT 'tab\tend' AS a",
    "SELECT 'héllo wörld ✓ 😀' AS a",
    "SELECT '日本語''s' AS a",
    "SELECT 'a'\n'b' AS a",
    "SELECT 'a' -- joined across a line comment\n'b' AS a",
    "SELECT 'a'\r'b' AS a",
    "SELECT 'a'  \n  'b'\n'c' AS a",
    "SELECT 'a' 'b' AS a",
    "SELECT 'a' /* c */\n'b' AS a",
    # E'' strings: backslash escapes.
    "SELECT E'a\\'b' AS a",
    "SELECT e'a\\'b' AS a, 'c' AS b",
    "SELECT E'\\\\' AS a, 'x' AS b",
    "SELECT E'\\\\\\'' AS a",
    "SELECT E'a''b' AS a",
    "SELECT E'\\n\\t\\r\\b\\f' AS a",
    "SELECT E'\\x41\\101\\u00e9\\U0001F600' AS a",
    "SELECT E'\\q\\z' AS a",
    "SELECT E'\\'' AS a, E'\\\\' AS b, E'''' AS c",
    "SELECT E'x\\'; SELECT 1 -- ' AS a",
    "SELECT 1 AS ne, E'x' AS b",
    "SELECT 'E' AS a, E'E' AS b",
    # U&'' strings and identifiers.
    "SELECT U&'d\\0061t\\+000061' AS a",
    "SELECT u&'\\\\x' AS a",
    "SELECT U&'it''s' AS a",
    "SELECT U&'d!0061t' UESCAPE '!' AS a",
    'SELECT 1 AS U&"d\\0061t"',
    'SELECT 1 AS U&"a""b"',
    # B'', X'', N'' prefixes.
    "SELECT B'1010' AS a, X'1F' AS b",
    "SELECT b'0' AS a, x'ff' AS b",
    "SELECT N'national' AS a, n'it''s' AS b",
    "SELECT N'x' AS a, B'' AS b",
    "SELECT xe'y' FROM (SELECT 7 AS xe)",
    # Dollar quotes.
    "SELECT $$dollar$$ AS a",
    "SELECT $$it's$$ AS a, 1 AS b",
    "SELECT $$a\\b$$ AS a",
    "SELECT $$$$ AS a, 'x' AS b",
    "SELECT $tag$ a $$ b $tag$ AS a",
    "SELECT $a$ $b$ x $b$ $a$ AS a",
    "SELECT $a$x$a$ AS a, $b$y$b$ AS b",
    "SELECT $fn_1$ body $fn_1$ AS a",
    "SELECT $é$ x $é$ AS a",
    "SELECT $😀$ x $😀$ AS a",
    "SELECT $A$ x $a$ y $A$ AS a",
    "SELECT $q$ -- no comment\n/* none */ $q$ AS a",
    "SELECT $q$'$q$ AS a, '$q$' AS b",
    "SELECT $$a$$, $$b$$",
    "SELECT $$x$$ AS a$b",
    "SELECT 1 AS a$b, $$x$$ AS c",
    "SELECT 1 AS a$b$, 2 AS c",
    "SELECT 1 AS a1$b$, 2 AS c",
    "SELECT 1 AS x$$, 2 AS y",
    "SELECT 1 AS é$a$, 2 AS c",
    "SELECT 1 AS €$a$, 2 AS c",
    "SELECT 1 AS 😀$a$, 2 AS c",
    "SELECT 1 AS a\u00a0$b$, 2 AS c",
    'SELECT 1 AS "q", $a$x$a$ AS b',
    "SELECT 'x' AS a, $z$ ' $z$ AS b",
    # Quoted identifiers.
    'SELECT 1 AS "a""b"',
    'SELECT 1 AS "it\'s", 2 AS "-- x"',
    'SELECT 1 AS "/* c */", 2 AS "$$"',
    'SELECT 1 AS "MiXeD", 2 AS MiXeD',
    'SELECT 1 AS "a\\b", 2 AS "日本"',
    'SELECT 1 AS "new\nline"',
    # Line comments: any character may follow "--"; they end at LF or CR.
    "SELECT 1 AS a -- comment\n, 2 AS b",
    "SELECT 1 AS a --comment\n, 2 AS b",
    "SELECT 1 AS a --, 2 AS b",
    "SELECT 1 AS a -- x\r, 2 AS b",
    "SELECT 1 AS a -- x\r\n, 2 AS b",
    "SELECT 1--1",
    "SELECT 1 AS a -- it's\n, 'b' AS b",
    "SELECT 1 AS a -- /* x\n, 2 AS b",
    "SELECT 1 AS a # 2",
    "SELECT 1 AS a -- \x0b, 2 AS b",
    "SELECT 1 AS a -- \x0c, 2 AS b",
    # Block comments nest.
    "SELECT 1 AS a /* c */, 2 AS b",
    "SELECT 1 AS a /* a /* b */ c */, 2 AS b",
    "SELECT 1 AS a /*/* */*/, 2 AS b",
    "SELECT 1 AS a /* it's */, 2 AS b",
    "SELECT 1 AS a /* -- x */, 2 AS b",
    "SELECT 1 AS a /**/, 2 AS b",
    "SELECT 1 AS a /* a **/, 2 AS b",
    "SELECT 1 AS a /* x\n y */, 2 AS b",
    "SELECT 1 AS a /* $$ */, 2 AS b",
    "SELECT 1 AS a /* /* /* x */ */ */, 2 AS b",
    "SELECT 2*/*c*/3",
    "SELECT 1 AS a /*! , 2 */",
    # Unclosed: the server refuses, the lexer runs the literal to the end.
    "SELECT 'abc",
    "SELECT 'it''s",
    "SELECT 'a', 'b",
    "SELECT E'abc\\'",
    "SELECT E'abc\\\\\\'",
    "SELECT U&'abc",
    "SELECT $$abc",
    "SELECT $a$ x $b$",
    "SELECT $a$ x $A$",
    'SELECT 1 AS "abc',
    'SELECT 1 AS U&"abc',
    "SELECT 1 /* abc",
    "SELECT 1 /* a /* b */ c",
    "SELECT 1 /* a */ /*",
    "SELECT 'x' AS a, B'0101",
    'SELECT 1 AS "q", $$x',
]

MYSQL = [
    # Strings: a quote doubles, and backslash escapes (the default sql_mode).
    "SELECT 'plain' AS a",
    "SELECT 'it''s' AS a, 'x' AS b",
    "SELECT 'it\\'s' AS a, 'x' AS b",
    "SELECT '''' AS a, '\\'' AS b",
    "SELECT '' AS a, 'z' AS b",
    "SELECT 'a\\\\' AS a, 'b' AS b",
    "SELECT 'a\\\\\\'' AS a",
    "SELECT 'a\\' AS a, ' AS b",
    "SELECT '\\0\\b\\n\\r\\t\\Z' AS a",
    "SELECT '\\%\\_\\q' AS a",
    "SELECT 'é\\é' AS a",
    "SELECT 'a\\\"b' AS a",
    "SELECT 'a\"b' AS a, 'a\"\"b' AS b",
    "SELECT 'a -- not a comment' AS a, 1 AS b",
    "SELECT 'a # not a comment' AS a, 1 AS b",
    "SELECT 'a /* not a comment' AS a, 2 AS b",
    "SELECT 'a */ b' AS a",
    "SELECT '`' AS a, '$$' AS b",
    "SELECT 'line\nbreak' AS a",
    "SELECT 'cr\r\nlf' AS a",
    "SELECT 'héllo wörld ✓ 😀' AS a",
    "SELECT 'nul\x00byte' AS a",
    "SELECT 'a' 'b' AS a",
    "SELECT 'a'\n'b' \"c\" AS a",
    "SELECT 'a\\' 'b' AS a",
    "SELECT 'a' /* c */ 'b' AS a",
    # Double-quoted strings (no ANSI_QUOTES).
    'SELECT "dq" AS a',
    'SELECT "it\'s" AS a, "x" AS b',
    'SELECT "a""b" AS a',
    'SELECT "a\\"b" AS a',
    'SELECT "a\\\\" AS a, "b" AS b',
    'SELECT "a\\" AS a, " AS b',
    'SELECT "-- x" AS a, "# y" AS b',
    'SELECT "" AS a',
    # Prefixes and introducers.
    "SELECT N'national' AS a, n'it''s' AS b",
    "SELECT X'41' AS a, x'4243' AS b",
    "SELECT B'01000001' AS a, b'1' AS b",
    "SELECT _utf8mb4'intro' AS a, _binary'bin' AS b",
    "SELECT _latin1'lat' AS a",
    "SELECT _utf8mb4'x''y' AS a, 'z' AS b",
    "SELECT N'a\\'b' AS a",
    "SELECT X'' AS a",
    # Backticks.
    "SELECT 1 AS `a``b`",
    'SELECT 1 AS `it\'s`, 2 AS `"x"`',
    "SELECT 1 AS `-- x`, 2 AS `# y`",
    "SELECT 1 AS `a\\`, 2 AS b",
    "SELECT 1 AS `/* c */`",
    "SELECT 1 AS `日本`",
    # Aliases spelled as strings.
    "SELECT 1 AS 'al''ias', 2 AS \"d\"\"q\"",
    "SELECT 1 'bare', 2 \"bare2\"",
    # "--" needs whitespace or a control character after it.
    "SELECT 1 AS a -- comment\n, 2 AS b",
    "SELECT 1 AS a --\tcomment\n, 2 AS b",
    "SELECT 1 AS a --\n, 2 AS b",
    "SELECT 1 AS a --\r\n, 2 AS b",
    "SELECT 1 AS a --\x7f, 2 AS b",
    "SELECT 1 AS a --\x01, 2 AS b",
    "SELECT 1 AS a --\x0b, 2 AS b",
    "SELECT 1 AS a --",
    "SELECT 1--1",
    "SELECT 1 --1",
    "SELECT 1 --x",
    "SELECT 1 AS a --\u00a0, 2 AS b",
    "SELECT 1 AS a -- x\r, 2 AS b",
    "SELECT 1 AS a -- it's\n, 'b' AS b",
    "SELECT 1 AS a -- x\x00\n, 2 AS b",
    # "#" comments.
    "SELECT 1 AS a # comment\n, 2 AS b",
    "SELECT 1 AS a #, 2 AS b",
    "SELECT 1 AS a #\n, 2 AS b",
    "SELECT 1 AS a # it's /* \n, 2 AS b",
    "SELECT 1 AS a#x\n,2 AS b",
    "SELECT 1 AS a # x\r, 2 AS b",
    "SELECT 1 AS a # x\x00\n, 2 AS b",
    # Block comments do not nest.
    "SELECT 1 AS a /* c */, 2 AS b",
    "SELECT 1 AS a /* it's */, 2 AS b",
    "SELECT 1 AS a /* -- x */, 2 AS b",
    "SELECT 1 AS a /**/, 2 AS b",
    "SELECT 1 AS a /* a **/, 2 AS b",
    "SELECT 1 AS a /* x\n y */, 2 AS b",
    "SELECT 1 AS a /* a /* b */, 2 AS b",
    "SELECT 1 AS a /* a /* b */ c */, 2 AS b",
    "SELECT 1 AS a /*+ hint */, 2 AS b",
    "SELECT 1 AS a /* nul \x00 */, 2 AS b",
    "SELECT 2*/*c*/3",
    # Executable comments.
    "SELECT 1 AS a /*! , 2 AS b */",
    "SELECT 1 AS a /*!, 2*/*3",
    "SELECT 1 AS a /*!50000 , 2 AS b */, 3 AS c",
    "SELECT 1 AS a /*!99999 , 2 AS b */, 3 AS c",
    "SELECT 1 AS a /*!1234567 , 2 AS b */, 3 AS c",
    "SELECT 1 AS a /*M! , 2 AS b */, 3 AS c",
    "SELECT 1 AS a /*M!100100 , 2 AS b */, 3 AS c",
    "SELECT 1 AS a /*M!999999 , 2 AS b */, 3 AS c",
    "SELECT 1 AS a /*m! , 2 AS b */, 3 AS c",
    "SELECT 1 AS a /*! , '*/' AS b */, 3 AS c",
    'SELECT 1 AS a /*! , "*/" AS b */, 3 AS c',
    "SELECT 1 AS a /*! , 2 AS `*/` */, 3 AS c",
    "SELECT 1 AS a /*! , 2 AS b /* x */ , 3 AS c */, 4 AS d",
    "SELECT 1 AS a /*! , 2 AS b # */\n */, 3 AS c",
    "SELECT 1 AS a /*! , 2 AS b -- */\n */, 3 AS c",
    "SELECT 1 AS a /*! , 'it''s' AS b */",
    "SELECT 1 AS a /*! , 2 AS b *//*! , 3 AS c */",
    "SELECT 1 AS a /*!99999 /* a */ b */, 3 AS c",
    "SELECT 1 AS a /*! , 2",
    "SELECT 1 AS a /*! , '*/",
    # Unclosed: the server refuses, the lexer runs the literal to the end.
    "SELECT 'abc",
    "SELECT 'it''s",
    "SELECT 'abc\\'",
    "SELECT 'abc\\",
    "SELECT 'a', 'b",
    'SELECT "abc',
    'SELECT "abc\\"',
    "SELECT 1 AS `abc",
    "SELECT 1 /* abc",
    "SELECT N'abc",
    "SELECT _utf8mb4'abc",
    "SELECT 'x' AS a /* 'y' AS b",
]

SQLITE = [
    # Strings: a quote doubles; backslash is an ordinary character.
    "SELECT 'plain' AS a",
    "SELECT 'it''s' AS a, 'x' AS b",
    "SELECT '''' AS a, '''''' AS b",
    "SELECT '' AS a, 'z' AS b",
    "SELECT 'a\\' AS a, 'b' AS b",
    "SELECT 'a\\'' AS a",
    "SELECT 'a\\\\' AS a",
    "SELECT 'a -- not a comment' AS a, 1 AS b",
    "SELECT 'a /* not a comment' AS a, 2 AS b",
    "SELECT 'a */ b' AS a",
    "SELECT '\"q\"' AS a, '[b]' AS b",
    "SELECT '`' AS a, '$$' AS b",
    "SELECT 'line\nbreak' AS a",
    "SELECT 'cr\r\nlf' AS a",
    "SELECT 'héllo wörld ✓ 😀' AS a",
    "SELECT '日本語''s' AS a",
    "SELECT 'a#b' AS a",
    # Blobs; N'' and B'' are no prefixes in SQLite.
    "SELECT X'41' AS a, x'4243' AS b",
    "SELECT X'' AS a",
    "SELECT X'4' AS a",
    "SELECT X'zz' AS a",
    "SELECT B'01' AS a",
    "SELECT B'01' FROM (SELECT 7 AS b)",
    "SELECT N'x' FROM (SELECT 7 AS n)",
    "SELECT b'x', b FROM (SELECT 7 AS b)",
    "SELECT N'x' AS a",
    "SELECT 1 AS b'x'",
    # A string after a value is its alias.
    "SELECT 'a' 'b'",
    "SELECT 'a' AS 'b''c'",
    "SELECT 1 'x', 2 'y'",
    # Quoted identifiers: double quotes, backticks, brackets.
    'SELECT 1 AS "a""b"',
    'SELECT 1 AS "it\'s", 2 AS "-- x"',
    'SELECT 1 AS "/* c */", 2 AS "[x]"',
    'SELECT 1 AS "a\\b", 2 AS "日本"',
    'SELECT 1 AS "new\nline"',
    "SELECT 1 AS `a``b`",
    'SELECT 1 AS `it\'s`, 2 AS `"x"`',
    "SELECT 1 AS `-- x`, 2 AS `/* y`",
    "SELECT 1 AS [a b]",
    'SELECT 1 AS [it\'s], 2 AS ["x"]',
    "SELECT 1 AS [a``b], 2 AS [-- c]",
    "SELECT 1 AS [/* c], 2 AS [a[b]",
    "SELECT 1 AS [a]]",
    "SELECT 1 AS [x\ny]",
    "SELECT 1 AS a$b, 2 AS c",
    # Line comments: no whitespace needed; they end at LF only.
    "SELECT 1 AS a -- comment\n, 2 AS b",
    "SELECT 1 AS a --comment\n, 2 AS b",
    "SELECT 1 AS a --, 2 AS b",
    "SELECT 1 AS a -- x\r, 2 AS b",
    "SELECT 1 AS a -- x\r\n, 2 AS b",
    "SELECT 1--1",
    "SELECT 1 AS a -- it's\n, 'b' AS b",
    "SELECT 1 AS a -- /* x\n, 2 AS b",
    "SELECT 1 AS a --",
    "SELECT 1 AS a -- [x\n, 2 AS b",
    # Block comments do not nest; an unclosed one runs to the end without an error.
    "SELECT 1 AS a /* c */, 2 AS b",
    "SELECT 1 AS a /* it's */, 2 AS b",
    "SELECT 1 AS a /* -- x */, 2 AS b",
    "SELECT 1 AS a /**/, 2 AS b",
    "SELECT 1 AS a /* a **/, 2 AS b",
    "SELECT 1 AS a /* x\n y */, 2 AS b",
    "SELECT 1 AS a /* a /* b */, 2 AS b",
    "SELECT 1 AS a /* a /* b */ c */, 2 AS b",
    "SELECT 1 AS a /* [x */, 2 AS b",
    "SELECT 1 AS a /*! , 2 */",
    "SELECT 1 AS a /* never closed, 2 AS b",
    "SELECT 1 AS a /* x",
    "SELECT 1 AS a /*/",
    "SELECT 1 AS a /* 'x",
    "SELECT 2*/*c*/3",
    "SELECT 1 AS a # x",
    "SELECT 1 AS a /* */ /* */, 2 AS b",
    "SELECT 1 AS a /* a */ */",
    "SELECT 1 AS a /* x */ -- y\n, 2 AS b",
    "SELECT 1 AS a -- x /* \n, 2 AS b /* y */",
    # Quotes of one kind inside another.
    "SELECT 'a\"b`c[d]' AS \"x'y\"",
    "SELECT '-- x' AS \"/* y\", 2 AS [z]",
    'SELECT 1 AS "a`b", 2 AS `a"b`',
    "SELECT 'a''''b' AS a, '''x''' AS b",
    "SELECT 'one' AS a, 'two' AS b, 'three' AS c, 'four' AS d",
    "SELECT 1 AS [], 2 AS b",
    # Unclosed strings and identifiers: the server refuses.
    "SELECT 'abc",
    "SELECT 'it''s",
    "SELECT 'abc\\'",
    "SELECT 'a', 'b",
    "SELECT X'41",
    'SELECT 1 AS "abc',
    "SELECT 1 AS `abc",
    "SELECT 1 AS [abc",
    "SELECT 1 AS a -- x\n, 'b",
    "SELECT 1 AS [a] /* c */, 'x",
]


# Generated on top of the hand-written statements: each literal placed between two marker
# columns, so a boundary off by one character eats or splits a marker.
def _framed(literals: list[str]) -> list[str]:
    return [f"SELECT 0 AS first, {lit} AS mid, 9 AS last" for lit in literals]


POSTGRESQL += _framed(["'x'", "'x'''", "E'\\''", "E'\\\\'", "$$,$$", "$t$'$t$", "U&'\\0041'",
                       "B'1'", "'a\nb'", "'--'", "'/*'", "N''"])  # fmt: skip
MYSQL += _framed(["'x'", "'x'''", "'\\''", "'\\\\'", '"\\""', "'\"'", "X'00'", "_binary'\\''",
                  "'a\nb'", "'-- '", "'#'", "N''"])  # fmt: skip
SQLITE += _framed(["'x'", "'x'''", "'\\'", "X'00'", "'a\nb'", "'--'", "'/*'", "'['", "''",
                   "'\"'", "'`'", "'*/'"])  # fmt: skip

CORPUS = {"postgresql": POSTGRESQL, "mysql": MYSQL, "sqlite": SQLITE}

# Known disagreements, kept visible: the test must keep failing until they are fixed.
KNOWN = [
    # SQLite reads a "/*" that ends the input as the operators "/" and "*" (its tokenizer
    # needs a character after "/*"); the lexer calls it an unclosed comment. Harmless (the
    # statement is always a syntax error), and tests/lexers/test_sql_lexer.py pins the
    # lexer's view ("sqlite-bare-comment-opener").
    ("sqlite", "SELECT 1 AS a, 2 AS b /*"),
    # A versioned comment that this server skips is not lexed by it (a quote there means
    # nothing); the lexer reads every executable comment as SQL, as an executed one is.
    ("mysql", "SELECT 1 AS a /*!99999 ' */, 2 AS b -- '*/"),
]


# --- servers ---------------------------------------------------------------------------------


class _Server:
    def __init__(self, connection: Any, errors: tuple[type[BaseException], ...]) -> None:
        self.connection = connection
        self.errors = errors

    def run(self, sql: str) -> Result | None:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            names = tuple(d[0] for d in cursor.description)
            rows = cursor.fetchall()
        except self.errors:
            return None
        finally:
            cursor.close()
        assert len(rows) == 1
        return names, tuple(rows[0])


@pytest.fixture(scope="module")
def postgresql(postgres_dsn: str) -> Iterator[_Server]:
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute("SET standard_conforming_strings = on")
        yield _Server(connection, (psycopg.errors.SyntaxError, psycopg.errors.UndefinedColumn))


@pytest.fixture(scope="module")
def mysql(mariadb_params: dict[str, Any]) -> Iterator[_Server]:
    import pymysql

    connection = pymysql.connect(**mariadb_params)
    try:
        yield _Server(connection, (pymysql.err.ProgrammingError, pymysql.err.OperationalError))
    finally:
        connection.close()


@pytest.fixture(scope="module")
def sqlite() -> Iterator[_Server]:
    import sqlite3

    connection = sqlite3.connect(":memory:")
    try:
        yield _Server(connection, (sqlite3.OperationalError,))
    finally:
        connection.close()


@pytest.fixture(scope="module")
def mariadb_version(mysql: _Server) -> int:
    """The server version as MariaDB compares it with ``/*!NNNNN``: 10.11.6 is 101106."""
    result = mysql.run("SELECT VERSION()")
    assert result is not None
    [version] = result[1]
    major, minor, patch = re.match(r"(\d+)\.(\d+)\.(\d+)", version).groups()  # type: ignore[union-attr]
    return int(major) * 10000 + int(minor) * 100 + int(patch)


def _server(request: pytest.FixtureRequest, dialect: str) -> _Server:
    server: _Server = request.getfixturevalue(dialect)
    return server


# --- what the server must answer, from the lexer's tokens alone ------------------------------

_EXECUTABLE = re.compile(r"/\*(M?)!(\d{5}\d?)?")


def _executed_body(comment: str, version: int) -> str | None:
    """The SQL MariaDB runs from an executable comment, or None when it is a comment.

    ``/*!`` and ``/*M!`` run their body; with a 5 or 6 digit version they run it only when
    the server is at least that version, and MariaDB skips MySQL 5.7+ versions (50700 to
    99999) unless the comment is ``/*M!``.
    """
    m = _EXECUTABLE.match(comment)
    if m is None:
        return None
    mariadb, digits = m.groups()
    if digits is not None:
        wanted = int(digits)
        if wanted > version or (50700 <= wanted <= 99999 and not mariadb):
            return None
    return comment[m.end() : -2]


def _significant(sql: str, dialect: str, version: int) -> Significant | None:
    """The tokens that are not whitespace or comments; None when the server must refuse."""
    tokens: Significant = []
    gap = ""
    for token in tokenize(sql, dialect):
        text = sql[token.start : token.end]
        if not token.closed and not (dialect == "sqlite" and token.kind is C):
            return None  # an unclosed literal or comment is a syntax error (SQLite: comment ok)
        if token.kind is TokenKind.WHITESPACE:
            gap += text
        elif token.kind is C:
            body = _executed_body(text, version) if dialect == "mysql" else None
            if body is None:
                gap += text
                continue
            inner = _significant(body, dialect, version)
            if inner is None:
                return None
            tokens += inner
        elif token.kind is TokenKind.OTHER and text == "\x00":
            return None  # MariaDB refuses a NUL outside a literal
        else:
            tokens.append((token.kind, text, gap))
            gap = ""
    return tokens


def predict(sql: str, dialect: str, version: int = 0) -> Result | None:
    """What the server returns for ``sql`` if the lexer is right; None for a syntax error."""
    tokens = _significant(sql, dialect, version)
    if not tokens or tokens[0][1].upper() != "SELECT":
        return None
    words = [text.upper() for _, text, _ in tokens]
    columns: dict[str, int] = {}
    if "FROM" in words:
        # The one source the corpus uses: FROM (SELECT <number> AS <name>), naming a column.
        at = words.index("FROM")
        source = words[at:]
        if len(source) != 7 or source[:3] != ["FROM", "(", "SELECT"] or not source[3].isdigit():
            return None
        if source[4:] != ["AS", source[5], ")"] or tokens[at + 5][0] is not TokenKind.WORD:
            return None
        columns[source[5]] = int(source[3])
        tokens = tokens[:at]
    names: list[str | None] = []
    values: list[Any] = []
    item: Significant = []
    try:
        for token in [*tokens[1:], (TokenKind.PUNCTUATION, ",", "")]:
            if token[:2] != (TokenKind.PUNCTUATION, ","):
                item.append(token)
                continue
            name, value = _item(item, dialect, columns)
            names.append(name)
            values.append(value)
            item = []
    except ValueError:
        return None
    return tuple(names), tuple(values)


_ARITHMETIC = re.compile(r"[0-9]+|[-+*]")
# PostgreSQL joins two string constants separated by whitespace holding a newline.
_PG_CONTINUATION = re.compile(r"[ \t\f]*(?:--[^\n\r]*)?[\n\r][ \t\n\r\f]*")


def _item(item: Significant, dialect: str, columns: dict[str, int]) -> tuple[str | None, Any]:
    """One select item: a value (strings, integer arithmetic or a column of the source),
    then an optional alias."""
    if not item:
        raise ValueError("empty item")
    count = 1
    if item[0][0] is S:
        while count < len(item) and item[count][0] is S and _joins(item, count, dialect):
            count += 1
        parts = [_string(text, dialect) for _, text, _ in item[:count]]
        value = parts[0] if count == 1 else "".join(parts)
        if dialect == "postgresql" and item[0][1][:2].upper() == "U&" and count == 1:
            if [t[1].upper() for t in item[1:2]] == ["UESCAPE"] and len(item) > 2:
                escape = _string(item[2][1], dialect)
                value = _unicode_escapes(_body(item[0][1]).replace("''", "'"), escape)
                count = 3
    elif all(_ARITHMETIC.fullmatch(text) for _, text, _ in item[:1]):
        while count < len(item) and _ARITHMETIC.fullmatch(item[count][1]):
            count += 1
        try:
            value = eval("".join(text for _, text, _ in item[:count]))  # digits, + - * only
        except SyntaxError:
            raise ValueError("not arithmetic") from None
    elif item[0][0] is TokenKind.WORD and item[0][1].upper() in columns:
        value = columns[item[0][1].upper()]
    else:
        raise ValueError("not a literal")
    rest = item[count:]
    if rest and rest[0][0] is TokenKind.WORD and rest[0][1].upper() == "AS":
        rest = rest[1:]
        if not rest:
            raise ValueError("AS without a name")
    if not rest:
        return None, value
    if len(rest) > 1:
        raise ValueError("junk after the alias")
    kind, text, _ = rest[0]
    if kind is TokenKind.WORD:
        return (text.lower() if dialect == "postgresql" else text), value
    if kind is Q:
        return _identifier(text, dialect), value
    if kind is S and dialect != "postgresql" and text[0] in "'\"":
        return _string(text, dialect), value
    raise ValueError("not an alias")


def _joins(item: Significant, index: int, dialect: str) -> bool:
    if dialect == "mysql":  # adjacent plain strings concatenate
        return item[index][1][0] in "'\"" and item[index - 1][1][0] in "'\""
    if dialect == "postgresql":
        gap = item[index][2]
        return _PG_CONTINUATION.fullmatch(gap) is not None or _raise("not continued")
    return False  # SQLite: the second string is the alias


def _raise(message: str) -> bool:
    raise ValueError(message)


def _body(text: str) -> str:
    return text[text.index("'") + 1 : -1]


def _string(text: str, dialect: str) -> Any:
    """The value of a string literal token, by the dialect's rules (never the lexer's)."""
    if dialect == "postgresql":
        if text.startswith("$"):
            tag = text[: text.index("$", 1) + 1]
            return text[len(tag) : -len(tag)]
        prefix = text[: text.index("'")].upper()
        body = _body(text)
        if prefix in ("", "N"):
            return body.replace("''", "'")
        if prefix == "E":
            return _pg_escapes(body)
        if prefix == "U&":
            return _unicode_escapes(body.replace("''", "'"), "\\")
        if prefix == "B" and set(body) <= {"0", "1"}:
            return body
        if prefix == "X":
            return "".join(f"{int(digit, 16):04b}" for digit in body)
        raise ValueError(f"no such PostgreSQL literal: {text!r}")
    if dialect == "mysql":
        quote = "'" if text[-1] == "'" else '"'
        prefix = text[: text.index(quote)].upper()
        body = text[len(prefix) + 1 : -1]
        if prefix == "X":
            return bytes.fromhex(body)
        if prefix == "B":
            return int(body, 2).to_bytes((len(body) + 7) // 8, "big") if body else b""
        if prefix not in ("", "N", "_UTF8MB4", "_LATIN1", "_BINARY"):
            raise ValueError(f"no such MariaDB literal: {text!r}")
        value = _mysql_escapes(body, quote)
        return value.encode() if prefix == "_BINARY" else value
    prefix = text[: text.index("'")].upper()
    if prefix == "X":
        return bytes.fromhex(_body(text))
    if prefix:
        raise ValueError(f"no such SQLite literal: {text!r}")
    return _body(text).replace("''", "'")


_PG_ESCAPE = re.compile(
    r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))|''",
    re.DOTALL,
)
_PG_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _pg_escapes(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group() == "''":
            return "'"
        octal, hex_, u4, u8, other = m.groups()
        if other is not None:
            return _PG_SIMPLE.get(other, other)
        return chr(int(octal, 8) if octal else int(hex_ or u4 or u8, 16))

    return _PG_ESCAPE.sub(one, body)


def _unicode_escapes(body: str, escape: str) -> str:
    e = re.escape(escape)
    pattern = re.compile(rf"{e}(?:({e})|\+([0-9A-Fa-f]{{6}})|([0-9A-Fa-f]{{4}}))")
    return pattern.sub(lambda m: m.group(1) or chr(int(m.group(2) or m.group(3), 16)), body)


_MYSQL_ESCAPES = {"0": "\x00", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a",
                  "%": "\\%", "_": "\\_"}  # fmt: skip


def _mysql_escapes(body: str, quote: str) -> str:
    pattern = re.compile(rf"\\(.)|{quote}{quote}", re.DOTALL)
    return pattern.sub(lambda m: _MYSQL_ESCAPES.get(m.group(1), m.group(1)) if m.group(1)
                       else quote, body)  # fmt: skip


def _identifier(text: str, dialect: str) -> str:
    if text.startswith("["):
        return text[1:-1]
    if text[:2].upper() == "U&":
        return _unicode_escapes(text[3:-1].replace('""', '"'), "\\")
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def _same(actual: Result | None, expected: Result | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    names, values = actual
    want_names, want_values = expected
    return values == want_values and all(
        want is None or want == name for want, name in zip(want_names, names, strict=True)
    )


# --- the tests -------------------------------------------------------------------------------


def _corpus() -> Iterator[Any]:
    for dialect, statements in CORPUS.items():
        for number, sql in enumerate(statements):
            yield pytest.param(dialect, sql, id=f"{dialect}-{number}")


def _known(*marks: Any) -> list[Any]:
    return [
        pytest.param(d, sql, id=f"{d}-known-{n}", marks=marks) for n, (d, sql) in enumerate(KNOWN)
    ]


def test_the_corpus_has_a_hundred_statements_per_dialect() -> None:
    for statements in CORPUS.values():
        assert len(set(statements)) == len(statements) >= 100


@pytest.mark.parametrize("dialect", list(CORPUS))
def test_server_answers_as_the_lexer_predicts(request: pytest.FixtureRequest, dialect: str) -> None:
    server = _server(request, dialect)
    version = request.getfixturevalue("mariadb_version") if dialect == "mysql" else 0
    wrong = []
    for sql in CORPUS[dialect]:
        expected = predict(sql, dialect, version)
        actual = server.run(sql)
        if not _same(actual, expected):
            view = [(t.kind.name, sql[t.start : t.end], t.closed) for t in tokenize(sql, dialect)
                    if t.kind in (S, Q, C)]  # fmt: skip
            wrong.append(f"{sql!r}\n  server: {actual}\n  lexer predicts: {expected}\n"
                         f"  lexer view: {view}")  # fmt: skip
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("dialect", "sql"), _known(pytest.mark.xfail(strict=True, reason="see KNOWN"))
)
def test_known_disagreements(request: pytest.FixtureRequest, dialect: str, sql: str) -> None:
    version = request.getfixturevalue("mariadb_version") if dialect == "mysql" else 0
    assert _same(_server(request, dialect).run(sql), predict(sql, dialect, version))


def _closer(text: str, dialect: str) -> str:
    """What closes the unclosed token ``text`` (in an executable comment: its body first)."""
    executable = _EXECUTABLE.match(text) if dialect == "mysql" else None
    if executable is not None:
        body = text[executable.end() :]
        last = tokenize(body, dialect)[-1] if body else None
        inner = "" if last is None or last.closed else _closer(body[last.start :], dialect)
        return inner + "*/"
    if text.startswith("/*"):
        return "*/"
    if text.startswith("$"):
        return text[: text.index("$", 1) + 1]
    quote = re.search(r"['\"`\[]", text).group()  # type: ignore[union-attr]
    return "]" if quote == "[" else quote


@pytest.mark.parametrize("dialect", list(CORPUS))
def test_an_unclosed_literal_runs_to_the_end(request: pytest.FixtureRequest, dialect: str) -> None:
    """The lexer's unclosed token runs to the end; the server refuses the statement, and
    closing the token right there makes the server take everything after the opening quote
    as the literal's content."""
    server = _server(request, dialect)
    version = request.getfixturevalue("mariadb_version") if dialect == "mysql" else 0
    checked = 0
    for sql in CORPUS[dialect]:
        last = tokenize(sql, dialect)[-1]
        if last.closed or (dialect == "sqlite" and last.kind is C):
            continue
        assert last.end == len(sql)
        assert server.run(sql) is None, sql
        closed = sql
        for _ in range(2):  # a trailing escape eats the first closing quote
            closed += _closer(sql[last.start :], dialect)
            token = tokenize(closed, dialect)[-1]
            if token.closed:
                break
        assert (token.start, token.end, token.closed) == (last.start, len(closed), True), sql
        expected = predict(closed, dialect, version)
        assert _same(server.run(closed), expected), closed
        checked += expected is not None
    assert checked >= 9


def _lexer_spans(sql: str, dialect: str) -> list[tuple[int, int, TokenKind, bool]]:
    spans = []
    for token in tokenize(sql, dialect):
        if token.kind not in (S, Q, C):
            continue
        start = token.start
        text = sql[start : token.end]
        # The fast pass leaves letter prefixes (N'', X'', B'', _charset'') to the code
        # around; it keeps PostgreSQL's E'' and U&'', which change how the body is read.
        if token.kind is S and not (
            text[0] in "'\"$" or (dialect == "postgresql" and text[0] in "EeUu")
        ):
            start += text.index("'")
        spans.append((start, token.end, token.kind, token.closed))
    return spans


@pytest.mark.parametrize(("dialect", "sql"), [*_corpus(), *_known()])
def test_fast_pass_matches_the_full_lexer(dialect: str, sql: str) -> None:
    regions = scan(sql, Dialect(dialect))
    assert list(zip(*regions, strict=True)) == _lexer_spans(sql, dialect)
