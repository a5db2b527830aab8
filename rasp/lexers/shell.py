"""A linear-time POSIX ``sh`` tokenizer (with the common bash spellings).

The tokens are flat and contiguous: they re-join to the input exactly, whitespace included.
Quoted strings and expansions that cannot nest (``'...'``, ``$'...'``, ``$name``,
``${...}``, a backslash escape, a comment) are one token each. The constructs that hold
other tokens (double quotes, ``$(...)``, ``$((...))``, backticks and ``( ... )`` subshells)
are an opening token, the tokens inside, and a closing token, so that every character's
context can be read off the flat list: inside ``"a $(ls "x y") b"`` the blank between ``x``
and ``y`` is double-quoted text, the one after ``ls`` is a blank of the inner command.

A *word* is a maximal run of word parts (``a"b"'c'$x`` is one word); :func:`words` gives
their spans. An opening token whose closing token never comes, and a leaf token that runs
to the end of the input (an unclosed quote, a lone trailing backslash), have
``closed=False``.

Each context is one master regular expression of named alternatives walked with
``finditer``; a small stack of open contexts switches between them. Every alternative either
fails within a few characters or runs to the end of the input, so the time is linear.

Known simplifications: ``case`` patterns (``a)``) inside ``$(...)`` close it early; the
body of a here-document is lexed as commands; ``${...}`` ends at its first ``}``; nested
backticks are not unescaped (``\\``` inside backticks is an escape token).
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

__all__ = ["WORD_ENDS", "WORD_STARTS", "Token", "TokenKind", "scan", "tokenize", "words"]


class TokenKind(enum.IntEnum):
    BLANK = 0
    """Spaces and tabs: they separate words."""
    NEWLINE = 1
    """A command separator, like ``;``."""
    OPERATOR = 2
    """``; & | && || ;; ;& ;;& |&`` and the parentheses of a subshell."""
    REDIRECTION = 3
    """``[n]< > >> << <<- <<< <& >& <> >|``, ``&>``, ``&>>`` (with ``n>&m`` whole)."""
    COMMENT = 4
    WORD = 5
    """Unquoted literal text of a word (glob characters included)."""
    ESCAPE = 6
    """A backslash and the character it quotes (outside quotes, or an acting one inside
    double quotes); a lone backslash at the end of input is unclosed."""
    SINGLE_QUOTED = 7
    ANSI_C_QUOTED = 8
    """bash's ``$'...'``."""
    DOUBLE_QUOTE_OPEN = 9
    """``"`` (or bash's ``$"``)."""
    DOUBLE_QUOTED = 10
    """Literal text inside double quotes."""
    DOUBLE_QUOTE_CLOSE = 11
    PARAMETER = 12
    """``$name``, ``$1``, ``$?``, ``${...}``."""
    SUBSTITUTION_OPEN = 13
    """``$(``."""
    SUBSTITUTION_CLOSE = 14
    ARITHMETIC_OPEN = 15
    """``$((``."""
    ARITHMETIC_CLOSE = 16
    BACKTICK_OPEN = 17
    BACKTICK_CLOSE = 18


class Token(NamedTuple):
    kind: TokenKind
    start: int
    end: int
    closed: bool = True
    """False for an opening token never closed, or a leaf token cut by the end of input."""


# Kinds that can end a word, and kinds that can start one: a blank between the two splits
# a word. A comment counts as a start: without the blank before it, "#" is word text.
WORD_ENDS = frozenset(
    (
        TokenKind.WORD,
        TokenKind.ESCAPE,
        TokenKind.SINGLE_QUOTED,
        TokenKind.ANSI_C_QUOTED,
        TokenKind.PARAMETER,
        TokenKind.DOUBLE_QUOTE_CLOSE,
        TokenKind.SUBSTITUTION_CLOSE,
        TokenKind.ARITHMETIC_CLOSE,
        TokenKind.BACKTICK_CLOSE,
    )
)
WORD_STARTS = frozenset(
    (
        TokenKind.WORD,
        TokenKind.ESCAPE,
        TokenKind.SINGLE_QUOTED,
        TokenKind.ANSI_C_QUOTED,
        TokenKind.PARAMETER,
        TokenKind.DOUBLE_QUOTE_OPEN,
        TokenKind.SUBSTITUTION_OPEN,
        TokenKind.ARITHMETIC_OPEN,
        TokenKind.BACKTICK_OPEN,
        TokenKind.COMMENT,
    )
)
_OPENERS = frozenset(
    (
        TokenKind.DOUBLE_QUOTE_OPEN,
        TokenKind.SUBSTITUTION_OPEN,
        TokenKind.ARITHMETIC_OPEN,
        TokenKind.BACKTICK_OPEN,
    )
)
_CLOSERS = frozenset(
    (
        TokenKind.DOUBLE_QUOTE_CLOSE,
        TokenKind.SUBSTITUTION_CLOSE,
        TokenKind.ARITHMETIC_CLOSE,
        TokenKind.BACKTICK_CLOSE,
    )
)
_SEPARATORS = frozenset(
    (
        TokenKind.BLANK,
        TokenKind.NEWLINE,
        TokenKind.OPERATOR,
        TokenKind.REDIRECTION,
        TokenKind.COMMENT,
    )
)

