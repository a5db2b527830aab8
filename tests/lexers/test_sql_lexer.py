"""Unit tests for the SQL lexers: the tricky spellings of each dialect, one token at a time."""

from __future__ import annotations

import pytest

from rasp.lexers.sql import Dialect, Token, TokenKind, tokenize

C = TokenKind.COMMENT
S = TokenKind.STRING
Q = TokenKind.QUOTED_IDENTIFIER
N = TokenKind.NUMBER
W = TokenKind.WORD
P = TokenKind.PLACEHOLDER
OP = TokenKind.OPERATOR
U = TokenKind.PUNCTUATION
X = TokenKind.OTHER


def lex(sql: str, dialect: str) -> list[tuple[TokenKind, str]]:
    """The tokens of ``sql`` as (kind, text), whitespace left out."""
    tokens = tokenize(sql, dialect)
    assert "".join(sql[t.start : t.end] for t in tokens) == sql
    return [(t.kind, sql[t.start : t.end]) for t in tokens if t.kind is not TokenKind.WHITESPACE]


def single(sql: str, dialect: str) -> Token:
    """``sql`` must lex as exactly one token; return it."""
    [token] = tokenize(sql, dialect)
    assert (token.start, token.end) == (0, len(sql))
    return token


ALL_DIALECTS = ["generic", "sqlite", "postgresql", "mysql"]


