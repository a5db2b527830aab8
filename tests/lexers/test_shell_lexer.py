"""Unit tests for the POSIX shell lexer: the tricky spellings, one token at a time."""

from __future__ import annotations

import pytest

from rasp.lexers.shell import Token, TokenKind, tokenize, words

B = TokenKind.BLANK
NL = TokenKind.NEWLINE
OP = TokenKind.OPERATOR
R = TokenKind.REDIRECTION
C = TokenKind.COMMENT
W = TokenKind.WORD
E = TokenKind.ESCAPE
SQ = TokenKind.SINGLE_QUOTED
AQ = TokenKind.ANSI_C_QUOTED
DO = TokenKind.DOUBLE_QUOTE_OPEN
DT = TokenKind.DOUBLE_QUOTED
DC = TokenKind.DOUBLE_QUOTE_CLOSE
P = TokenKind.PARAMETER
SO = TokenKind.SUBSTITUTION_OPEN
SC = TokenKind.SUBSTITUTION_CLOSE
AO = TokenKind.ARITHMETIC_OPEN
AC = TokenKind.ARITHMETIC_CLOSE
BO = TokenKind.BACKTICK_OPEN
BC = TokenKind.BACKTICK_CLOSE


def lex(text: str) -> list[tuple[TokenKind, str]]:
    tokens = tokenize(text)
    assert "".join(text[t.start : t.end] for t in tokens) == text
    return [(t.kind, text[t.start : t.end]) for t in tokens]


def unclosed(text: str) -> list[tuple[TokenKind, str]]:
    return [(t.kind, text[t.start : t.end]) for t in tokenize(text) if not t.closed]