# Alternatives shared by the command and double-quote contexts.
_DOLLAR = (
    r"(?P<arith_open>\$\(\()"
    r"|(?P<subst_open>\$\()"
    r"|(?P<param_brace>\$\{[^}]*(?P<param_brace_close>\})?)"
    r"|(?P<param>\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]))"
)
# Outside quotes a word run may hold "#", but not start with it: "#" starting a word
# starts a comment, which the tokenizer decides (it knows the previous token).
_COMMAND = re.compile(
    "|".join(
        (
            r"(?P<blank>[ \t]+)",
            r"(?P<newline>\n)",
            r"(?P<redirection>[0-9]*(?:<<-|<<<|<<|<>|[<>]&(?:[0-9]+-?|-)?|>>|>\||[<>])|&>>?)",
            r"(?P<operator>;;&|;;|;&|&&|\|\||\|&|[;&|])",
            r"(?P<lparen>\()",
            r"(?P<rparen>\))",
            r"(?P<word>[^ \t\n;&|()<>'\"\\$`#][^ \t\n;&|()<>'\"\\$`]*)",
            r"(?P<squote>'[^']*(?P<squote_close>')?)",
            r"(?P<ansi>\$'[^'\\]*(?:\\.[^'\\]*)*(?:(?P<ansi_close>')|\\)?)",
            r"(?P<locale>\$\")",
            _DOLLAR,
            r"(?P<dollar>\$)",
            r"(?P<dquote>\")",
            r"(?P<backtick>`)",
            r"(?P<escape>\\.?)",
            r"(?P<hash>\#)",
        )
    ),
    re.DOTALL,
)
_DOUBLE_QUOTED = re.compile(
    "|".join(
        (
            r"(?P<dquote>\")",
            r"(?P<escape>\\[$`\"\\\n])",
            _DOLLAR,
            r"(?P<backtick>`)",
            # Any other "$" or backslash is literal here.
            r"(?P<text>[^\"`]"
            r"[^\"\\$`]*(?:(?:\\(?![$`\"\\\n])|\$(?![({A-Za-z0-9_@*#?$!-]))[^\"\\$`]*)*)",
        )
    ),
    re.DOTALL,
)
_COMMENT_REST = re.compile(r"[^\n]*")
_COMMENT_IN_BACKTICKS = re.compile(r"[^\n`]*")

# Open contexts on the stack.
_SUBSTITUTION, _ARITHMETIC, _SUBSHELL, _DOUBLE, _BACKTICKS = range(5)