# (sql, dialect, kind, closed): the whole text is one token of that kind.
ONE_TOKEN = [
    # Strings whose quote doubles to escape itself, in every dialect.
    *[pytest.param("'it''s'", d, S, True, id=f"{d}-doubled-quote") for d in ALL_DIALECTS],
    *[pytest.param("'abc", d, S, False, id=f"{d}-unclosed-string") for d in ALL_DIALECTS],
    *[pytest.param("''''", d, S, True, id=f"{d}-string-of-one-quote") for d in ALL_DIALECTS],
    *[pytest.param("'a -- b /* c'", d, S, True, id=f"{d}-comment-marks-in-string")
      for d in ALL_DIALECTS],
    *[pytest.param("-- c ' \" /*", d, C, True, id=f"{d}-line-comment") for d in ALL_DIALECTS],
    *[pytest.param("/* it's */", d, C, True, id=f"{d}-block-comment") for d in ALL_DIALECTS],
    *[pytest.param("/**/", d, C, True, id=f"{d}-empty-block-comment") for d in ALL_DIALECTS],
    *[pytest.param("/* a **/", d, C, True, id=f"{d}-block-comment-stars") for d in ALL_DIALECTS],
    *[pytest.param("/* abc", d, C, False, id=f"{d}-unclosed-block-comment")
      for d in ALL_DIALECTS],
    *[pytest.param("/*", d, C, False, id=f"{d}-bare-comment-opener") for d in ALL_DIALECTS],
    *[pytest.param("/*/", d, C, False, id=f"{d}-slash-star-slash-is-open")
      for d in ALL_DIALECTS],
    *[pytest.param("`a``b`", d, Q, True, id=f"{d}-backtick-identifier")
      for d in ("generic", "sqlite", "mysql")],
    *[pytest.param('"a""b"', d, Q, True, id=f"{d}-double-quoted-identifier")
      for d in ("generic", "sqlite", "postgresql")],
    *[pytest.param('"abc', d, Q, False, id=f"{d}-unclosed-identifier")
      for d in ("generic", "sqlite", "postgresql")],
    *[pytest.param(n, d, N, True, id=f"{d}-number-{n}") for d in ALL_DIALECTS
      for n in ("42", "3.14", "1e5", ".5", "2.5e-3", "1E+5", "0x1F")],
    # Generic.
    pytest.param("N'x'", "generic", S, True, id="generic-national-string"),
    pytest.param("X'4142'", "generic", S, True, id="generic-hex-string"),
    pytest.param("E'x'", "generic", S, True, id="generic-e-string"),
    pytest.param("%(name)s", "generic", P, True, id="generic-pyformat-placeholder"),
    pytest.param(":name", "generic", P, True, id="generic-named-placeholder"),
    pytest.param("?1", "generic", P, True, id="generic-numbered-placeholder"),
    pytest.param("$2", "generic", P, True, id="generic-dollar-placeholder"),
    # SQLite.
    pytest.param("[first name]", "sqlite", Q, True, id="sqlite-bracket-identifier"),
    pytest.param("[it's \"x\"]", "sqlite", Q, True, id="sqlite-bracket-holds-quotes"),
    pytest.param("[abc", "sqlite", Q, False, id="sqlite-unclosed-bracket"),
    pytest.param("'a\\'", "sqlite", S, True, id="sqlite-backslash-is-not-an-escape"),
    pytest.param("x'41'", "sqlite", S, True, id="sqlite-blob-literal"),
    pytest.param("$name", "sqlite", P, True, id="sqlite-dollar-placeholder"),
    pytest.param("@name", "sqlite", P, True, id="sqlite-at-placeholder"),
    pytest.param("?3", "sqlite", P, True, id="sqlite-numbered-placeholder"),
    # PostgreSQL.
    pytest.param("$$it's$$", "postgresql", S, True, id="pg-dollar-quote"),
    pytest.param("$$$$", "postgresql", S, True, id="pg-empty-dollar-quote"),
    pytest.param("$q$ a $$ b $q$", "postgresql", S, True, id="pg-tag-holds-bare-dollars"),
    pytest.param("$a$ $b$ x $b$ $a$", "postgresql", S, True, id="pg-tag-holds-other-tag"),
    pytest.param("$fn_1$ body $fn_1$", "postgresql", S, True, id="pg-tag-with-digits"),
    pytest.param("$é$ x $é$", "postgresql", S, True, id="pg-non-ascii-tag"),
    pytest.param("$$ never closed", "postgresql", S, False, id="pg-unclosed-dollar"),
    pytest.param("$a$ x $b$", "postgresql", S, False, id="pg-wrong-closing-tag"),
    pytest.param("$a$ x $A$", "postgresql", S, False, id="pg-tags-are-case-sensitive"),
    pytest.param("E'a\\'b'", "postgresql", S, True, id="pg-e-string-backslash-quote"),
    pytest.param("e'a\\\\'", "postgresql", S, True, id="pg-e-string-escaped-backslash"),
    pytest.param("E'a''b'", "postgresql", S, True, id="pg-e-string-doubled-quote"),
    pytest.param("E'abc\\'", "postgresql", S, False, id="pg-e-string-trailing-escape"),
    pytest.param("'a\\'", "postgresql", S, True, id="pg-standard-string-backslash-literal"),
    pytest.param("U&'d\\0061t'", "postgresql", S, True, id="pg-unicode-string"),
    pytest.param("B'1010'", "postgresql", S, True, id="pg-bit-string"),
    pytest.param('U&"x"', "postgresql", Q, True, id="pg-unicode-identifier"),
    pytest.param("/* a /* b */ c */", "postgresql", C, True, id="pg-nested-comment"),
    pytest.param("/* a /* b */ c", "postgresql", C, False, id="pg-nested-comment-unclosed"),
    pytest.param("/*/* */*/", "postgresql", C, True, id="pg-tight-nested-comment"),
    pytest.param("foo$bar", "postgresql", W, True, id="pg-dollar-inside-identifier"),
    pytest.param("$1", "postgresql", P, True, id="pg-positional-placeholder"),
    pytest.param("%(id)s", "postgresql", P, True, id="pg-pyformat-placeholder"),
    # MySQL / MariaDB.
    pytest.param("'a\\'b'", "mysql", S, True, id="mysql-backslash-quote"),
    pytest.param("'a\\\\'", "mysql", S, True, id="mysql-escaped-backslash"),
    pytest.param("'\\\\\\''", "mysql", S, True, id="mysql-backslash-run"),
    pytest.param("'abc\\'", "mysql", S, False, id="mysql-trailing-backslash-escapes-quote"),
    pytest.param("'abc\\", "mysql", S, False, id="mysql-unclosed-ends-in-backslash"),
    pytest.param('"a\\"b"', "mysql", S, True, id="mysql-double-quoted-string"),
    pytest.param('"a""b"', "mysql", S, True, id="mysql-double-quoted-doubled"),
    pytest.param('"abc', "mysql", S, False, id="mysql-unclosed-double-quoted"),
    pytest.param("_utf8mb4'x'", "mysql", S, True, id="mysql-charset-introducer"),
    pytest.param("N'x'", "mysql", S, True, id="mysql-national-string"),
    pytest.param("# c ' */", "mysql", C, True, id="mysql-hash-comment"),
    pytest.param("-- ", "mysql", C, True, id="mysql-dash-dash-space"),
    pytest.param("--", "mysql", C, True, id="mysql-dash-dash-at-end"),
    pytest.param("--\tx", "mysql", C, True, id="mysql-dash-dash-tab"),
    pytest.param("/*! UNION SELECT */", "mysql", C, True, id="mysql-executable-comment"),
    pytest.param("/*!50000 SELECT*/", "mysql", C, True, id="mysql-versioned-comment"),
    pytest.param("`it's`", "mysql", Q, True, id="mysql-backtick-holds-quote"),
    pytest.param("`abc", "mysql", Q, False, id="mysql-unclosed-backtick"),
    pytest.param("@@version", "mysql", W, True, id="mysql-system-variable"),
    pytest.param("@total", "mysql", W, True, id="mysql-user-variable"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "dialect", "kind", "closed"), ONE_TOKEN)
