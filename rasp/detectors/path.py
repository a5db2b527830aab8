"""Path traversal: did a user input change where a file path points?

The path is judged as the text that reaches ``open()``: bytes decoded as UTF-8 with
surrogateescape (what the OS sees, byte for byte), ``PathLike`` through ``os.fspath``. An
input is harmless while it only names things below the directory the app's own text points
to. An occurrence of the input (or of a form the app turned it into) is an attack when it

- holds a NUL byte (truncation tricks: ``secret.txt\\0.jpg``);
- is a ``file:`` URL that starts the path;
- is an absolute path (``/etc/passwd``, ``\\\\server\\share``, ``C:\\x``, ``C:/x``) that starts
  the path: the app used it as given (``open(name)``, or ``os.path.join(base, name)``, which
  drops ``base``). Where it lands after the app's text it is only a doubled separator;
- climbs out of the directory: walking its segments (``/`` and ``\\`` both separators) from
  the directory the app's text before it points to, a ``..`` that is a whole segment of the
  path takes it above that directory. ``a/../b`` stays inside; ``a..b`` is a name.

The walk starts in the directory the app's text before the occurrence names (``/srv/files/``
for ``/srv/files/{}``, also for ``/srv/files/user_{}``). A partial segment at either edge of
the occurrence joins the app's text to make a whole segment (``user_{}`` with ``x/../y``
walks ``user_x``, ``..``, ``y``: still inside), so ``..`` counts only as a whole segment of
the final path, and the input itself must hold it. ``~`` is not judged: ``open()`` never
expands it, only ``os.path.expanduser`` does, and apps do not call that on user input.
Overlong UTF-8 (``%c0%ae``) is not decoded either: ``unquote`` turns it into U+FFFD, never
into ``.``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from urllib.parse import unquote, unquote_plus, urlsplit
from urllib.request import url2pathname

from rasp.detectors import AttackKind, Finding, as_text

__all__ = ["MIN_INPUT_LENGTH", "candidate_needles", "detect", "needles"]

# One character (``/``, ``.``) cannot be judged; ``..`` must be.
MIN_INPUT_LENGTH = 2

CLIMBS = "climbs out of the directory"
ABSOLUTE = "is an absolute path used as given"
NUL_BYTE = "holds a NUL byte"
FILE_URL = "is a file URL"

_SEPARATORS = "/\\"
_DRIVE = re.compile(r"[A-Za-z]:[/\\]")
# Hosts that urllib's file opener serves from the local disk (without asking DNS: detectors
# are pure).
_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})
_DOTS = (".", "..")
_EDGE_CASES = ("", ".", "x")


def detect(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes], user_input: str
) -> Finding | None:
    """Return a finding when ``user_input`` changed where ``path`` points, else ``None``.

    Never raises: arguments it cannot judge (a file descriptor, ``None``) give ``None``.
    """
    text = _path_text(path)
    value = as_text(user_input)
    if text is None or value is None or len(value) < MIN_INPUT_LENGTH:
        return None
    for needle in candidate_needles(value):
        if needle in text:
            finding = _scan(text, needle)
            if finding is not None:
                return finding
    return None


def needles(user_input: str) -> list[str]:
    """The input, then the forms apps turn it into before building a path: percent-decoded
    once more (double encoding), with ``../`` removed once (the naive filter that
    ``....//`` defeats), and the local path a ``file:`` URL names (URL openers open that)."""
    found = [user_input]

    def add(form: str | None) -> None:
        if form is not None and len(form) >= MIN_INPUT_LENGTH and form not in found:
            found.append(form)

    if "%" in user_input:
        add(unquote(user_input))
        add(unquote_plus(user_input))
    for form in list(found):
        if "../" in form or "..\\" in form:
            add(form.replace("../", "").replace("..\\", ""))
    for form in list(found):
        add(_file_url_path(form))
    return found


def candidate_needles(user_input: str) -> Sequence[str]:
    """The needles of :func:`needles` that :func:`detect` could ever judge an attack.

    The guard looks for these in every path opened during a request, so an input that holds
    no ``..``, NUL or ``%``, is not absolute and is not a file URL (nearly all of them) has
    none and costs nothing there. Answers are remembered (a bounded cache).
    """
    if len(user_input) < MIN_INPUT_LENGTH or not _may_attack(user_input):
        return ()
    if len(user_input) > _CACHED_INPUT_LENGTH:
        return tuple(_candidate_needles(user_input))
    return _cached_candidate_needles(user_input)


def _may_attack(value: str) -> bool:
    # C-speed checks, a superset of what any needle derived from ``value`` could be judged.
    return (
        ".." in value
        or "%" in value
        or "\x00" in value
        or value[0] in _SEPARATORS
        or value[1] == ":"
        or value[:5].lower() == "file:"
    )


def _candidate_needles(user_input: str) -> list[str]:
    return [needle for needle in needles(user_input) if _judged(needle)]


_CACHED_INPUT_LENGTH = 256
_cached_candidate_needles = functools.lru_cache(maxsize=4096)(
    lambda user_input: tuple(_candidate_needles(user_input))
)


def _judged(needle: str) -> bool:
    """Could some occurrence of ``needle`` be judged an attack by one of the rules?"""
    return len(needle) >= MIN_INPUT_LENGTH and (
        ".." in needle or "\x00" in needle or _start_reason(needle) is not None
    )


def _start_reason(needle: str) -> str | None:
    """The reason an occurrence at the very start of the path is an attack, if any."""
    if needle[:5].lower() == "file:":
        return FILE_URL
    if needle[:1] in ("/", "\\") or _DRIVE.match(needle):
        return ABSOLUTE
    return None


def _file_url_path(form: str) -> str | None:
    if form[:5].lower() != "file:":
        return None
    try:
        parts = urlsplit(form)
        if (parts.hostname or "") not in _LOCAL_HOSTS:
            return None  # urllib refuses remote file hosts
        return url2pathname(parts.path)
    except (ValueError, OSError):
        return None  # a malformed URL opens nothing


def _path_text(path: object) -> str | None:
    if isinstance(path, os.PathLike):
        try:
            path = os.fspath(path)
        except Exception:  # the object's own __fspath__; open() would fail on it too
            return None
    return as_text(path)


def _scan(path: str, needle: str) -> Finding | None:
    start_reason = _start_reason(needle)
    if "\x00" in needle:
        start = path.find(needle)
        return Finding(AttackKind.PATH_TRAVERSAL, NUL_BYTE, start, start + len(needle), needle)
    if start_reason is not None and path.startswith(needle) and _used_as_given(path, needle):
        return Finding(AttackKind.PATH_TRAVERSAL, start_reason, 0, len(needle), needle)
    if ".." not in needle:
        return None
    # The verdict on an occurrence depends on the app's text beside it only where the
    # needle's first or last segment is "." or "..": the app's "." can make it "..", a
    # letter makes it a name. Each case is walked once, before the occurrences are sought.
    parts = needle.replace("\\", "/").split("/")
    head_matters = parts[0] in _DOTS
    tail_matters = parts[-1] in _DOTS
    heads = _EDGE_CASES if head_matters else ("",)
    tails = _EDGE_CASES if tail_matters else ("",)
    verdicts = {(h, t): _climbs(h + needle + t) for h in heads for t in tails}
    if not any(verdicts.values()):
        return None
    find = path.find
    width = len(needle)
    size = len(path)
    # Non-overlapping occurrences keep the work linear in the path's length.
    position = find(needle)
    while position >= 0:
        end = position + width
        # The app's partial segment beside the occurrence, as far as it can change a "." or
        # ".." segment of the needle: nothing, exactly "." (making ".." or "..."), or a name.
        head = tail = ""
        if head_matters and position and path[position - 1] not in _SEPARATORS:
            head = "x"
            if path[position - 1] == "." and (position < 2 or path[position - 2] in _SEPARATORS):
                head = "."
        if tail_matters and end < size and path[end] not in _SEPARATORS:
            tail = "x"
            if path[end] == "." and (end + 1 == size or path[end + 1] in _SEPARATORS):
                tail = "."
        if verdicts[head, tail]:
            return Finding(AttackKind.PATH_TRAVERSAL, CLIMBS, position, end, needle)
        position = find(needle, end)
    return None


def _used_as_given(path: str, needle: str) -> bool:
    """Did the app take the user's absolute path as the file (``open(name)``,
    ``name + ".txt"``), or as a folder deep enough not to be a coincidence?

    ``?next=/home`` is a common honest value, and an app that lives under ``/home/app``
    opens ``/home/app/templates/page.html`` while serving it: a one-segment prefix of the
    path, followed by more folders, is the app's own text.
    """
    rest = path[len(needle) :]
    if not any(separator in rest for separator in _SEPARATORS):
        return True
    inner = needle[3 if _DRIVE.match(needle) else 1 :].rstrip(_SEPARATORS)
    return needle[:5].lower() == "file:" or any(separator in inner for separator in _SEPARATORS)


def _climbs(text: str) -> bool:
    """Does walking the segments of ``text`` go above the directory it starts in?"""
    segments = text.replace("\\", "/").split("/")
    if ".." not in segments:
        return False  # ``..`` only inside names (``my..file``)
    depth = 0
    for segment in segments:
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment and segment != ".":
            depth += 1
    return False