_SIMPLE = {
    "blank": TokenKind.BLANK,
    "newline": TokenKind.NEWLINE,
    "redirection": TokenKind.REDIRECTION,
    "operator": TokenKind.OPERATOR,
    "param": TokenKind.PARAMETER,
}
_TEXT = {"word": TokenKind.WORD, "dollar": TokenKind.WORD, "text": TokenKind.DOUBLE_QUOTED}
_LEAVES = {
    "squote": TokenKind.SINGLE_QUOTED,
    "ansi": TokenKind.ANSI_C_QUOTED,
    "param_brace": TokenKind.PARAMETER,
}
_LEAF_CLOSERS = {"squote": "squote_close", "ansi": "ansi_close", "param_brace": "param_brace_close"}
_KINDS = list(TokenKind)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; ``"".join(text[t.start:t.end] for t in tokens) == text``.

    Never raises on a ``str``.
    """
    starts, kinds, unclosed = scan(text)
    if not starts:
        return []
    ends = starts[1:]
    ends.append(len(text))
    new = tuple.__new__
    tokens = [
        new(Token, (_KINDS[k], s, e, True)) for k, s, e in zip(kinds, starts, ends, strict=True)
    ]
    for index in unclosed:
        token = tokens[index]
        tokens[index] = Token(token.kind, token.start, token.end, False)
    return tokens


def scan(text: str) -> tuple[list[int], bytearray, list[int]]:
    """The tokens of ``text`` as arrays: where each starts (each ends where the next one
    starts), its kind, and the indexes of the unclosed ones.

    What :func:`tokenize` returns, without an object per token: a long command costs no
    garbage-collector passes over millions of tuples.
    """
    starts: list[int] = []
    kinds = bytearray()
    unclosed: list[int] = []
    start_at = starts.append
    kind_is = kinds.append
    simple = _SIMPLE
    texts = _TEXT
    stack: list[tuple[int, int]] = []  # (context, index of its opening token)
    text_end = -1  # where the last run of text ended: "a$" + "b" is one run
    pos = 0
    length = len(text)
    while pos < length:
        double = bool(stack) and stack[-1][0] == _DOUBLE
        pattern = _DOUBLE_QUOTED if double else _COMMAND
        for m in pattern.finditer(text, pos):
            group = m.lastgroup or ""
            kind = texts.get(group)
            if kind is not None:
                start = m.start()
                if start != text_end or kinds[-1] != kind:
                    start_at(start)
                    kind_is(kind)
                text_end = m.end()
                continue
            kind = simple.get(group)
            if kind is not None:
                start_at(m.start())
                kind_is(kind)
                continue
            start, end = m.span()
            if group == "hash":
                if kinds and kinds[-1] in WORD_ENDS:
                    # Inside a word ("a'b'#c") a "#" is text; the next match carries on.
                    if kinds[-1] != TokenKind.WORD:
                        start_at(start)
                        kind_is(TokenKind.WORD)
                    text_end = end
                    continue
                in_backticks = bool(stack) and stack[-1][0] == _BACKTICKS
                rest = (_COMMENT_IN_BACKTICKS if in_backticks else _COMMENT_REST).match(text, end)
                pos = rest.end() if rest is not None else end
                start_at(start)
                kind_is(TokenKind.COMMENT)
                break
            index = len(starts)
            start_at(start)
            kind = _LEAVES.get(group)
            if kind is not None:
                kind_is(kind)
                if m[_LEAF_CLOSERS[group]] is None:
                    unclosed.append(index)
            elif group == "escape":
                kind_is(TokenKind.ESCAPE)
                if end - start == 1:
                    unclosed.append(index)  # a lone backslash at the end
            elif group == "subst_open" or group == "arith_open":
                if group == "subst_open":
                    stack.append((_SUBSTITUTION, index))
                    kind_is(TokenKind.SUBSTITUTION_OPEN)
                else:
                    stack.append((_ARITHMETIC, index))
                    kind_is(TokenKind.ARITHMETIC_OPEN)
                if double:
                    pos = end
                    break
            elif group == "lparen":
                stack.append((_SUBSHELL, index))
                kind_is(TokenKind.OPERATOR)
            elif group == "rparen":
                context = stack[-1][0] if stack else None
                if context == _SUBSTITUTION:
                    stack.pop()
                    kind_is(TokenKind.SUBSTITUTION_CLOSE)
                elif context == _SUBSHELL:
                    stack.pop()
                    kind_is(TokenKind.OPERATOR)
                elif context == _ARITHMETIC and text.startswith(")", end):
                    stack.pop()
                    kind_is(TokenKind.ARITHMETIC_CLOSE)
                    pos = end + 1
                    break  # one character past the match: restart there
                else:
                    kind_is(TokenKind.OPERATOR)  # a stray ")"
                if stack and stack[-1][0] == _DOUBLE:
                    pos = end
                    break
            elif group == "dquote" or group == "locale":
                if double:
                    stack.pop()
                    kind_is(TokenKind.DOUBLE_QUOTE_CLOSE)
                else:
                    stack.append((_DOUBLE, index))
                    kind_is(TokenKind.DOUBLE_QUOTE_OPEN)
                pos = end
                break
            else:  # "backtick"
                if stack and stack[-1][0] == _BACKTICKS:
                    stack.pop()
                    kind_is(TokenKind.BACKTICK_CLOSE)
                    if stack and stack[-1][0] == _DOUBLE:
                        pos = end
                        break
                else:
                    stack.append((_BACKTICKS, index))
                    kind_is(TokenKind.BACKTICK_OPEN)
                    if double:
                        pos = end
                        break
        else:
            break
    unclosed.extend(index for _, index in stack)
    unclosed.sort()
    return starts, kinds, unclosed


def words(tokens: list[Token]) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of the top-level words: maximal runs of word parts, where
    the blanks and operators inside quotes and substitutions do not split."""
    spans: list[tuple[int, int]] = []
    depth = 0
    start = -1
    end = 0
    for token in tokens:
        kind = token.kind
        if depth == 0 and kind in _SEPARATORS:
            if start >= 0:
                spans.append((start, end))
                start = -1
            continue
        if start < 0:
            start = token.start
        end = token.end
        if kind in _OPENERS:
            depth += 1
        elif kind in _CLOSERS and depth > 0:
            depth -= 1
    if start >= 0:
        spans.append((start, end))
    return spans