def test_one_token(sql: str, dialect: str, kind: TokenKind, closed: bool) -> None:
    token = single(sql, dialect)
    assert token.kind is kind
    assert token.closed is closed


# (sql, dialect, expected tokens without whitespace)
SEQUENCES = [
    pytest.param("a.b", "generic", [(W, "a"), (U, "."), (W, "b")], id="generic-dotted-name"),
    pytest.param("x -- c\ny", "generic", [(W, "x"), (C, "-- c"), (W, "y")],
                 id="generic-line-comment-stops-at-newline"),
    pytest.param("/* a /* b */ c */", "generic",
                 [(C, "/* a /* b */"), (W, "c"), (OP, "*"), (OP, "/")],
                 id="generic-block-comments-do-not-nest"),
    pytest.param("a # b", "generic", [(W, "a"), (OP, "#"), (W, "b")],
                 id="generic-hash-is-not-a-comment"),
    pytest.param("a<>b!=c||d", "generic",
                 [(W, "a"), (OP, "<>"), (W, "b"), (OP, "!="), (W, "c"), (OP, "||"), (W, "d")],
                 id="generic-two-char-operators"),
    pytest.param("x::text", "generic", [(W, "x"), (OP, "::"), (W, "text")],
                 id="generic-cast-is-not-a-placeholder"),
    pytest.param("'a''b''c'", "generic", [(S, "'a''b''c'")], id="generic-many-doubled"),
    pytest.param("'a' 'b'", "generic", [(S, "'a'"), (S, "'b'")], id="generic-two-strings"),
    pytest.param("'a\\' OR 1", "generic", [(S, "'a\\'"), (W, "OR"), (N, "1")],
                 id="generic-backslash-is-not-an-escape"),
    pytest.param("[a]]", "sqlite", [(Q, "[a]"), (U, "]")], id="sqlite-bracket-has-no-escape"),
    pytest.param("a[1]", "generic", [(W, "a"), (U, "["), (N, "1"), (U, "]")],
                 id="generic-brackets-are-punctuation"),
    pytest.param("/* a */ */", "postgresql", [(C, "/* a */"), (OP, "*"), (OP, "/")],
                 id="pg-extra-closer-after-comment"),
    pytest.param("/* a /* b */ c */ d", "postgresql", [(C, "/* a /* b */ c */"), (W, "d")],
                 id="pg-nested-comment-then-word"),
    pytest.param("$$a$$$", "postgresql", [(S, "$$a$$"), (X, "$")],
                 id="pg-dollar-then-stray-dollar"),
    pytest.param("$a$x$a$ $b$y", "postgresql", [(S, "$a$x$a$"), (S, "$b$y")],
                 id="pg-closed-then-unclosed-dollar"),
    pytest.param("x$1", "postgresql", [(W, "x$1")], id="pg-dollar-digit-in-word"),
    pytest.param("$1 $$", "postgresql", [(P, "$1"), (S, "$$")], id="pg-placeholder-then-quote"),
    pytest.param("'a\\' OR 1", "postgresql", [(S, "'a\\'"), (W, "OR"), (N, "1")],
                 id="pg-standard-string-ends-at-quote"),
    pytest.param("E'\\'' OR 1", "postgresql", [(S, "E'\\''"), (W, "OR"), (N, "1")],
                 id="pg-e-string-escape-then-close"),
    pytest.param("a # b", "postgresql", [(W, "a"), (OP, "#"), (W, "b")],
                 id="pg-hash-is-an-operator"),
    pytest.param("x::int", "postgresql", [(W, "x"), (OP, "::"), (W, "int")], id="pg-cast"),
    pytest.param("data->>'k'", "postgresql", [(W, "data"), (OP, "->>"), (S, "'k'")],
                 id="pg-json-operator"),
    pytest.param("1--1", "mysql", [(N, "1"), (OP, "-"), (OP, "-"), (N, "1")],
                 id="mysql-dash-dash-needs-whitespace"),
    pytest.param("1 --x", "mysql", [(N, "1"), (OP, "-"), (OP, "-"), (W, "x")],
                 id="mysql-dash-dash-letter-is-minus-minus"),
    pytest.param("1 -- x\n2", "mysql", [(N, "1"), (C, "-- x"), (N, "2")],
                 id="mysql-dash-dash-comment-to-newline"),
    pytest.param("1 # x\n2", "mysql", [(N, "1"), (C, "# x"), (N, "2")],
                 id="mysql-hash-comment-to-newline"),
    pytest.param("1#", "mysql", [(N, "1"), (C, "#")], id="mysql-empty-hash-comment"),
    pytest.param("'a\\' OR 1", "mysql", [(S, "'a\\' OR 1")],
                 id="mysql-backslash-keeps-string-open"),
    pytest.param("'a\\\\' OR 1", "mysql", [(S, "'a\\\\'"), (W, "OR"), (N, "1")],
                 id="mysql-escaped-backslash-then-close"),
    pytest.param('"a" = `b`', "mysql", [(S, '"a"'), (OP, "="), (Q, "`b`")],
                 id="mysql-double-quote-string-vs-backtick"),
    pytest.param("$$x$$", "mysql", [(X, "$"), (X, "$"), (W, "x$$")],
                 id="mysql-no-dollar-quotes"),
    pytest.param("/* a /* b */ c", "mysql", [(C, "/* a /* b */"), (W, "c")],
                 id="mysql-block-comments-do-not-nest"),
    pytest.param("x = ? AND y = %s", "mysql",
                 [(W, "x"), (OP, "="), (P, "?"), (W, "AND"), (W, "y"), (OP, "="), (P, "%s")],
                 id="mysql-placeholders"),
    pytest.param("[a b]", "mysql", [(U, "["), (W, "a"), (W, "b"), (U, "]")],
                 id="mysql-brackets-are-not-identifiers"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "dialect", "expected"), SEQUENCES)
