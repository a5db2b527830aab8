"""Shell command injection: did a user input change the structure of a command?

A shell line (``shell=True``, ``os.system``, the ``-c`` string of ``sh -c``) is judged with
the POSIX lexer. An occurrence of the input is harmless when it lies inside one word and is

- inside one single-quoted (or ``$'...'``) string, without a backslash in ``$'...'``;
- literal text inside double quotes: no ``$``, backtick or backslash that acts there;
- unquoted word text (globs ``* ? [`` and ``~`` change no structure), where complete
  quoted parts (``a"b c"d``) and backslash escapes of ordinary characters (``a\\ b``) stay
  within the word too;
- inside a comment the app wrote.

Anything else is an attack: a blank that splits a word, an operator, a newline, a
redirection, a substitution or expansion, a comment, a quote that opens or closes around
text the input does not hold, a backslash that escapes the app's next character, a bash
brace expansion (``{a,b}``). Blanks the input adds at a word's edge split nothing and pass.
Every occurrence is judged, and the first attack wins; occurrences inside the app's own
quoting of the input (``shlex.quote``) are the app's. An input that is the whole line is
"the executable": the user chose the program.

An argument list (``shell=False``, ``os.exec*``) runs no shell, so its items are data,
except (1) the ``-c`` string of a shell (``sh``, ``bash -ec``, ``busybox sh``, ``su -c``,
behind ``env``, ``sudo``, ``nice``, ``timeout``, ``xargs`` and the like), judged as a shell
line, and (2) an input that is the whole program (argv[0], or the program behind a
wrapper): "is the executable".

Inputs shorter than :data:`MIN_INPUT_LENGTH` are never judged (too many coincidences), the
executable rule included. Known gaps: a nested shell inside a shell line (``sh -c "bash -c
'...'"``), ``ssh host cmd``, Windows ``cmd /c``; a plain word in command position of a
longer line (``{} --help``) passes, like any plain word; an input that coincides with
several of the app's own tokens (``wc -l`` in ``cat x | wc -l``) is flagged.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from typing import TypeAlias
from urllib.parse import unquote, unquote_plus

from rasp.detectors import AttackKind, Finding, as_text
from rasp.detectors._argv import SHELLS as SHELLS
from rasp.detectors._argv import programs, split
from rasp.detectors._argv import shell_strings as _shell_strings
from rasp.lexers.shell import WORD_ENDS, WORD_STARTS, Token, TokenKind, scan

__all__ = [
    "MIN_INPUT_LENGTH",
    "ShellLine",
    "detect",
    "executable",
    "needles",
    "shell_strings",
]

MIN_INPUT_LENGTH = 2
IS_EXECUTABLE = "is the executable"
_KIND = AttackKind.SHELL_INJECTION


# Needles made only of these characters are word text in every context: they can only
# lengthen the token they touch (``$HOME`` + ``_x``), never add one. Not lexed for.
_INERT = re.compile(r"[\w.,:@%+=/^-]+")
_BRACES = re.compile(r"\{[^{}\s]*\}")
# Escaped characters that act inside double quotes or backticks (``\$``, ``\```).
_ACTIVE_ESCAPES = frozenset('$`\\"\n')

# Token kinds that add structure wherever an input holds one whole (quotes are judged by
# whether they pair up; escapes by the character they escape).
_HARD_KINDS = frozenset(
    TokenKind[name]
    for name in """BLANK NEWLINE OPERATOR REDIRECTION COMMENT PARAMETER SUBSTITUTION_OPEN
    SUBSTITUTION_CLOSE ARITHMETIC_OPEN ARITHMETIC_CLOSE BACKTICK_OPEN BACKTICK_CLOSE""".split()
)
_TEXT = (TokenKind.WORD, TokenKind.DOUBLE_QUOTED)
_KIND_OF = list(TokenKind)
_QUOTES = (TokenKind.DOUBLE_QUOTE_OPEN, TokenKind.DOUBLE_QUOTE_CLOSE)
_LEAF_QUOTES = (TokenKind.SINGLE_QUOTED, TokenKind.ANSI_C_QUOTED)

SEPARATOR = "adds a command separator"
SPLITS = "spans several words"
BREAKS_OUT = "breaks out of a quoted string"
OPENS = "opens a quoted string"
_REASONS = {
    TokenKind.BLANK: SPLITS,
    TokenKind.NEWLINE: SEPARATOR,
    TokenKind.OPERATOR: SEPARATOR,
    TokenKind.REDIRECTION: "adds a redirection",
    TokenKind.COMMENT: "adds a comment",
    TokenKind.ESCAPE: "adds a backslash escape",
    TokenKind.SINGLE_QUOTED: OPENS,
    TokenKind.ANSI_C_QUOTED: OPENS,
    TokenKind.DOUBLE_QUOTE_OPEN: OPENS,
    TokenKind.DOUBLE_QUOTE_CLOSE: BREAKS_OUT,
    TokenKind.PARAMETER: "adds a variable expansion",
    TokenKind.SUBSTITUTION_OPEN: "adds a command substitution",
    TokenKind.SUBSTITUTION_CLOSE: "breaks out of a command substitution",
    TokenKind.ARITHMETIC_OPEN: "adds an arithmetic expansion",
    TokenKind.ARITHMETIC_CLOSE: "breaks out of an arithmetic expansion",
    TokenKind.BACKTICK_OPEN: "adds a command substitution",
    TokenKind.BACKTICK_CLOSE: "breaks out of a command substitution",
}
_OPERATOR_REASONS = {"|": "adds a pipe", "|&": "adds a pipe", "(": "adds a subshell"}
# An overlapping occurrence costs a search of the input's length: a few are judged, then
# the search steps past each occurrence (a periodic input in a periodic command).
_OVERLAP_BUDGET = 64

_Item: TypeAlias = str | bytes | os.PathLike[str] | os.PathLike[bytes]
Command: TypeAlias = _Item | Sequence[_Item]


def detect(command: Command, user_input: str) -> Finding | None:
    """Return a finding when ``user_input`` changed the structure of ``command``, else ``None``.

    ``command`` is a shell line (``str`` or ``bytes``), a program (``PathLike``) or an
    argument list. For a shell line, ``start``/``end`` point into it; for an argument list,
    into the judged ``-c`` string, or into the program for "is the executable". Never raises.
    """
    value = as_text(user_input)
    if value is None or len(value) < MIN_INPUT_LENGTH:
        return None
    line, argv = split(command)
    if line is not None:
        return ShellLine(line).judge(value)
    if not argv:
        return None
    targets = needles(value)
    for index in programs(argv):
        program = argv[index]
        if program is not None and program in targets:
            return Finding(_KIND, IS_EXECUTABLE, 0, len(program), program)
    for line in _shell_strings(argv):
        finding = ShellLine(line).judge(value)
        if finding is not None:
            return finding
    return None


def shell_strings(command: Command) -> list[str]:
    """The strings of ``command`` that a shell runs as code: a shell line itself, or the
    ``-c`` string of a shell in an argument list (none for a plain argument list)."""
    line, argv = split(command)
    if line is not None:
        return [line]
    return _shell_strings(argv) if argv else []


def executable(command: Command) -> str | None:
    """argv[0] of an argument list (or the path of a lone program) as text; ``None`` for a
    shell line or a value that is neither."""
    argv = split(command)[1]
    return argv[0] if argv else None


def needles(user_input: str) -> list[str]:
    """The input, then the forms apps commonly turn it into before building a command:
    percent-decoded once more (plain and form flavours) when it holds ``%``."""
    found = [user_input]
    if "%" in user_input:
        for decoded in (unquote(user_input), unquote_plus(user_input)):
            if len(decoded) >= MIN_INPUT_LENGTH and decoded not in found:
                found.append(decoded)
    return found


class ShellLine:
    """One shell line judged against many inputs: lexed once, on the first judgment that
    needs it."""

    __slots__ = ("_hard", "_kinds", "_quotes", "_starts", "_unclosed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] = []
        self._kinds = bytearray()
        self._unclosed: frozenset[int] = frozenset()
        self._hard: list[int] = []
        self._quotes: list[int] = []

    def judge(self, user_input: str) -> Finding | None:
        """A finding when ``user_input`` changed the structure of this line."""
        if len(user_input) < MIN_INPUT_LENGTH:
            return None
        text = self.text
        found = needles(user_input)
        if len(found) > 1 and user_input in text:
            # The app pasted the input as it came: its decoded forms are coincidences of
            # the quoting around it (" %27" quoted is "' %27'", which holds " '").
            found = found[:1]
        quoted: tuple[list[int], list[int]] | None = None
        for needle in found:
            if needle not in text:
                continue
            if needle == text.strip(" \t\n"):
                # The whole line, a program the user chose (os.system(request.args["cmd"])).
                start = text.index(needle)
                return Finding(_KIND, IS_EXECUTABLE, start, start + len(needle), needle)
            if _INERT.fullmatch(needle):
                continue
            if not self._starts:
                self._index()  # the text is not empty: it holds the needle
            braces = _has_brace_expansion(needle)
            for start in _occurrences(text, needle):
                end = start + len(needle)
                reason = self._judge(start, end, needle, braces)
                if reason is None:
                    continue
                if quoted is None:
                    quoted = self._quoted_spans(found)
                # Blanks of the needle outside the app's quoted word are the app's own
                # separators around it ("cmd" + " " + "' '\"'\"''" holds " '").
                lead = len(needle) - len(needle.lstrip(" \t"))
                trail = len(needle) - len(needle.rstrip(" \t"))
                if not _within(quoted, start + lead, end - trail):
                    return Finding(_KIND, reason, start, end, needle)
        return None

    def _quoted_spans(self, found: list[str]) -> tuple[list[int], list[int]]:
        """Where the app quoted the input itself, as ``shlex.quote`` does (``'it'"'"'s'``)
        or by the ``'\\''`` idiom, into one clean word: any occurrence of the input inside
        such a word is the app's quoting, not the input's. Starts, and running maximum ends.
        """
        spans: list[tuple[int, int]] = []
        for needle in found:
            if "'" not in needle:
                continue  # quoted as '...', which holds the input whole inside one string
            for form in {shlex.quote(needle), "'" + needle.replace("'", "'\\''") + "'"}:
                for start in _occurrences(self.text, form):
                    if self._judge(start, start + len(form), form, False) is None:
                        spans.append((start, start + len(form)))
        spans.sort()
        starts = [s for s, _ in spans]
        ends = list(itertools.accumulate((e for _, e in spans), max))
        return starts, ends

    def _index(self) -> None:
        text = self.text
        starts, kinds, unclosed = scan(text)
        self._starts, self._kinds, self._unclosed = starts, kinds, frozenset(unclosed)
        hard_kinds = _HARD_KINDS
        escape = TokenKind.ESCAPE
        ends = starts[1:]
        ends.append(len(text))
        hard = [
            i
            for i, kind in enumerate(kinds)
            if kind in hard_kinds or (kind == escape and text[ends[i] - 1] in _ACTIVE_ESCAPES)
        ]
        if unclosed:
            hard = sorted(set(hard).union(unclosed))
        self._hard = hard
        self._quotes = [i for i, kind in enumerate(kinds) if kind in _QUOTES]

    def _token(self, index: int) -> Token:
        starts = self._starts
        end = starts[index + 1] if index + 1 < len(starts) else len(self.text)
        kind = _KIND_OF[self._kinds[index]]
        return Token(kind, starts[index], end, index not in self._unclosed)

    def _judge(self, s: int, e: int, needle: str, braces: bool) -> str | None:
        kinds = self._kinds
        first = bisect_right(self._starts, s) - 1
        last = bisect_left(self._starts, e) - 1
        if first == last and kinds[first] in _TEXT:  # the common case: inside one run of text
            return "adds a brace expansion" if braces and kinds[first] == TokenKind.WORD else None
        # Blanks at the edges of the input split nothing when the app's blank run goes on,
        # or when there is no word on the other side.
        if kinds[first] == TokenKind.BLANK and first < last:
            if self._starts[first] < s or first == 0 or kinds[first - 1] not in WORD_ENDS:
                first += 1
        if kinds[last] == TokenKind.BLANK and first < last:
            if (
                self._token(last).end > e
                or last + 1 == len(kinds)
                or kinds[last + 1] not in WORD_STARTS
            ):
                last -= 1
        if first == last:
            return self._judge_one(first, s, e, needle, braces)
        low, high = first, last
        head, tail = self._token(first), self._token(last)
        if head.start < s:  # the occurrence starts inside the app's token
            if head.kind in _TEXT or head.kind is TokenKind.ESCAPE:
                low += 1  # an app's backslash before the input's first character is fine
            else:
                return _cut_reason(head, self.text, at_start=True)
        if tail.end > e:  # the occurrence ends inside a token the app's text goes on with
            if tail.kind in _TEXT:
                high -= 1
            else:
                return _cut_reason(tail, self.text, at_start=False)
        hard = self._hard
        h = bisect_left(hard, low)
        if h < len(hard) and hard[h] <= high:
            return _reason(self._token(hard[h]), self.text)
        # With no substitution in between, the double quotes alternate: balanced when the
        # first one in the span opens and the last one closes.
        quotes = self._quotes
        q = bisect_left(quotes, first)
        if q < len(quotes) and quotes[q] <= last:
            if kinds[quotes[q]] == TokenKind.DOUBLE_QUOTE_CLOSE:
                return BREAKS_OUT
            if kinds[quotes[bisect_right(quotes, last) - 1]] == TokenKind.DOUBLE_QUOTE_OPEN:
                return OPENS
        if braces and TokenKind.WORD in kinds[first : last + 1]:
            return "adds a brace expansion"
        return None

    def _judge_one(self, index: int, s: int, e: int, needle: str, braces: bool) -> str | None:
        """The occurrence touches one token only (its edge blanks aside)."""
        token = self._token(index)
        kind = token.kind
        if kind is TokenKind.WORD:
            return "adds a brace expansion" if braces else None
        if kind is TokenKind.DOUBLE_QUOTED:
            return None
        if kind is TokenKind.COMMENT:
            return None if s > token.start else "adds a comment"
        if kind is TokenKind.BLANK:
            # Only blanks: harmless unless they make a new gap between two word parts.
            kinds = self._kinds
            if token.start < s or token.end > e or index == 0 or index + 1 == len(kinds):
                return None
            if kinds[index - 1] in WORD_ENDS and kinds[index + 1] in WORD_STARTS:
                return SPLITS
            return None
        if kind in _LEAF_QUOTES:
            body = token.start + (2 if kind is TokenKind.ANSI_C_QUOTED else 1)
            if not token.closed:
                return OPENS if s < body else "leaves a quoted string unclosed"
            if kind is TokenKind.ANSI_C_QUOTED and "\\" in needle:
                return BREAKS_OUT
            if s <= token.start and e >= token.end:
                return None  # one whole quoted string, nothing else
            if s >= body and e < token.end:
                return None
            return OPENS if s < body else BREAKS_OUT
        if kind is TokenKind.ESCAPE:
            if s > token.start:
                return None  # the app's backslash quotes the input's first character
            if e < token.end:
                return "escapes the character after it"
            if not token.closed or self.text[token.end - 1] in _ACTIVE_ESCAPES:
                return _REASONS[kind]
            return None
        if s > token.start or e < token.end:
            return _cut_reason(token, self.text, at_start=s > token.start)
        return _reason(token, self.text)


def _reason(token: Token, text: str) -> str:
    if token.kind is TokenKind.OPERATOR:
        return _OPERATOR_REASONS.get(text[token.start : token.end], SEPARATOR)
    if token.kind in _LEAF_QUOTES and not token.closed:
        return OPENS
    return _REASONS.get(token.kind, SEPARATOR)


def _cut_reason(token: Token, text: str, *, at_start: bool) -> str:
    """Why an occurrence that cuts ``token`` in two is an attack."""
    kind = token.kind
    if kind in _LEAF_QUOTES:
        return BREAKS_OUT if at_start else OPENS
    if kind is TokenKind.COMMENT:
        return "breaks out of a comment" if at_start else "adds a comment"
    if kind is TokenKind.ESCAPE:
        return "escapes the character after it"
    if kind is TokenKind.PARAMETER:
        return "changes a variable expansion" if at_start else "adds a variable expansion"
    return _reason(token, text)


def _within(spans: tuple[list[int], list[int]], start: int, end: int) -> bool:
    starts, ends = spans
    index = bisect_right(starts, start) - 1
    return start < end and index >= 0 and ends[index] >= end


def _has_brace_expansion(needle: str) -> bool:
    """bash expands ``{a,b}`` and ``{1..9}`` into several words."""
    if "{" not in needle:
        return False
    return any("," in m or ".." in m for m in _BRACES.findall(needle))


def _occurrences(text: str, needle: str) -> Iterator[int]:
    """Where ``needle`` starts in ``text``, overlapping occurrences included up to a budget;
    linear in ``len(text)`` plus the budget times ``len(needle)``."""
    width = len(needle)
    overlaps = 0
    position = text.find(needle)
    while position >= 0:
        yield position
        following = text.find(needle, position + 1)
        if 0 <= following < position + width:
            overlaps += 1
            if overlaps > _OVERLAP_BUDGET:
                following = text.find(needle, position + width)
        position = following
