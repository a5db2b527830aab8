"""SQL injection: did a user input change the structure of a statement?

An input is harmless while each place it lands in the statement lies inside one token (a
string literal, a number, an identifier, a comment the app wrote). It is an injection when
an occurrence breaks out of a literal or comment, opens one, adds a comment, or spans several
tokens among which are operators, parentheses, semicolons, literals or clause keywords.
Spans of plain identifiers, numbers, commas and dots (``name DESC``, ``1,2,3``) change
nothing an attacker can use and are let through, which keeps sort columns and id lists quiet.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Sequence
from urllib.parse import unquote, unquote_plus

from rasp.detectors import AttackKind, Finding, as_text
from rasp.lexers.sql import Dialect, TokenKind, tokenize
from rasp.lexers.sql_regions import Regions, scan

__all__ = ["detect", "redact"]

MIN_INPUT_LENGTH = 2

# Keywords that give an attacker something: new clauses, boolean logic, statements, delays.
# Sort words (ASC, DESC, NULLS FIRST/LAST) and NULL are not here on purpose: an input of plain
# identifiers and those words cannot change what a query does. Function names that need
# parentheses are caught by the parentheses.
STRUCTURAL_KEYWORDS = frozenset(
    """
    UNION SELECT INSERT UPDATE DELETE DROP ALTER CREATE TRUNCATE REPLACE MERGE UPSERT EXEC
    EXECUTE CALL DECLARE SET GRANT REVOKE ATTACH DETACH PRAGMA VACUUM COPY LOAD INTO OUTFILE
    DUMPFILE FROM WHERE HAVING GROUP ORDER BY LIMIT OFFSET FETCH JOIN OR AND XOR NOT IS LIKE
    ILIKE GLOB REGEXP RLIKE MATCH SIMILAR SOUNDS BETWEEN IN EXISTS ANY ALL SOME CASE WHEN THEN
    ELSE END DIV MOD WAITFOR DELAY SHUTDOWN PROCEDURE RETURNING WITH VALUES TABLE DATABASE
    BEGIN COMMIT ROLLBACK SAVEPOINT LOCK UNLOCK HANDLER PREPARE DEALLOCATE DO SHOW DESCRIBE
    EXPLAIN USE ESCAPE INTERSECT EXCEPT MINUS ISNULL NOTNULL FOR SHARE NOWAIT SKIP LOCKED
    OVER WINDOW PARTITION INTERVAL BINARY LATERAL NATURAL CROSS INNER OUTER LEFT RIGHT
    FULL ON USING AS DISTINCT TOP CAST CONVERT IF IFNULL NULLIF COALESCE GREATEST LEAST
    UNNEST RECURSIVE TRUE FALSE UNKNOWN
    """.split()
)

# An input made only of word characters lies inside one run of word characters wherever it
# is found, and such a run is never split into tokens that an attacker could use.
_WORD_ONLY = re.compile(r"\w+")
# Quotes and backslashes alone cannot add structure; their escaped forms only line up with
# the edges of the literal that holds them.
_QUOTES_ONLY = re.compile(r"['\"`\\]+")
_QUOTED = (TokenKind.STRING, TokenKind.QUOTED_IDENTIFIER)
_QUOTE_CHARS = frozenset("'\"`")
_BREAKS_OUT = {
    TokenKind.STRING: "breaks out of a quoted literal",
    TokenKind.QUOTED_IDENTIFIER: "breaks out of a quoted identifier",
    TokenKind.COMMENT: "breaks out of a comment",
}
_OPENS = {
    TokenKind.STRING: "opens a quoted literal",
    TokenKind.QUOTED_IDENTIFIER: "opens a quoted identifier",
    TokenKind.COMMENT: "opens a comment",
}
_ADDS = {
    TokenKind.STRING: "adds a quoted literal",
    TokenKind.QUOTED_IDENTIFIER: "adds a quoted identifier",
    TokenKind.COMMENT: "adds a comment",
}
# Edge words are made whole before a stretch of code is lexed, up to this many characters.
_EDGE_WORD = 64
_INERT_PUNCTUATION = frozenset(",.")
_SIGNS = frozenset("+-")


def detect(
    query: str, user_input: str, *, dialect: Dialect | str = Dialect.GENERIC
) -> Finding | None:
    """Return a finding when ``user_input`` changed the structure of ``query``, else ``None``.

    ``dialect`` is one of ``generic``, ``sqlite``, ``postgresql``, ``mysql`` (aliases:
    ``postgres``, ``mariadb``). Never raises on any ``str`` or ``bytes`` arguments.
    """
    query_text = as_text(query)
    needle_source = as_text(user_input)
    if query_text is None or needle_source is None:
        return None
    if type(dialect) is not Dialect:
        try:
            dialect = Dialect.parse(dialect)
        except (ValueError, AttributeError):
            dialect = Dialect.GENERIC
    return Statement(query_text, dialect).judge(needle_source)


class Statement:
    """One statement judged against many inputs: its literals and comments are found once."""

    __slots__ = ("_regions", "dialect", "text")

    def __init__(self, text: str, dialect: Dialect) -> None:
        self.text = text
        self.dialect = dialect
        self._regions: Regions | None = None

    def judge(self, user_input: str) -> Finding | None:
        """A finding when ``user_input`` changed the structure of this statement."""
        if len(user_input) < MIN_INPUT_LENGTH or _QUOTES_ONLY.fullmatch(user_input):
            return None
        text = self.text
        forms = needles(user_input)
        # The escaped forms found: an occurrence of the input inside one of them that stays
        # in its literal is a piece of the escaped text (``'0'`` in ``'''0'''``).
        escaped = [form for form in forms[1:] if len(form) > len(user_input) and form in text]
        for needle in forms:
            if needle not in text or _WORD_ONLY.fullmatch(needle) or _inert(needle):
                continue
            if self._regions is None:
                # Literals and comments of the whole statement; tokens only where needed.
                self._regions = scan(text, self.dialect)
            covering = escaped if needle is forms[0] else ()
            finding = _scan(text, needle, self._regions, self.dialect, covering)
            if finding is not None:
                return finding
        return None


def redact(query: str, dialect: Dialect | str = Dialect.GENERIC) -> str:
    """The statement with every string and number literal replaced by ``?``, and the text
    of every comment too (an injected ``--`` can hide the rest of the app's statement,
    passwords included)."""
    parts: list[str] = []
    for token in tokenize(query, dialect):
        kind = token.kind
        if kind is TokenKind.STRING or kind is TokenKind.NUMBER:
            parts.append("?")
        elif kind is TokenKind.COMMENT:
            text = query[token.start : token.end]
            if text.startswith("/*"):
                parts.append("/*?*/" if token.closed else "/*?")
            else:
                parts.append(text[: 1 if text.startswith("#") else 2] + "?")
        else:
            parts.append(query[token.start : token.end])
    return "".join(parts)


def needles(user_input: str) -> list[str]:
    """The input, then the forms apps commonly turn it into before building SQL."""
    needles = [user_input]
    if "'" in user_input:
        needles.append(user_input.replace("'", "''"))
        needles.append(user_input.replace("'", "\\'"))
    if "%" in user_input:
        # Decoded once more by the app (double encoding): both the plain and the form
        # flavour, since apps use either.
        for decoded in (unquote(user_input), unquote_plus(user_input)):
            if decoded != user_input and len(decoded) >= MIN_INPUT_LENGTH:
                if decoded not in needles:
                    needles.append(decoded)
    return needles


def candidate_needles(user_input: str) -> Sequence[str]:
    """The needles of :func:`needles` that :func:`detect` could ever judge an injection.

    The guard looks for these in every statement, so inputs that can never add structure
    (word characters only, quotes only, one character) cost nothing there. Header values
    repeat from request to request, so answers are remembered (a bounded cache).
    """
    if len(user_input) < MIN_INPUT_LENGTH or _WORD_ONLY.fullmatch(user_input):
        return ()
    if len(user_input) > _CACHED_INPUT_LENGTH:
        return _candidate_needles(user_input)
    return _cached_candidate_needles(user_input)


def _candidate_needles(user_input: str) -> list[str]:
    if _QUOTES_ONLY.fullmatch(user_input):
        return []
    found = needles(user_input)
    if len(found) == 1:
        return found  # the input itself, already known not to be a plain word
    return [n for n in found if not _WORD_ONLY.fullmatch(n)]


_CACHED_INPUT_LENGTH = 256
_cached_candidate_needles = functools.lru_cache(maxsize=4096)(
    lambda user_input: tuple(_candidate_needles(user_input))
)


# Words, numbers, spaces, tabs, commas and dots: no quote, comment, operator or line break.
_INERT_TEXT = re.compile(r"[\w \t,.]+")
_WORDS = re.compile(r"[^\W\d]\w*")


@functools.lru_cache(maxsize=4096)
def _inert(needle: str) -> bool:
    """Is ``needle`` harmless wherever it lands? Inside a literal or comment it cannot close
    or open one (it has no delimiter characters, no line break); in code it is a run of
    identifiers, numbers, commas and dots, which the code rule lets through. Then the
    statement need not be scanned at all (prose and search text are mostly like this)."""
    if not _INERT_TEXT.fullmatch(needle):
        return False
    return not any(word.upper() in STRUCTURAL_KEYWORDS for word in _WORDS.findall(needle))


def _scan(
    query: str, needle: str, regions: Regions, dialect: Dialect, covering: Sequence[str] = ()
) -> Finding | None:
    # Non-overlapping occurrences keep the total work linear in the statement's length.
    find = query.find
    width = len(needle)
    position = find(needle)
    while position >= 0:
        end = position + width
        reason = _judge(query, position, end, regions, dialect)
        if reason is not None and covering:
            span = _covering(query, position, end, covering)
            if span is not None and _judge(query, *span, regions, dialect) is None:
                reason = None  # a piece of the input's escaped form, which stays in place
        if reason is not None:
            return Finding(AttackKind.SQL_INJECTION, reason, position, end, needle)
        position = find(needle, end)
    return None


def _covering(query: str, start: int, end: int, covering: Sequence[str]) -> tuple[int, int] | None:
    """The span of an occurrence of one of the ``covering`` forms around
    ``query[start:end]``, if there is one."""
    for form in covering:
        for offset in range(max(0, end - len(form)), start + 1):
            if query.startswith(form, offset):
                return offset, offset + len(form)
    return None


def _judge(query: str, start: int, end: int, regions: Regions, dialect: Dialect) -> str | None:
    starts, ends, kinds, closed = regions
    first = bisect_right(starts, start) - 1
    if first >= 0 and start < ends[first]:
        # The occurrence starts inside a literal or comment.
        if end <= ends[first]:
            if dialect is Dialect.MYSQL and _is_executable_comment(query, starts[first]):
                # MySQL runs the inside of /*! ... */ as code.
                return _judge_code(query, start, end, starts[first], ends[first], dialect)
            return _judge_inside(query, start, end, kinds[first], starts[first], ends[first],
                                 closed[first], dialect)  # fmt: skip
        if start > starts[first]:
            return _BREAKS_OUT[kinds[first]]
        return _ADDS[kinds[first]]
    last = bisect_right(starts, end - 1) - 1
    if last > first:
        # A literal or comment starts inside the occurrence.
        if end < ends[last]:
            return _OPENS[kinds[last]]
        return _ADDS[kinds[first + 1]]
    low = ends[first] if first >= 0 else 0
    high = starts[first + 1] if first + 1 < len(starts) else len(query)
    return _judge_code(query, start, end, low, high, dialect)


def _judge_code(
    query: str, start: int, end: int, low: int, high: int, dialect: Dialect
) -> str | None:
    """The occurrence lies in plain SQL code: lex that stretch, with its edge words whole so
    they lex as in the full statement, and judge the tokens the occurrence touches."""
    left = start
    low = max(low, start - _EDGE_WORD)
    while left > low and _is_word_char(query[left - 1]):
        left -= 1
    right = end
    high = min(high, end + _EDGE_WORD)
    while right < high and _is_word_char(query[right]):
        right += 1
    text = query[left:right]
    start -= left
    end -= left
    tokens = [t for t in tokenize(text, dialect) if t.end > start and t.start < end]
    if len(tokens) <= 1:
        return None
    index = 0
    head = tokens[0]
    if head.kind is TokenKind.OPERATOR and text[head.start : head.end] in _SIGNS:
        # A leading sign belongs to the number after it: "-1" is one value, not an operator.
        if tokens[1].kind is TokenKind.NUMBER:
            index = 1
    after_comma = False
    count = len(tokens)
    while index < count:
        token = tokens[index]
        index += 1
        kind = token.kind
        if kind is TokenKind.WHITESPACE:
            continue
        signed = after_comma
        after_comma = False
        if kind is TokenKind.NUMBER or kind is TokenKind.PLACEHOLDER:
            continue
        if kind is TokenKind.WORD:
            if text[token.start : token.end].upper() in STRUCTURAL_KEYWORDS:
                return "adds an SQL keyword"
            continue
        if kind is TokenKind.PUNCTUATION:
            punctuation = text[token.start : token.end]
            if punctuation in _INERT_PUNCTUATION:
                after_comma = punctuation == ","
                continue
            return "adds punctuation"
        if kind is TokenKind.OPERATOR:
            # A sign right after a comma belongs to the next number too: "IN (1,-2)".
            if (
                signed
                and index < count
                and tokens[index].kind is TokenKind.NUMBER
                and text[token.start : token.end] in _SIGNS
            ):
                continue
            return "adds an operator"
        if kind is TokenKind.COMMENT:
            return "adds a comment"
        if kind in _QUOTED:
            return "adds a quoted literal"
        return "adds a stray character"
    return None


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_$@"


def _judge_inside(
    query: str,
    start: int,
    end: int,
    kind: TokenKind,
    token_start: int,
    token_end: int,
    closed: bool,
    dialect: Dialect,
) -> str | None:
    """The occurrence lies within one literal or comment: harmless unless it supplied the
    delimiters."""
    if kind is TokenKind.COMMENT:
        # Supplying part of the opener counts: "bal-{}" with "-5" makes "bal--5".
        opener = 1 if query[token_start] == "#" else 2
        if start < token_start + opener:
            return "adds a comment"
        # The app never sends a comment that runs unclosed to the end: the input made it so
        # (in PostgreSQL, a "/*" inside the app's comment nests and swallows the rest).
        if not closed:
            return "leaves a comment unclosed"
        # Only a block comment ends in a delimiter; a line comment ends before its newline.
        if token_end == end and query.startswith("/*", token_start):
            return "closes a comment"
        return None
    if token_start == start:
        if not closed:
            return "opens a quoted literal that never closes"
        if token_end > end:
            return "opens a quoted literal"
        return None  # the input is one whole literal
    # An unclosed literal around the input: its trailing quote or backslash escaped the
    # app's closing quote.
    if not closed:
        return "leaves a quoted literal unclosed"
    if token_end == end:
        return "closes a quoted literal"
    if _escapes_closing_quote(query, start, end, token_start, dialect):
        return "escapes the closing quote of a quoted literal"
    return None


def _escapes_closing_quote(
    query: str, start: int, end: int, token_start: int, dialect: Dialect
) -> bool:
    """Did the input end in a quote or backslash that made the app's closing quote an escaped
    one, so the app's own text after it became part of the literal? (Input ``abc'`` in
    ``'abc'' AND b = 'x'``.) An app that escaped the input leaves the escaped form at the
    same place instead (``abc''`` then its closing quote): that is fine.
    """
    quote = query[end : end + 1]
    if not quote or quote not in _QUOTE_CHARS:
        return False
    needle = query[start:end]
    backslashes = dialect is Dialect.MYSQL or (
        dialect is Dialect.POSTGRESQL and query[token_start] in "Ee"
    )
    run = len(needle) - len(needle.rstrip(quote))
    if backslashes and run and _odd_backslashes_before(needle, len(needle) - run):
        run -= 1  # the run's first quote is escaped (``\'``): it cannot pair with the closer
    if run % 2 == 1:
        return not query.startswith(needle.replace(quote, quote + quote), start)
    if backslashes:
        slashes = len(needle) - len(needle.rstrip("\\"))
        if slashes % 2 == 1:
            return not query.startswith(needle.replace("\\", "\\\\"), start)
    return False


def _odd_backslashes_before(text: str, at: int) -> bool:
    head = text[:at]
    return (len(head) - len(head.rstrip("\\"))) % 2 == 1


def _is_executable_comment(query: str, start: int) -> bool:
    return query.startswith("/*!", start) or query.startswith("/*M!", start)