CASES = [
    pytest.param("ls -l /tmp", [(W, "ls"), (B, " "), (W, "-l"), (B, " "), (W, "/tmp")],
                 id="plain-words"),
    pytest.param("a\t b", [(W, "a"), (B, "\t "), (W, "b")], id="tabs-are-blanks"),
    pytest.param("a\r\nb", [(W, "a\r"), (NL, "\n"), (W, "b")], id="carriage-return-is-text"),
    pytest.param("a;b&c|d", [(W, "a"), (OP, ";"), (W, "b"), (OP, "&"), (W, "c"), (OP, "|"),
                             (W, "d")], id="single-operators"),
    pytest.param("a&&b||c;;d|&e", [(W, "a"), (OP, "&&"), (W, "b"), (OP, "||"), (W, "c"),
                                   (OP, ";;"), (W, "d"), (OP, "|&"), (W, "e")],
                 id="double-operators"),
    pytest.param("(a)", [(OP, "("), (W, "a"), (OP, ")")], id="subshell"),
    pytest.param("a)", [(W, "a"), (OP, ")")], id="stray-closing-paren"),
    pytest.param("cmd 2>&1 >>log <in", [(W, "cmd"), (B, " "), (R, "2>&1"), (B, " "), (R, ">>"),
                                        (W, "log"), (B, " "), (R, "<"), (W, "in")],
                 id="redirections"),
    pytest.param("a<<-EOF", [(W, "a"), (R, "<<-"), (W, "EOF")], id="heredoc-dash"),
    pytest.param("a<<<x", [(W, "a"), (R, "<<<"), (W, "x")], id="here-string"),
    pytest.param("a&>f", [(W, "a"), (R, "&>"), (W, "f")], id="ampersand-redirect"),
    pytest.param("a>|f<>g", [(W, "a"), (R, ">|"), (W, "f"), (R, "<>"), (W, "g")],
                 id="clobber-and-read-write"),
    pytest.param("a 3<&- 1>&2-", [(W, "a"), (B, " "), (R, "3<&-"), (B, " "), (R, "1>&2-")],
                 id="close-and-move-fds"),
    pytest.param("a12>f", [(W, "a12"), (R, ">"), (W, "f")], id="digits-in-word-not-fd"),
    pytest.param("'a b;c'", [(SQ, "'a b;c'")], id="single-quoted"),
    pytest.param("'a\\'", [(SQ, "'a\\'")], id="no-escapes-in-single-quotes"),
    pytest.param("a\"b\"'c'$x", [(W, "a"), (DO, '"'), (DT, "b"), (DC, '"'), (SQ, "'c'"),
                                  (P, "$x")], id="one-word-of-parts"),
    pytest.param('"a $x b"', [(DO, '"'), (DT, "a "), (P, "$x"), (DT, " b"), (DC, '"')],
                 id="variable-in-double-quotes"),
    pytest.param('"\\$x \\" \\\\ \\a"', [(DO, '"'), (E, "\\$"), (DT, "x "), (E, '\\"'),
                                          (DT, " "), (E, "\\\\"), (DT, " \\a"), (DC, '"')],
                 id="acting-and-literal-backslashes-in-double-quotes"),
    pytest.param('"$ $\'x\' 5$"', [(DO, '"'), (DT, "$ $'x' 5$"), (DC, '"')],
                 id="literal-dollars-in-double-quotes"),
    pytest.param('"a $(ls "x y") b"', [(DO, '"'), (DT, "a "), (SO, "$("), (W, "ls"), (B, " "),
                                        (DO, '"'), (DT, "x y"), (DC, '"'), (SC, ")"),
                                        (DT, " b"), (DC, '"')],
                 id="quotes-nest-in-substitution"),
    pytest.param('"a `id` b"', [(DO, '"'), (DT, "a "), (BO, "`"), (W, "id"), (BC, "`"),
                                (DT, " b"), (DC, '"')], id="backticks-in-double-quotes"),
    pytest.param("$(a $(b) c)", [(SO, "$("), (W, "a"), (B, " "), (SO, "$("), (W, "b"),
                                 (SC, ")"), (B, " "), (W, "c"), (SC, ")")],
                 id="nested-substitutions"),
    pytest.param("$( (a) )", [(SO, "$("), (B, " "), (OP, "("), (W, "a"), (OP, ")"), (B, " "),
                              (SC, ")")], id="subshell-in-substitution"),
    pytest.param("$((1+(2)))x", [(AO, "$(("), (W, "1+"), (OP, "("), (W, "2"), (OP, ")"),
                                 (AC, "))"), (W, "x")], id="arithmetic"),
    pytest.param("`a \\` b`", [(BO, "`"), (W, "a"), (B, " "), (E, "\\`"), (B, " "), (W, "b"),
                               (BC, "`")], id="escaped-backtick-inside-backticks"),
    pytest.param("${x:-a b}c", [(P, "${x:-a b}"), (W, "c")], id="braced-parameter"),
    pytest.param("$1$?$@$#$$$!$-$*", [(P, "$1"), (P, "$?"), (P, "$@"), (P, "$#"), (P, "$$"),
                                      (P, "$!"), (P, "$-"), (P, "$*")],
                 id="special-parameters"),
    pytest.param("$12", [(P, "$1"), (W, "2")], id="one-digit-positional"),
    pytest.param("a$ b$", [(W, "a$"), (B, " "), (W, "b$")], id="lone-dollar-is-text"),
    pytest.param("$'a\\'b'c", [(AQ, "$'a\\'b'"), (W, "c")], id="ansi-c-quoted"),
    pytest.param('$"x"', [(DO, '$"'), (DT, "x"), (DC, '"')], id="locale-string"),
    pytest.param("a\\ b\\;c", [(W, "a"), (E, "\\ "), (W, "b"), (E, "\\;"), (W, "c")],
                 id="escapes"),
    pytest.param("a\\\nb", [(W, "a"), (E, "\\\n"), (W, "b")], id="line-continuation"),
    pytest.param("ls # it's $(x)\nid", [(W, "ls"), (B, " "), (C, "# it's $(x)"), (NL, "\n"),
                                         (W, "id")], id="comment"),
    pytest.param("a#b 'c'#d #e", [(W, "a#b"), (B, " "), (SQ, "'c'"), (W, "#d"), (B, " "),
                                  (C, "#e")], id="hash-inside-a-word-is-text"),
    pytest.param("a;#b", [(W, "a"), (OP, ";"), (C, "#b")], id="comment-after-operator"),
    pytest.param("$(#x\n)", [(SO, "$("), (C, "#x"), (NL, "\n"), (SC, ")")],
                 id="comment-in-substitution"),
    pytest.param("`a #b` c", [(BO, "`"), (W, "a"), (B, " "), (C, "#b"), (BC, "`"), (B, " "),
                              (W, "c")], id="comment-ends-at-backtick"),
    pytest.param("a*b?[c] ~/x {a,b}", [(W, "a*b?[c]"), (B, " "), (W, "~/x"), (B, " "),
                                        (W, "{a,b}")], id="globs-tilde-braces-are-text"),
    pytest.param("", [], id="empty"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_tokens(text: str, expected: list[tuple[TokenKind, str]]) -> None:
    assert lex(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'abc", [(SQ, "'abc")]),
        ("$'a\\", [(AQ, "$'a\\")]),
        ("${abc", [(P, "${abc")]),
        ("ab\\", [(E, "\\")]),
        ('"abc', [(DO, '"')]),
        ('"$(a "b', [(DO, '"'), (SO, "$("), (DO, '"')]),
        ("$((1+2)", [(AO, "$((")]),
        ("`ls", [(BO, "`")]),
        ("(a", [(OP, "(")]),
        ("'a' \"b\" $(c) `d` ${e} \\f", []),
    ],
)
def test_unclosed_tokens(text: str, expected: list[tuple[TokenKind, str]]) -> None:
    assert unclosed(text) == expected


def test_an_unclosed_quote_runs_to_the_end() -> None:
    text = "echo 'it; rm -rf / # x"
    tokens = tokenize(text)
    assert tokens[-1] == Token(SQ, 5, len(text), False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ls -l /tmp", ["ls", "-l", "/tmp"]),
        ("a\"b c\"'d e'$(f g)h i", ["a\"b c\"'d e'$(f g)h", "i"]),
        ("a;b|c&&d >e", ["a", "b", "c", "d", "e"]),
        ("a # b c", ["a"]),
        ("(a b)", ["a", "b"]),
        ('echo "unclosed; x', ["echo", '"unclosed; x']),
        ("", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert [text[a:b] for a, b in words(tokenize(text))] == expected