def test_token_sequence(sql: str, dialect: str, expected: list[tuple[TokenKind, str]]) -> None:
    assert lex(sql, dialect) == expected


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_a_whole_statement_rejoins_with_exact_spans(dialect: str) -> None:
    sql = "SELECT id, name FROM users WHERE name = 'O''Brien' AND age >= 18 -- adults\n;"
    tokens = tokenize(sql, dialect)
    assert "".join(sql[t.start : t.end] for t in tokens) == sql
    assert [t.start for t in tokens[1:]] == [t.end for t in tokens[:-1]]
    assert (S, "'O''Brien'") in lex(sql, dialect)
    assert (C, "-- adults") in lex(sql, dialect)
    assert all(t.closed for t in tokens)


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_empty_input_has_no_tokens(dialect: str) -> None:
    assert tokenize("", dialect) == []


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_unclosed_token_runs_to_the_end(dialect: str) -> None:
    sql = "SELECT 1 WHERE a = 'x; DROP TABLE t; --\nmore"
    tokens = tokenize(sql, dialect)
    last = tokens[-1]
    assert last.kind is S and not last.closed
    assert sql[last.start : last.end] == "'x; DROP TABLE t; --\nmore"


@pytest.mark.parametrize(
    ("alias", "dialect"),
    [
        ("sqlite3", Dialect.SQLITE),
        ("postgres", Dialect.POSTGRESQL),
        ("pg", Dialect.POSTGRESQL),
        ("PostgreSQL", Dialect.POSTGRESQL),
        ("mariadb", Dialect.MYSQL),
        ("MySQL", Dialect.MYSQL),
        (Dialect.GENERIC, Dialect.GENERIC),
    ],
)
def test_dialect_aliases(alias: str | Dialect, dialect: Dialect) -> None:
    assert Dialect.parse(alias) is dialect
    sql = "SELECT $$a$$ # b"
    assert tokenize(sql, alias) == tokenize(sql, dialect)


def test_unknown_dialect_is_refused_by_the_lexer() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'oracle'"):
        tokenize("SELECT 1", "oracle")


def test_default_dialect_is_generic() -> None:
    sql = "SELECT 'a' # b"
    assert tokenize(sql) == tokenize(sql, "generic")
